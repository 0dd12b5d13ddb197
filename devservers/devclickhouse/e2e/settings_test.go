// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// openClickHouse opens clickhouse-go over protocol with lz4, as the
// exporter does, sending settings with every request (the exporter's DSN
// sends async_insert=1).
func openClickHouse(t *testing.T, s *server, protocol string, settings clickhouse.Settings) clickhouse.Conn {
	t.Helper()
	proto, addr := clickhouse.HTTP, s.addr
	if protocol == overNative {
		proto, addr = clickhouse.Native, s.native
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    proto,
		Addr:        []string{addr},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		Settings:    settings,
		DialTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dedupTable creates a MergeTree table that deduplicates inserts.
func dedupTable(t *testing.T, s *server, prefix string) string {
	t.Helper()
	table := freshDB(t, s, prefix) + ".t"
	s.query(t, "CREATE TABLE "+table+" (id UInt32, s String) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100")
	return table
}

// sendBatch inserts rows from..from+n-1 with clickhouse-go's PrepareBatch
// and Send, the way the exporter inserts, with settings (if any) in the
// context.
func sendBatch(t *testing.T, conn clickhouse.Conn, insert string, settings clickhouse.Settings, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if settings != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	}
	batch, err := conn.PrepareBatch(ctx, insert)
	if err != nil {
		t.Fatalf("prepare %s: %v", insert, err)
	}
	for i := from; i < from+n; i++ {
		if err := batch.Append(uint32(i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send %s %v: %v", insert, settings, err)
	}
}

func countRows(t *testing.T, conn clickhouse.Conn, table string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestSettingsDeduplicationToken inserts through clickhouse-go with
// insert_deduplication_token in the context's settings (URL parameters over
// HTTP, the Query packet's settings over the native protocol): the engine
// drops a second insert with the same token, whatever its rows, and keeps
// one with another token. With every request also carrying async_insert=1,
// as from the exporter.
func TestSettingsDeduplicationToken(t *testing.T) {
	s := sharedServerFor(t)
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) { deduplicationToken(t, s, protocol) })
	}
}

func deduplicationToken(t *testing.T, s *server, protocol string) {
	table := dedupTable(t, s, "dedup_"+protocol)
	conn := openClickHouse(t, s, protocol, clickhouse.Settings{"async_insert": 1})
	insert := "INSERT INTO " + table

	token := func(tok string) clickhouse.Settings {
		return clickhouse.Settings{"insert_deduplication_token": tok, "async_insert_deduplicate": 1}
	}
	steps := []struct {
		what     string
		settings clickhouse.Settings
		from     int
		want     uint64
	}{
		{"token t1", token("t1"), 0, 10},
		{"token t1 again", token("t1"), 0, 10},
		{"token t1, other rows", token("t1"), 100, 10},
		{"token t2, same rows as t1", token("t2"), 0, 20},
		// Without a token the engine deduplicates by content, as a server
		// does for a table with a deduplication window.
		{"no token", nil, 200, 30},
		{"no token, same rows", nil, 200, 30},
		{"deduplicate_insert=disable", clickhouse.Settings{"deduplicate_insert": "disable"}, 200, 40},
	}
	for _, st := range steps {
		sendBatch(t, conn, insert, st.settings, st.from, 10)
		if n := countRows(t, conn, table); n != st.want {
			t.Fatalf("after %s: %d rows, want %d", st.what, n, st.want)
		}
	}
}

// nativeRows returns rows from..from+n-1 of (id, s) as Native data, as the
// engine writes it.
func nativeRows(t *testing.T, s *server, from, n int) string {
	t.Helper()
	r := s.do(t, http.MethodGet, url.Values{"query": {fmt.Sprintf(
		"SELECT toUInt32(number) AS id, toString(number) AS s FROM numbers(%d, %d) FORMAT Native", from, n)}}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("native rows: %d %s", r.status, r.body)
	}
	return r.body
}

// TestSettingsDeduplicationTokenInInsert puts the token in the INSERT's own
// SETTINGS clause: through clickhouse-go over either protocol (which keeps
// the clause only without a column list; one token across both) and as raw
// HTTP, Native and text. The INSERT's clause wins over a URL parameter, as
// in ClickHouse.
func TestSettingsDeduplicationTokenInInsert(t *testing.T) {
	s := sharedServerFor(t)
	table := dedupTable(t, s, "dedup_head")
	var conn clickhouse.Conn
	for _, protocol := range protocols {
		conn = openClickHouse(t, s, protocol, clickhouse.Settings{"async_insert": 1})
		for range 2 {
			sendBatch(t, conn, "INSERT INTO "+table+" SETTINGS insert_deduplication_token='g1'", nil, 0, 10)
		}
		if n := countRows(t, conn, table); n != 10 {
			t.Fatalf("clickhouse-go over %s, token in the INSERT: %d rows, want 10", protocol, n)
		}
	}

	native := nativeRows(t, s, 100, 10)
	tsv := ""
	for i := 200; i < 210; i++ {
		tsv += fmt.Sprintf("%d\t%d\n", i, i)
	}
	steps := []struct {
		what, query, body string
		params            url.Values
		want              uint64
	}{
		{"Native, token h1", "INSERT INTO " + table + " (id, s) SETTINGS insert_deduplication_token='h1' FORMAT Native", native, nil, 20},
		{"Native, token h1 again", "INSERT INTO " + table + " (id, s) SETTINGS insert_deduplication_token='h1' FORMAT Native", native, nil, 20},
		{"Native, h1 in the INSERT beats u1 in the URL", "INSERT INTO " + table + " (id, s) SETTINGS insert_deduplication_token = 'h1' FORMAT Native", native,
			url.Values{"insert_deduplication_token": {"u1"}}, 20},
		{"text, token h2", "INSERT INTO " + table + " (id, s) SETTINGS insert_deduplication_token='h2' FORMAT TabSeparated", tsv, nil, 30},
		{"text, token h2 again", "INSERT INTO " + table + " (id, s) SETTINGS insert_deduplication_token='h2' FORMAT TabSeparated", tsv, nil, 30},
		{"text, h2 in the INSERT beats u2 in the URL", "INSERT INTO " + table + " SETTINGS insert_deduplication_token='h2' FORMAT TabSeparated", tsv,
			url.Values{"insert_deduplication_token": {"u2"}}, 30},
		{"text, token h3 in the URL only", "INSERT INTO " + table + " FORMAT TabSeparated", tsv, url.Values{"insert_deduplication_token": {"h3"}}, 40},
	}
	for _, st := range steps {
		params := url.Values{"query": {st.query}}
		for k, v := range st.params {
			params[k] = v
		}
		if r := s.do(t, http.MethodPost, params, strings.NewReader(st.body)); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", st.what, r.status, r.body)
		}
		if n := countRows(t, conn, table); n != st.want {
			t.Fatalf("after %s: %d rows, want %d", st.what, n, st.want)
		}
	}
}

