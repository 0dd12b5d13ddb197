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

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
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
	if got, want := chsession.SettingList(list), "async_insert = 'true', enable_http_compression = '1', insert_deduplication_token = 'abc-1', max_execution_time = '34'"; got != want {
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
		if exc == nil || exc.Code != chsession.CodeUnknownSetting || httpStatus(exc.Code) != http.StatusNotFound {
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

// TestSettingsAroundStatement checks the statements the engine runs for a
// request with settings: SET, the statement, SET back, under one lock; and
// nothing more for a request without settings.
func TestSettingsAroundStatement(t *testing.T) {
	eng := &fakeEngine{Baseline: `["implicit_select","1"]` + "\n"}
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
	if got := eng.Statements(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if resp, b := get(t, ts, http.MethodGet, url.Values{"query": {"SELECT 1"}, "database": {"db"}}, nil); resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if got := eng.Statements(); len(got) != 1 || got[0] != "SELECT 1" {
		t.Errorf("without settings: %q", got)
	}
}

// TestSettingsRestoredOnFailure checks that the session is put back after a
// failing statement, a failing SET and a panic.
func TestSettingsRestoredOnFailure(t *testing.T) {
	eng := &fakeEngine{Answer: func(q, _ string) ([]byte, error) {
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
		if got := eng.Statements(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
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
	got := eng.Statements()
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
	for _, q := range eng.Statements() {
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
	if got := eng.Statements(); len(got) != 0 {
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
	got := eng.Statements()
	if len(got) != 2 || got[1] != "SELECT 1 FORMAT Null SETTINGS  max_threads = 3" {
		t.Errorf("statements %q", got)
	}
}
