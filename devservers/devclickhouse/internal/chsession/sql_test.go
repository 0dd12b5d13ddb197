// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import "testing"

func TestMatchInsertFormat(t *testing.T) {
	for _, tc := range []struct {
		s            string
		ok           bool
		head, format string
		data         string
	}{
		{"INSERT INTO db.t (a, b) FORMAT Native", true, "INSERT INTO db.t (a, b) ", "Native", ""},
		{"insert into t settings async_insert=1 format TSV\n1\t2\n", true, "insert into t settings async_insert=1 ", "TSV", "1\t2\n"},
		{"INSERT INTO t FORMAT CSV\r\n1,2\n", true, "INSERT INTO t ", "CSV", "1,2\n"},
		{"INSERT INTO t (id, format) FORMAT TSV 1\tx", true, "INSERT INTO t (id, format) ", "TSV", "1\tx"},
		{"INSERT INTO t VALUES (1)", false, "", "", ""},
		{"SELECT 1 FORMAT JSON", false, "", "", ""},
	} {
		head, format, start, ok := MatchInsertFormat(tc.s)
		if ok != tc.ok || head != tc.head || format != tc.format || (ok && tc.s[start:] != tc.data) {
			t.Errorf("%q: %v %q %q %d", tc.s, ok, head, format, start)
		}
	}
}

func TestExplicitAndStripFormat(t *testing.T) {
	for _, tc := range []struct{ stmt, format, stripped string }{
		{"SELECT 1", "", "SELECT 1"},
		{"SELECT 1 FORMAT JSON", "JSON", "SELECT 1 "},
		{"select 1 format JSONEachRow;", "JSONEachRow", "select 1 ;"},
		{"SELECT 1 FORMAT CSV SETTINGS max_threads=1", "CSV", "SELECT 1  SETTINGS max_threads=1"},
		{"SELECT 'FORMAT x' AS y", "", "SELECT 'FORMAT x' AS y"},
		{"SELECT 1\nFORMAT Native\n", "Native", "SELECT 1\n\n"},
	} {
		if got := ExplicitFormat(tc.stmt); got != tc.format {
			t.Errorf("ExplicitFormat(%q) = %q, want %q", tc.stmt, got, tc.format)
		}
		if got, format := StripFormat(tc.stmt); got != tc.stripped || format != tc.format {
			t.Errorf("StripFormat(%q) = %q, %q; want %q", tc.stmt, got, format, tc.stripped)
		}
	}
}

func TestFirstKeyword(t *testing.T) {
	for stmt, want := range map[string]string{
		"  select 1":                      "SELECT",
		"-- comment\nINSERT INTO t":       "INSERT",
		"/* c */ (SELECT 1)":              "SELECT",
		"USE db":                          "USE",
		"":                                "",
		"CREATE TABLE t (a UInt8) ENGINE": "CREATE",
	} {
		if got := FirstKeyword(stmt); got != want {
			t.Errorf("FirstKeyword(%q) = %q, want %q", stmt, got, want)
		}
	}
	if !IsModifying("insert into t values (1)") || IsModifying("SELECT 1") {
		t.Error("IsModifying")
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
	sent := []Setting{{"async_insert", "1"}, {"insert_deduplication_token", "u'1"}}
	for _, tc := range []struct {
		name     string
		ins      Insert
		settings []Setting
		want     string
	}{
		{
			"native", Insert{Head: "INSERT INTO t (a) ", Format: "Native"}, nil,
			"INSERT INTO t (a)\nSELECT * FROM file('/tmp/f', 'Native') SETTINGS " + nativeFileSettings,
		},
		{
			"native, settings before devclickhouse's own", Insert{Head: "INSERT INTO t (a) SETTINGS insert_deduplication_token = 'h' ", Format: "Native"}, sent,
			"INSERT INTO t (a) SETTINGS insert_deduplication_token = 'h'\nSELECT * FROM file('/tmp/f', 'Native') SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1', " + nativeFileSettings,
		},
		{
			"text", Insert{Head: "INSERT INTO t ", Format: "TabSeparated"}, nil,
			"INSERT INTO t\nFROM INFILE '/tmp/f' FORMAT TabSeparated",
		},
		{
			"text with settings", Insert{Head: "INSERT INTO t ", Format: "CSV"}, sent,
			"INSERT INTO t\nFROM INFILE '/tmp/f' SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1'\n FORMAT CSV",
		},
		{
			// The head's clause moves after FROM INFILE and comes last: it wins.
			"text, head settings", Insert{Head: "INSERT INTO t (a) SETTINGS insert_deduplication_token='h' -- c\n", Format: "TSV"}, sent,
			"INSERT INTO t (a)\nFROM INFILE '/tmp/f' SETTINGS async_insert = '1', insert_deduplication_token = 'u\\'1', insert_deduplication_token='h' -- c\n FORMAT TSV",
		},
	} {
		if got := insertFromFile(tc.ins, "/tmp/f", tc.settings); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