// getSetting returns SELECT getSetting(name) run with params.
func (s *server) getSetting(t *testing.T, name string, params url.Values) string {
	t.Helper()
	p := url.Values{"query": {"SELECT getSetting('" + name + "')"}}
	for k, v := range params {
		p[k] = v
	}
	r := s.do(t, http.MethodGet, p, nil)
	if r.status != http.StatusOK {
		t.Fatalf("getSetting(%s) with %v: %d %s", name, params, r.status, r.body)
	}
	return strings.TrimSpace(r.body)
}

// TestSettingsDoNotLeak checks that a request's settings never reach the
// next request on the shared engine session: after success, after a failing
// statement, after a refused setting, after an insert, after a client's SET,
// through clickhouse-go, and with requests running side by side.
func TestSettingsDoNotLeak(t *testing.T) {
	s := sharedServerFor(t)
	table := dedupTable(t, s, "leak")
	base := s.getSetting(t, "max_threads", nil)
	if base == "101" {
		t.Fatalf("max_threads starts at %s", base)
	}
	three := url.Values{"max_threads": {"101"}}
	if got := s.getSetting(t, "max_threads", three); got != "101" {
		t.Fatalf("max_threads=101 gives %s", got)
	}
	expectBase := func(after string) {
		t.Helper()
		if got := s.getSetting(t, "max_threads", nil); got != base {
			t.Fatalf("after %s: max_threads %s, want %s", after, got, base)
		}
	}
	expectBase("a request with max_threads=101")

	with := func(params url.Values, extra url.Values) url.Values {
		for k, v := range extra {
			params[k] = v
		}
		return params
	}
	if r := s.do(t, http.MethodPost, with(url.Values{"query": {"SELECT * FROM nope_leak"}}, three), nil); r.status == http.StatusOK {
		t.Fatal("query of a missing table succeeded")
	}
	expectBase("a failing statement")
	if r := s.do(t, http.MethodPost, with(url.Values{"query": {"SELECT 1"}, "nosuch_setting": {"1"}}, three), nil); r.status == http.StatusOK {
		t.Fatal("unknown setting accepted")
	}
	expectBase("an unknown setting")
	for _, q := range []string{"INSERT INTO " + table + " FORMAT TabSeparated", "INSERT INTO " + table + " (id, s) FORMAT Native"} {
		body := "1\tx\n"
		if strings.HasSuffix(q, "Native") {
			body = nativeRows(t, s, 5, 1)
		}
		if r := s.do(t, http.MethodPost, with(url.Values{"query": {q}}, three), strings.NewReader(body)); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		expectBase(q)
	}
	if r := s.do(t, http.MethodPost, url.Values{"query": {"SET max_threads = 101"}}, nil); r.status != http.StatusOK {
		t.Fatalf("SET: %d %s", r.status, r.body)
	}
	expectBase("SET max_threads = 101")

	// A setting chDB starts with changed goes back to chDB's value, not to
	// ClickHouse's default.
	implicit := s.getSetting(t, "implicit_select", nil)
	flipped := map[string]string{"true": "false", "false": "true"}[implicit]
	if got := s.getSetting(t, "implicit_select", url.Values{"implicit_select": {flipped}}); got != flipped {
		t.Fatalf("implicit_select=%s gives %s", flipped, got)
	}
	if got := s.getSetting(t, "implicit_select", nil); got != implicit {
		t.Fatalf("implicit_select after a request that changed it: %s, want %s", got, implicit)
	}

	conn := openClickHouse(t, s, overHTTP, nil)
	var got string
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"max_threads": 101}))
	if err := conn.QueryRow(ctx, "SELECT toString(getSetting('max_threads'))").Scan(&got); err != nil || got != "101" {
		t.Fatalf("clickhouse-go with max_threads=101: %q %v", got, err)
	}
	if err := conn.QueryRow(context.Background(), "SELECT toString(getSetting('max_threads'))").Scan(&got); err != nil || got != base {
		t.Fatalf("clickhouse-go after max_threads=101: %q %v, want %s", got, err, base)
	}

	concurrentSettings(t, s, base)
}

