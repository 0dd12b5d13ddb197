// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestSettingsFromParams(t *testing.T) {
	params := url.Values{
		// ClickHouse's own parameters and query parameters: no settings.
		"query": {"SELECT 1"}, "database": {"db"}, "default_format": {"Native"},
		"compress": {"1"}, "decompress": {"1"}, "buffer_size": {"10"}, "wait_end_of_query": {"1"},
		"user": {"u"}, "password": {"p"}, "quota_key": {"q"}, "role": {"r"},
		"query_id": {"id"}, "stacktrace": {"1"}, "client_protocol_version": {"54460"},
		"session_id": {"s"}, "session_timeout": {"60"}, "session_check": {"1"}, "close_session": {"1"},
		"param_x": {"5"}, "": {"empty name"},
		// Settings, as clickhouse-go and the exporter send them.
		"max_execution_time":         {"34"},
		"async_insert":               {"true"},
		"insert_deduplication_token": {"first", "abc-1"}, // the last one wins
		"enable_http_compression":    {"1"},              // a setting in ClickHouse too
	}
	list, exc := settingsFromParams(params)
	if exc != nil {
		t.Fatal(exc)
	}
	if got, want := settingList(list), "async_insert = 'true', enable_http_compression = '1', insert_deduplication_token = 'abc-1', max_execution_time = '34'"; got != want {
		t.Errorf("settings\n got %s\nwant %s", got, want)
	}
	if list, exc := settingsFromParams(url.Values{"query": {"SELECT 1"}}); exc != nil || list != nil {
		t.Errorf("no settings: %v %v", list, exc)
	}
}

func TestSettingNamesAreIdentifiers(t *testing.T) {
	for _, name := range []string{
		"max_threads = 1; DROP TABLE t; --", "max_threads=1", "a b", "a-b", "1abc", "max_threads'", "`x`", "é", "a.b",
	} {
		_, exc := settingsFromParams(url.Values{name: {"1"}, "max_threads": {"2"}})
		if exc == nil || exc.Code != codeUnknownSetting || httpStatus(exc.Code) != http.StatusNotFound {
			t.Errorf("%q: %v", name, exc)
			continue
		}
		if want := "Code: 115. DB::Exception: Unknown setting '" + name + "'. (UNKNOWN_SETTING)"; exc.Text != want {
			t.Errorf("%q: text %q, want %q", name, exc.Text, want)
		}
	}
	for _, name := range []string{"max_threads", "_x", "X1", "custom_a"} {
		if _, exc := settingsFromParams(url.Values{name: {"1"}}); exc != nil {
			t.Errorf("%q refused: %v", name, exc)
		}
	}
}

