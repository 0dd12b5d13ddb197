// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"testing"
)

func TestValidSettingName(t *testing.T) {
	for _, name := range []string{
		"max_threads = 1; DROP TABLE t; --", "max_threads=1", "a b", "a-b", "1abc", "max_threads'", "`x`", "é", "a.b", "",
	} {
		if ValidSettingName(name) {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"max_threads", "_x", "X1", "custom_a"} {
		if !ValidSettingName(name) {
			t.Errorf("%q refused", name)
		}
	}
	if exc := UnknownSetting("a b"); exc.Code != CodeUnknownSetting || exc.Text != "Code: 115. DB::Exception: Unknown setting 'a b'. (UNKNOWN_SETTING)" {
		t.Errorf("%+v", exc)
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
		if got := SettingList([]Setting{{Name: "insert_deduplication_token", Value: value}}); got != "insert_deduplication_token = "+want {
			t.Errorf("%q: %s, want %s", value, got, want)
		}
	}
}

func TestMergeSettings(t *testing.T) {
	got := MergeSettings([]Setting{{"b", "1"}, {"a", "1"}}, []Setting{{"b", "2"}, {"c", "3"}, {"c", "4"}})
	if s := SettingList(got); s != "a = '1', b = '2', c = '4'" {
		t.Errorf("merged %s", s)
	}
	if MergeSettings(nil, nil) != nil {
		t.Error("nothing merged into something")
	}
}

func TestTakeReadonly(t *testing.T) {
	in := []Setting{{"max_threads", "3"}, {"readonly", "1"}}
	rest, ro, exc := TakeReadonly(in)
	if exc != nil || !ro || len(rest) != 1 || rest[0].Name != "max_threads" || len(in) != 2 {
		t.Errorf("readonly=1: %v %v %v (input now %v)", rest, ro, exc, in)
	}
	if _, ro, exc := TakeReadonly([]Setting{{"readonly", "0"}}); exc != nil || ro {
		t.Errorf("readonly=0: %v %v", ro, exc)
	}
	if _, ro, exc := TakeReadonly([]Setting{{"max_threads", "3"}}); exc != nil || ro {
		t.Errorf("no readonly: %v %v", ro, exc)
	}
	if _, _, exc := TakeReadonly([]Setting{{"readonly", "yes"}}); exc == nil || exc.Code != CodeBadArguments {
		t.Errorf("readonly=yes: %v", exc)
	}
}

func TestNewSessionChange(t *testing.T) {
	ch, exc := newSessionChange([]Setting{{"implicit_select", "0"}, {"max_threads", "3"}}, map[string]string{"implicit_select": "1"})
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
		st   Setting
		code int // 0: accepted
	}{
		{Setting{"dialect", "clickhouse"}, 0},
		{Setting{"dialect", "prql"}, CodeNotImplemented},
		{Setting{"dialect", "kusto"}, CodeNotImplemented},
		{Setting{"implicit_transaction", "0"}, 0},
		{Setting{"implicit_transaction", "false"}, 0},
		{Setting{"implicit_transaction", "1"}, CodeNotImplemented},
		{Setting{"max_query_size", "10000000"}, 0},
		{Setting{"max_query_size", "0"}, 0},
		{Setting{"max_query_size", "10"}, CodeBadArguments},
		{Setting{"max_query_size", "1e1"}, CodeBadArguments},
		{Setting{"max_query_size", "1Mi"}, CodeBadArguments},
		{Setting{"max_parser_depth", "5"}, CodeBadArguments},
		{Setting{"max_parser_depth", "0"}, 0},
		{Setting{"max_parser_depth", "100"}, 0},
		{Setting{"max_parser_backtracks", "10"}, CodeBadArguments},
		{Setting{"max_parser_backtracks", "2000000"}, 0},
		{Setting{"max_memory_usage", "1"}, 0}, // the engine's SET ignores it
	} {
		_, exc := newSessionChange([]Setting{tc.st}, nil)
		switch {
		case tc.code == 0 && exc != nil:
			t.Errorf("%v refused: %v", tc.st, exc)
		case tc.code != 0 && (exc == nil || exc.Code != tc.code):
			t.Errorf("%v: %v, want code %d", tc.st, exc, tc.code)
		}
	}
	// max_query_size must leave room for the restoring SET itself.
	list := []Setting{{"max_query_size", "50"}, {"max_threads", "3"}} // the SET back is 51 bytes
	if _, exc := newSessionChange(list, nil); exc == nil {
		t.Error("max_query_size shorter than the SET back accepted")
	}
	list[0].Value = "51"
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
		got, ok := SessionlessSet(stmt)
		switch {
		case want == "" && (ok || got != stmt):
			t.Errorf("%q rewritten: %q", stmt, got)
		case want != "" && (!ok || got != want):
			t.Errorf("%q: %q, want %q", stmt, got, want)
		}
	}
}