// concurrentSettings runs requests with and without max_threads side by
// side: each must see its own value.
func concurrentSettings(t *testing.T, s *server, base string) {
	t.Helper()
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				params := url.Values{"query": {"SELECT getSetting('max_threads')"}}
				want := base
				if (w+r)%2 == 0 {
					want = fmt.Sprint(200 + w)
					params.Set("max_threads", want)
				}
				resp, err := http.Get(s.url("/") + "?" + params.Encode())
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := strings.TrimSpace(string(b))
				if resp.StatusCode != http.StatusOK || got != want {
					errs <- fmt.Errorf("worker %d round %d: %d max_threads %q, want %q", w, r, resp.StatusCode, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSettingsValues checks that values arrive as the engine's types
// (numbers, booleans, strings), that a value cannot leave its literal, and
// that the engine enforces what it is given.
func TestSettingsValues(t *testing.T) {
	s := sharedServerFor(t)
	params := url.Values{
		"query":                      {"SELECT getSetting('async_insert'), getSetting('max_execution_time'), getSetting('insert_deduplication_token')"},
		"async_insert":               {"true"},
		"max_execution_time":         {"10"},
		"insert_deduplication_token": {"abc-1"},
	}
	if r := s.do(t, http.MethodGet, params, nil); r.status != http.StatusOK || r.body != "true\t10\tabc-1\n" {
		t.Errorf("values: %d %q", r.status, r.body)
	}
	evil := `x'; DROP DATABASE default; SELECT '\`
	if got := s.getSetting(t, "insert_deduplication_token", url.Values{"insert_deduplication_token": {evil}}); got != `x\'; DROP DATABASE default; SELECT \'\\` {
		t.Errorf("quoted value came back as %q", got)
	}
	if r := s.do(t, http.MethodGet, url.Values{"query": {"SELECT 1"}, "max_threads": {"1'; DROP DATABASE default; --"}}, nil); r.status == http.StatusOK {
		t.Errorf("number setting took a string: %q", r.body)
	}
	if r := s.do(t, http.MethodGet, url.Values{"query": {"EXISTS DATABASE default"}}, nil); r.body != "1\n" {
		t.Fatalf("database default: %q", r.body)
	}

	r := s.do(t, http.MethodGet, url.Values{"query": {"SELECT number FROM numbers(10)"}, "max_result_rows": {"5"}, "result_overflow_mode": {"throw"}}, nil)
	if code := r.header.Get("X-ClickHouse-Exception-Code"); code != "396" {
		t.Errorf("max_result_rows=5: %d %s %q", r.status, code, r.body)
	}
	// A query of about 15 s (bounded, should the setting be lost),
	// stopped after half a second.
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(s.url("/") + "?" + url.Values{
		"query":              {"SELECT max(sipHash64(number)) FROM numbers(500000000)"},
		"max_execution_time": {"0.5"},
	}.Encode())
	if err != nil {
		t.Fatalf("max_execution_time=0.5: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code := resp.Header.Get("X-ClickHouse-Exception-Code"); code != "159" || resp.StatusCode != http.StatusRequestTimeout || time.Since(start) > 10*time.Second {
		t.Errorf("max_execution_time=0.5: %d %s after %v: %q", resp.StatusCode, code, time.Since(start), b)
	}
}

// TestSettingsUnknown checks that an unknown setting, or a name that is no
// setting name, answers UNKNOWN_SETTING (115, HTTP 404) for queries and
// both insert paths, raw and through clickhouse-go.
func TestSettingsUnknown(t *testing.T) {
	s := sharedServerFor(t)
	table := dedupTable(t, s, "unknown")
	for _, tc := range []struct {
		name, query, body string
		params            url.Values
	}{
		{"query", "SELECT 1", "", url.Values{"nosuch_setting": {"1"}}},
		{"Native insert", "INSERT INTO " + table + " (id, s) FORMAT Native", nativeRows(t, s, 0, 1), url.Values{"nosuch_setting": {"1"}}},
		{"text insert", "INSERT INTO " + table + " FORMAT TabSeparated", "1\tx\n", url.Values{"nosuch_setting": {"1"}}},
		{"not a name", "SELECT 1", "", url.Values{"max_threads=1; DROP DATABASE default; --": {"1"}}},
	} {
		params := url.Values{"query": {tc.query}}
		for k, v := range tc.params {
			params[k] = v
		}
		r := s.do(t, http.MethodPost, params, strings.NewReader(tc.body))
		if r.status != http.StatusNotFound || r.header.Get("X-ClickHouse-Exception-Code") != "115" ||
			!strings.HasPrefix(r.body, "Code: 115. DB::Exception: Unknown setting '") ||
			!strings.Contains(r.body, "(UNKNOWN_SETTING) (version ") || strings.Count(r.body, "UNKNOWN_SETTING") != 1 {
			t.Errorf("%s: %d %v %q", tc.name, r.status, r.header, r.body)
		}
	}
	if n := s.count(t, table); n != 0 {
		t.Errorf("%d rows inserted despite the unknown setting", n)
	}

	conn := openClickHouse(t, s, overHTTP, nil)
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"nosuch_setting": 1}))
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(new(uint8)); err == nil || !strings.Contains(err.Error(), "Code: 115") || !strings.Contains(err.Error(), "UNKNOWN_SETTING") {
		t.Errorf("clickhouse-go query: %v", err)
	}
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+table)
	if err != nil {
		t.Fatal(err)
	}
	_ = batch.Append(uint32(1), "x")
	batch.Abort()
	batch, err = conn.PrepareBatch(ctx, "INSERT INTO "+table)
	if err == nil {
		_ = batch.Append(uint32(1), "x")
		err = batch.Send()
	}
	if err == nil || !strings.Contains(err.Error(), "115") {
		t.Errorf("clickhouse-go batch: %v", err)
	}
}