// TestSettingValuesAreLiterals checks that any value, however it tries to
// end the literal, stays one string literal.
func TestSettingValuesAreLiterals(t *testing.T) {
	for value, want := range map[string]string{
		"10":                                "'10'",
		"true":                              "'true'",
		"abc-1":                             "'abc-1'",
		"1'; DROP TABLE t; --":              `'1\'; DROP TABLE t; --'`,
		`x\'`:                               `'x\\\''`,
		"a\nb":                              "'a\nb'",
		`\`:                                 `'\\'`,
		"'), max_threads = ('1":             `'\'), max_threads = (\'1'`,
		"x' SETTINGS readonly = 1 FORMAT a": `'x\' SETTINGS readonly = 1 FORMAT a'`,
	} {
		if got := settingList([]setting{{name: "insert_deduplication_token", value: value}}); got != "insert_deduplication_token = "+want {
			t.Errorf("%q: %s, want %s", value, got, want)
		}
	}
}

func TestTakeReadonly(t *testing.T) {
	in := []setting{{"max_threads", "3"}, {"readonly", "1"}}
	rest, ro, exc := takeReadonly(in)
	if exc != nil || !ro || len(rest) != 1 || rest[0].name != "max_threads" || len(in) != 2 {
		t.Errorf("readonly=1: %v %v %v (input now %v)", rest, ro, exc, in)
	}
	if _, ro, exc := takeReadonly([]setting{{"readonly", "0"}}); exc != nil || ro {
		t.Errorf("readonly=0: %v %v", ro, exc)
	}
	if _, ro, exc := takeReadonly([]setting{{"max_threads", "3"}}); exc != nil || ro {
		t.Errorf("no readonly: %v %v", ro, exc)
	}
	if _, _, exc := takeReadonly([]setting{{"readonly", "yes"}}); exc == nil || exc.Code != codeBadArguments {
		t.Errorf("readonly=yes: %v", exc)
	}
}

func TestNewSessionChange(t *testing.T) {
	ch, exc := newSessionChange([]setting{{"implicit_select", "0"}, {"max_threads", "3"}}, map[string]string{"implicit_select": "1"})
	if exc != nil {
		t.Fatal(exc)
	}
	if ch.apply != "SET implicit_select = '0', max_threads = '3'" {
		t.Errorf("apply %q", ch.apply)
	}
	// The session's own start-up value, not ClickHouse's default, where chDB
	// changed it.
	if ch.restore != "SET implicit_select = '1', max_threads = DEFAULT" {
		t.Errorf("restore %q", ch.restore)
	}
	if ch, exc := newSessionChange(nil, nil); ch != nil || exc != nil {
		t.Errorf("no settings: %v %v", ch, exc)
	}

	for _, tc := range []struct {
		st   setting
		code int // 0: accepted
	}{
		{setting{"dialect", "clickhouse"}, 0},
		{setting{"dialect", "prql"}, codeNotImplemented},
		{setting{"dialect", "kusto"}, codeNotImplemented},
		{setting{"implicit_transaction", "0"}, 0},
		{setting{"implicit_transaction", "false"}, 0},
		{setting{"implicit_transaction", "1"}, codeNotImplemented},
		{setting{"max_query_size", "10000000"}, 0},
		{setting{"max_query_size", "0"}, 0},
		{setting{"max_query_size", "10"}, codeBadArguments},
		{setting{"max_query_size", "1e1"}, codeBadArguments},
		{setting{"max_query_size", "1Mi"}, codeBadArguments},
		{setting{"max_parser_depth", "5"}, codeBadArguments},
		{setting{"max_parser_depth", "0"}, 0},
		{setting{"max_parser_depth", "100"}, 0},
		{setting{"max_parser_backtracks", "10"}, codeBadArguments},
		{setting{"max_parser_backtracks", "2000000"}, 0},
		{setting{"max_memory_usage", "1"}, 0}, // the engine's SET ignores it
	} {
		_, exc := newSessionChange([]setting{tc.st}, nil)
		switch {
		case tc.code == 0 && exc != nil:
			t.Errorf("%v refused: %v", tc.st, exc)
		case tc.code != 0 && (exc == nil || exc.Code != tc.code):
			t.Errorf("%v: %v, want code %d", tc.st, exc, tc.code)
		}
	}
	// max_query_size must leave room for the restoring SET itself.
	list := []setting{{"max_query_size", "50"}, {"max_threads", "3"}} // the SET back is 51 bytes
	if _, exc := newSessionChange(list, nil); exc == nil {
		t.Error("max_query_size shorter than the SET back accepted")
	}
	list[0].value = "51"
	if _, exc := newSessionChange(list, nil); exc != nil {
		t.Errorf("max_query_size as long as the SET back refused: %v", exc)
	}
}

func TestSessionlessSet(t *testing.T) {
	for stmt, want := range map[string]string{
		"SET max_threads = 3":                   "SELECT 1 FORMAT Null SETTINGS  max_threads = 3",
		"  set max_threads = 3, dialect='prql'": "SELECT 1 FORMAT Null SETTINGS  max_threads = 3, dialect='prql'",
		"/* c */ SET a = DEFAULT;":              "SELECT 1 FORMAT Null SETTINGS  a = DEFAULT;",
		"SET ROLE r":                            "",
		"SET DEFAULT ROLE r TO u":               "",
		"SET TRANSACTION SNAPSHOT 1":            "",
		"SELECT 1 SETTINGS max_threads = 3":     "",
		"SETTINGS":                              "",
	} {
		got, ok := sessionlessSet(stmt)
		switch {
		case want == "" && (ok || got != stmt):
			t.Errorf("%q rewritten: %q", stmt, got)
		case want != "" && (!ok || got != want):
			t.Errorf("%q: %q, want %q", stmt, got, want)
		}
	}
}

func TestSplitHeadSettings(t *testing.T) {
	for _, tc := range []struct{ head, prefix, settings string }{
		{"INSERT INTO t (a) SETTINGS insert_deduplication_token='x' ", "INSERT INTO t (a) ", "insert_deduplication_token='x'"},
		{"insert into db.t settings a = 1, b = 'SETTINGS c = 2'", "insert into db.t ", "a = 1, b = 'SETTINGS c = 2'"},
		{"INSERT INTO t ", "INSERT INTO t ", ""},
		{"INSERT INTO settings (settings) ", "INSERT INTO settings (settings) ", ""},
		{"INSERT INTO db.settings ", "INSERT INTO db.settings ", ""},
		{"INSERT INTO `SETTINGS x = 1` ", "INSERT INTO `SETTINGS x = 1` ", ""},
		{"INSERT INTO t (a, `settings`) /* SETTINGS x = 1 */ ", "INSERT INTO t (a, `settings`) /* SETTINGS x = 1 */ ", ""},
		{"INSERT INTO FUNCTION f('SETTINGS a = 1', (SETTINGS)) SETTINGS b = 2", "INSERT INTO FUNCTION f('SETTINGS a = 1', (SETTINGS)) ", "b = 2"},
		{"INSERT INTO t -- SETTINGS x = 1\n SETTINGS y = 2 -- c\n", "INSERT INTO t -- SETTINGS x = 1\n ", "y = 2 -- c"},
		{"INSERT INTO t 'unterminated SETTINGS a = 1", "INSERT INTO t 'unterminated SETTINGS a = 1", ""},
	} {
		prefix, settings := splitHeadSettings(tc.head)
		if prefix != tc.prefix || settings != tc.settings {
			t.Errorf("%q: %q + %q, want %q + %q", tc.head, prefix, settings, tc.prefix, tc.settings)
		}
	}
}

func TestInsertFromFile(t *testing.T) {
	sent := []setting{{"async_insert", "1"}, {"insert_deduplication_token", "u'1"}}
	for _, tc := range []struct {
		name     string
		ins      insertStatement
		settings []setting
		want     string
	}{
		{
			"native", insertStatement{head: "INSERT INTO t (a) ", format: "Native"}, nil,
			"INSERT INTO t (a)\nSELECT * FROM file('/tmp/f', 'Native') SETTINGS " + nativeFileSettings,
		},
		{
			"native, settings before devclickhouse's own", insertStatement{head: "INSERT INTO t (a) SETTINGS insert_deduplication_token = 'h' ", format: "Native"}, sent,
			"INSERT INTO t (a) SETTINGS insert_deduplication_token = 'h'\nSELECT * FROM file('/tmp/f', 'Native') SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1', " + nativeFileSettings,
		},
		{
			"text", insertStatement{head: "INSERT INTO t ", format: "TabSeparated"}, nil,
			"INSERT INTO t\nFROM INFILE '/tmp/f' FORMAT TabSeparated",
		},
		{
			"text with settings", insertStatement{head: "INSERT INTO t ", format: "CSV"}, sent,
			"INSERT INTO t\nFROM INFILE '/tmp/f' SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1'\n FORMAT CSV",
		},
		{
			// The head's clause moves after FROM INFILE and comes last: it wins.
			"text, head settings", insertStatement{head: "INSERT INTO t (a) SETTINGS insert_deduplication_token='h' -- c\n", format: "TSV"}, sent,
			"INSERT INTO t (a)\nFROM INFILE '/tmp/f' SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1', insert_deduplication_token='h' -- c\n FORMAT TSV",
		},
	} {
		if got := insertFromFile(tc.ins, "/tmp/f", tc.settings); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestTidyVersionSuffix(t *testing.T) {
	e := engineException("Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING) (version 26.7.2.1). (UNKNOWN_SETTING)")
	if e.Code != 115 || e.Text != "Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING) (version 26.7.2.1)" {
		t.Errorf("%+v", e)
	}
	for _, text := range []string{
		"Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)",
		"Code: 60. DB::Exception: Unknown table 'x (version 1)'. (UNKNOWN_TABLE)",
	} {
		if e := engineException(text); e.Text != text {
			t.Errorf("%q tidied to %q", text, e.Text)
		}
	}
}

// statements returns the statements the engine ran since the last call,
// leaving out New's own.
func (f *fakeEngine) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		if !strings.HasPrefix(q, "SELECT version()") && q != baselineQuery {
			out = append(out, q)
		}
	}
	f.queries = nil
	return out
}

// TestSettingsAroundStatement checks the statements the engine runs for a
// request with settings: SET, the statement, SET back, under one lock; and
// nothing more for a request without settings.
func TestSettingsAroundStatement(t *testing.T) {
	eng := &fakeEngine{baseline: `["implicit_select","1"]` + "\n"}
	ts := newTestServer(t, eng)
	params := url.Values{
		"query": {"SELECT getSetting('max_threads')"}, "database": {"db"}, "query_id": {"q1"},
		"default_format": {"Native"}, "client_protocol_version": {"54460"}, "param_p": {"1"},
		"max_threads": {"3"}, "implicit_select": {"0"}, "max_execution_time": {"10"},
	}
	if resp, b := get(t, ts, http.MethodGet, params, nil); resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	want := []string{
		"USE `db`",
		"SET implicit_select = '0', max_execution_time = '10', max_threads = '3'",
		"SELECT getSetting('max_threads')",
		"SET implicit_select = '1', max_execution_time = DEFAULT, max_threads = DEFAULT",
	}
	if got := eng.statements(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if resp, b := get(t, ts, http.MethodGet, url.Values{"query": {"SELECT 1"}, "database": {"db"}}, nil); resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if got := eng.statements(); len(got) != 1 || got[0] != "SELECT 1" {
		t.Errorf("without settings: %q", got)
	}
}

// TestSettingsRestoredOnFailure checks that the session is put back after a
// failing statement, a failing SET and a panic.
func TestSettingsRestoredOnFailure(t *testing.T) {
	eng := &fakeEngine{answer: func(q, _ string) ([]byte, error) {
		switch {
		case strings.Contains(q, "nope"):
			return nil, errors.New("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)")
		case strings.Contains(q, "nosuch"):
			return nil, errors.New("Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING)")
		case strings.Contains(q, "boom"):
			panic("boom")
		}
		return nil, nil
	}}
	ts := newTestServer(t, eng)
	for _, tc := range []struct {
		params url.Values
		code   string
		want   []string
	}{
		{
			url.Values{"query": {"SELECT * FROM nope"}, "max_threads": {"3"}}, "60",
			[]string{"USE `default`", "SET max_threads = '3'", "SELECT * FROM nope", "SET max_threads = DEFAULT"},
		},
		{
			url.Values{"query": {"SELECT 1"}, "max_threads": {"3"}, "nosuch": {"1"}}, "115",
			[]string{"SET max_threads = '3', nosuch = '1'", "SET max_threads = DEFAULT, nosuch = DEFAULT"},
		},
		{
			url.Values{"query": {"SELECT boom"}, "max_threads": {"3"}}, "1001",
			[]string{"SET max_threads = '3'", "SELECT boom", "SET max_threads = DEFAULT"},
		},
	} {
		resp, b := get(t, ts, http.MethodPost, tc.params, nil)
		if code := resp.Header.Get("X-ClickHouse-Exception-Code"); code != tc.code {
			t.Errorf("%v: code %q, want %s: %q", tc.params, code, tc.code, b)
		}
		if tc.code == "115" && resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown setting: status %d, want 404", resp.StatusCode)
		}
		if got := eng.statements(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%v: statements:\n%s\nwant:\n%s", tc.params, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// TestInsertSettingsInClause checks that the settings of an INSERT ... FORMAT
// request go into the statement, not the session.
func TestInsertSettingsInClause(t *testing.T) {
	eng := &fakeEngine{}
	ts := newTestServer(t, eng)
	params := url.Values{
		"query":                      {"INSERT INTO t (a) SETTINGS insert_deduplication_token='h' FORMAT TabSeparated"},
		"insert_deduplication_token": {"t1"}, "async_insert": {"1"},
	}
	if resp, b := get(t, ts, http.MethodPost, params, []byte("1\n")); resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	got := eng.statements()
	if len(got) != 2 || got[0] != "USE `default`" {
		t.Fatalf("statements %q", got)
	}
	want := regexp.QuoteMeta("INSERT INTO t (a)\nFROM INFILE '") + `[^']+` +
		regexp.QuoteMeta("' SETTINGS async_insert = '1', insert_deduplication_token = 't1', insert_deduplication_token='h'\n FORMAT TabSeparated")
	if !regexp.MustCompile("^" + want + "$").MatchString(got[1]) {
		t.Errorf("insert %q", got[1])
	}
}

func TestReadonlySetting(t *testing.T) {
	eng := &fakeEngine{}
	ts := newTestServer(t, eng)
	for _, tc := range []struct {
		query, body string
		readonly    string
		code        string
	}{
		{"CREATE TABLE t (a UInt8) ENGINE = Memory", "", "1", "164"},
		{"INSERT INTO t FORMAT TabSeparated", "1\n", "2", "164"},
		{"SELECT 1", "", "1", ""},
		{"CREATE TABLE t (a UInt8) ENGINE = Memory", "", "0", ""},
		{"SELECT 1", "", "x", "36"},
	} {
		resp, b := get(t, ts, http.MethodPost, url.Values{"query": {tc.query}, "readonly": {tc.readonly}}, []byte(tc.body))
		if code := resp.Header.Get("X-ClickHouse-Exception-Code"); code != tc.code {
			t.Errorf("%s readonly=%s: code %q, want %q: %q", tc.query, tc.readonly, code, tc.code, b)
		}
	}
	for _, q := range eng.statements() {
		if strings.Contains(q, "readonly") || strings.HasPrefix(q, "SET") {
			t.Errorf("readonly reached the engine: %q", q)
		}
	}
}

// TestRefusedBeforeTheEngine checks that bad names and settings the session
// could not be restored from never reach the engine.
func TestRefusedBeforeTheEngine(t *testing.T) {
	eng := &fakeEngine{}
	ts := newTestServer(t, eng)
	for _, tc := range []struct {
		params url.Values
		code   string
		status int
	}{
		{url.Values{"query": {"SELECT 1"}, "max_threads=1; DROP TABLE t; --": {"1"}}, "115", 404},
		{url.Values{"query": {"INSERT INTO t FORMAT TSV"}, "a b": {"1"}}, "115", 404},
		{url.Values{"query": {"SELECT 1"}, "dialect": {"prql"}}, "48", 501},
		{url.Values{"query": {"SELECT 1"}, "max_query_size": {"20"}}, "36", 400},
	} {
		resp, b := get(t, ts, http.MethodPost, tc.params, []byte("1\n"))
		if code := resp.Header.Get("X-ClickHouse-Exception-Code"); code != tc.code || resp.StatusCode != tc.status {
			t.Errorf("%v: %d code %q, want %d %s: %q", tc.params, resp.StatusCode, code, tc.status, tc.code, b)
		}
	}
	if got := eng.statements(); len(got) != 0 {
		t.Errorf("engine ran %q", got)
	}
}

// TestSetStatementChecksOnly checks that a client's SET reaches the engine
// as a query that only checks its settings.
func TestSetStatementChecksOnly(t *testing.T) {
	eng := &fakeEngine{}
	ts := newTestServer(t, eng)
	if resp, b := get(t, ts, http.MethodPost, url.Values{"query": {"SET max_threads = 3"}}, nil); resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	got := eng.statements()
	if len(got) != 2 || got[1] != "SELECT 1 FORMAT Null SETTINGS  max_threads = 3" {
		t.Errorf("statements %q", got)
	}
}
