// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"fmt"
	"strings"
	"testing"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

func TestParseInsertHead(t *testing.T) {
	for head, want := range map[string]string{
		"INSERT INTO t ":           "t []",
		"insert into db.t (a, b) ": "db.t [a b]",
		`INSERT INTO "otel"."otel_traces" (Timestamp, Events.Name, "Links.TraceId")`: `"otel"."otel_traces" [Timestamp Events.Name Links.TraceId]`,
		"INSERT INTO TABLE `d b`.`t` (`a``b`, `E`.`x`) SETTINGS async_insert = 1 ":   "`d b`.`t` [a`b E.x]",
		"INSERT INTO t (a) SELECT 1":      "",
		"INSERT INTO FUNCTION file('x') ": "",
		"INSERT INTO t (a, f(b)) ":        "",
		"INSERT INTO `t ":                 "",
		"INSERT t ":                       "",
	} {
		got := ""
		if tgt, ok := parseInsertHead(head); ok {
			got = fmt.Sprintf("%s %v", tgt.table, tgt.columns)
		}
		if got != want {
			t.Errorf("%q: %q, want %q", head, got, want)
		}
	}
}

func TestParseSet(t *testing.T) {
	set, reset, err := parseSet(" max_threads = 2, insert_deduplication_token = 'a,b''c', dialect=DEFAULT, x = 1e3;")
	if err != nil {
		t.Fatal(err)
	}
	if got := chsession.SettingList(set); got != "max_threads = '2', insert_deduplication_token = 'a,b\\'c', x = '1e3'" {
		t.Errorf("set %s", got)
	}
	if strings.Join(reset, ",") != "dialect" {
		t.Errorf("reset %v", reset)
	}
	for _, bad := range []string{"", "a", "a b = 1", "a = 'x", "= 1"} {
		if _, _, err := parseSet(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseTSV(t *testing.T) {
	rows := parseTSV([]byte("a\\tb\tArray(String)\t\nc\\\\d\tString\tDEFAULT\n"))
	if len(rows) != 2 || rows[0][0] != "a\tb" || rows[0][1] != "Array(String)" || rows[1][0] != `c\d` || rows[1][2] != "DEFAULT" {
		t.Errorf("%q", rows)
	}
	if lit, ok := unquoteLiteral(`'it\'s'`); !ok || lit != "it's" {
		t.Errorf("literal %q %v", lit, ok)
	}
	if _, ok := unquoteLiteral(`'open`); ok {
		t.Error("unterminated literal accepted")
	}
}