// TestSettingsKeptOffTheSession checks readonly (done by devclickhouse, not
// set on the session) and the settings that devclickhouse refuses because
// the shared session could not be restored from them.
func TestSettingsKeptOffTheSession(t *testing.T) {
	s := sharedServerFor(t)
	db := freshDB(t, s, "guard")
	for _, tc := range []struct {
		name   string
		params url.Values
		code   string
	}{
		{"readonly=1, CREATE", url.Values{"query": {"CREATE TABLE " + db + ".t (a UInt8) ENGINE = Memory"}, "readonly": {"1"}}, "164"},
		{"readonly=1, SELECT", url.Values{"query": {"SELECT 1"}, "readonly": {"1"}}, ""},
		{"dialect=prql", url.Values{"query": {"SELECT 1"}, "dialect": {"prql"}}, "48"},
		{"max_query_size=10", url.Values{"query": {"SELECT 1"}, "max_query_size": {"10"}}, "36"},
		{"max_parser_depth=2", url.Values{"query": {"SELECT 1"}, "max_parser_depth": {"2"}}, "36"},
		{"implicit_transaction=1", url.Values{"query": {"SELECT 1"}, "implicit_transaction": {"1"}}, "48"},
		{"max_query_size=10000000", url.Values{"query": {"SELECT 1"}, "max_query_size": {"10000000"}}, ""},
	} {
		r := s.do(t, http.MethodPost, tc.params, nil)
		if code := r.header.Get("X-ClickHouse-Exception-Code"); code != tc.code {
			t.Errorf("%s: %d code %q, want %q: %q", tc.name, r.status, code, tc.code, r.body)
		}
	}
	// A client's SET of the same only checks it.
	for _, set := range []string{"SET dialect = 'kusto'", "SET max_query_size = 10", "SET readonly = 1"} {
		s.do(t, http.MethodPost, url.Values{"query": {set}}, nil)
	}
	s.query(t, "CREATE TABLE "+db+".t (a UInt8) ENGINE = Memory")
	if got := s.query(t, "SELECT count() FROM "+db+".t"); got != "0\n" {
		t.Errorf("after the refused settings: %q", got)
	}
}
