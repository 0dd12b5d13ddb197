// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/clickhouse-go/v2"
)

// sharedServer is one devclickhouse for the tests that do not restart it.
var (
	sharedOnce sync.Once
	shared     *server
	sharedDir  string
)

func sharedServerFor(t *testing.T) *server {
	t.Helper()
	sharedOnce.Do(func() {
		var err error
		sharedDir, err = tempDir()
		if err != nil {
			t.Fatal(err)
		}
		shared = startServer(&sharedT{T: t}, sharedDir)
	})
	if shared == nil {
		t.Fatal("shared devclickhouse did not start (see the first failing test)")
	}
	return shared
}

var dbSeq atomic.Int64

// freshDB creates a database no earlier test (or earlier -count round on the
// shared server) used.
func freshDB(t *testing.T, s *server, prefix string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", prefix, dbSeq.Add(1))
	s.query(t, "CREATE DATABASE "+db)
	return db
}

func TestPingAndEndpoints(t *testing.T) {
	s := sharedServerFor(t)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{http.MethodGet, "/ping", 200, "Ok.\n"},
		{http.MethodHead, "/ping", 200, ""},
		{http.MethodGet, "/", 200, "Ok.\n"},
		{http.MethodGet, "/replicas_status", 200, "Ok.\n"},
		{http.MethodGet, "/no/such/handler", 404, "There is no handle /no/such/handler"},
		{http.MethodPost, "/ping", 404, "There is no handle /ping"},
	} {
		req, _ := http.NewRequest(tc.method, s.url(tc.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(string(b), tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q...", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

// TestCurlTabSeparated talks to devclickhouse as a person with curl does:
// TabSeparated unless a FORMAT is named, statements in the query parameter
// or the body, data in the body.
func TestCurlTabSeparated(t *testing.T) {
	s := sharedServerFor(t)
	db := freshDB(t, s, "curl")
	s.query(t, "CREATE TABLE "+db+".t (id UInt32, name String) ENGINE = MergeTree ORDER BY id")

	post := func(params url.Values, body string) response {
		t.Helper()
		r := s.do(t, http.MethodPost, params, strings.NewReader(body))
		if r.status != 200 {
			t.Fatalf("POST %v %q: %d %s", params, body, r.status, r.body)
		}
		return r
	}
	// echo -e '1\talpha\n2\tbeta' | curl --data-binary @- '...?query=INSERT INTO DB.t FORMAT TabSeparated'
	post(url.Values{"query": {"INSERT INTO " + db + ".t FORMAT TabSeparated"}}, "1\talpha\n2\tbeta\n")
	// The whole statement in the body, data after it.
	post(nil, "INSERT INTO "+db+".t FORMAT CSV\n3,\"gamma\"\n")
	// VALUES split between the parameter and the body.
	post(url.Values{"query": {"INSERT INTO " + db + ".t VALUES"}}, "(4, 'delta')")
	// The database parameter applies to unqualified names.
	post(url.Values{"query": {"INSERT INTO t FORMAT JSONEachRow"}, "database": {db}}, `{"id":5,"name":"epsilon"}`+"\n")

	// curl 'http://127.0.0.1:PORT/?query=SELECT+count()+FROM+DB.t'
	resp, err := http.Get(s.url("/?query=SELECT+count()+FROM+" + db + ".t"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "5\n" {
		t.Fatalf("count: %d %q", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/tab-separated-values") {
		t.Errorf("Content-Type %q", ct)
	}
	if f := resp.Header.Get("X-ClickHouse-Format"); f != "TabSeparated" {
		t.Errorf("X-ClickHouse-Format %q", f)
	}
	if got := s.query(t, "SELECT id, name FROM "+db+".t ORDER BY id"); got != "1\talpha\n2\tbeta\n3\tgamma\n4\tdelta\n5\tepsilon\n" {
		t.Errorf("rows: %q", got)
	}
	r := s.do(t, http.MethodGet, url.Values{"query": {"SELECT count() FROM t"}, "database": {db}}, nil)
	if r.status != 200 || r.body != "5\n" {
		t.Errorf("database parameter: %d %q", r.status, r.body)
	}
	r = s.do(t, http.MethodGet, url.Values{"query": {"SELECT id, name FROM " + db + ".t WHERE id = 1 FORMAT JSONEachRow"}}, nil)
	if r.body != `{"id":1,"name":"alpha"}`+"\n" || r.header.Get("X-ClickHouse-Format") != "JSONEachRow" {
		t.Errorf("FORMAT JSONEachRow: %q %v", r.body, r.header)
	}
	r = s.do(t, http.MethodGet, url.Values{"query": {"SELECT name FROM " + db + ".t WHERE id = 2"}, "default_format": {"CSV"}}, nil)
	if r.body != "\"beta\"\n" {
		t.Errorf("default_format=CSV: %q", r.body)
	}
	r = s.do(t, http.MethodPost, nil, strings.NewReader("SELECT max(id) FROM "+db+".t"))
	if r.status != 200 || r.body != "5\n" {
		t.Errorf("SELECT in body: %d %q", r.status, r.body)
	}
	// GET is readonly, as in ClickHouse.
	r = s.do(t, http.MethodGet, url.Values{"query": {"INSERT INTO " + db + ".t VALUES (9, 'x')"}}, nil)
	if r.header.Get("X-ClickHouse-Exception-Code") != "164" {
		t.Errorf("INSERT over GET: %d %v %q", r.status, r.header, r.body)
	}
}

// TestErrorCodes checks that failures carry ClickHouse's exception code in
// X-ClickHouse-Exception-Code and in a "Code: N. DB::Exception: ..." body,
// with the code of the engine's own error passed through.
func TestErrorCodes(t *testing.T) {
	s := sharedServerFor(t)
	db := freshDB(t, s, "errs")
	s.query(t, "CREATE TABLE "+db+".c (a UInt32, CONSTRAINT small CHECK a < 100) ENGINE = MergeTree ORDER BY a")

	// Native data for a violating row, as the engine writes it (revision 0).
	native := s.do(t, http.MethodGet, url.Values{"query": {"SELECT toUInt32(500) AS a FORMAT Native"}}, nil)
	if native.status != 200 || len(native.body) == 0 {
		t.Fatalf("native sample: %d %q", native.status, native.body)
	}

	for _, tc := range []struct {
		name   string
		method string
		params url.Values
		body   string
		code   string
		status int
		text   string
	}{
		{"unknown table", "GET", url.Values{"query": {"SELECT * FROM " + db + ".nope"}}, "", "60", 404, "UNKNOWN_TABLE"},
		{"syntax error", "GET", url.Values{"query": {"SELEC 1"}}, "", "62", 400, "SYNTAX_ERROR"},
		{"unknown database", "GET", url.Values{"query": {"SELECT 1"}, "database": {"nope"}}, "", "81", 404, "UNKNOWN_DATABASE"},
		{"constraint, TSV", "POST", url.Values{"query": {"INSERT INTO " + db + ".c FORMAT TabSeparated"}}, "500\n", "469", 500, "VIOLATED_CONSTRAINT"},
		{"constraint, Native", "POST", url.Values{"query": {"INSERT INTO " + db + ".c (a) FORMAT Native"}}, native.body, "469", 500, "VIOLATED_CONSTRAINT"},
		{"cannot parse", "POST", url.Values{"query": {"INSERT INTO " + db + ".c FORMAT TabSeparated"}}, "abc\n", "27", 400, "CANNOT_PARSE"},
		{"truncated Native", "POST", url.Values{"query": {"INSERT INTO " + db + ".c (a) FORMAT Native"}}, native.body[:len(native.body)-2], "33", 500, "CANNOT_READ_ALL_DATA"},
		{"bad frame", "POST", url.Values{"query": {"INSERT INTO " + db + ".c FORMAT TabSeparated"}, "decompress": {"1"}}, strings.Repeat("garbage!", 8), "", 0, ""},
		{"unknown encoding", "POST", url.Values{"query": {"SELECT 1"}}, "x", "89", 500, "UNKNOWN_COMPRESSION_METHOD"},
		{"empty POST", "POST", nil, "", "62", 400, "Empty query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.url("/")+"?"+tc.params.Encode(), strings.NewReader(tc.body))
			if tc.name == "unknown encoding" {
				req.Header.Set("Content-Encoding", "snappy-ish")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code := resp.Header.Get("X-ClickHouse-Exception-Code")
			if code == "" || resp.StatusCode == 200 {
				t.Fatalf("no exception: %d %v %q", resp.StatusCode, resp.Header, b)
			}
			if tc.code != "" && code != tc.code {
				t.Errorf("exception code %s, want %s: %q", code, tc.code, b)
			}
			if tc.status != 0 && resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !strings.HasPrefix(string(b), "Code: "+code+". DB::Exception: ") || !strings.Contains(string(b), tc.text) {
				t.Errorf("body %q", b)
			}
		})
	}
	if n := s.count(t, db+".c"); n != 0 {
		t.Errorf("%s.c has %d rows after failed inserts", db, n)
	}

	// With compress=1 the error body is compressed like any response.
	r := s.do(t, http.MethodPost, url.Values{"query": {"SELECT * FROM " + db + ".nope"}, "compress": {"1"}}, nil)
	if r.header.Get("X-ClickHouse-Exception-Code") != "60" {
		t.Fatalf("compressed error: %v", r.header)
	}
	plain, err := io.ReadAll(&eofReader{compress.NewReader(strings.NewReader(r.body))})
	if err != nil {
		t.Fatalf("read compressed error body: %v", err)
	}
	if !strings.HasPrefix(string(plain), "Code: 60. DB::Exception: ") {
		t.Errorf("compressed error body: %q", plain)
	}
}

// eofReader ends a ch-go compressed stream cleanly at a frame boundary.
type eofReader struct{ r io.Reader }

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && strings.HasSuffix(err.Error(), "EOF") && !strings.Contains(err.Error(), "unexpected") {
		return n, io.EOF
	}
	return n, err
}

// TestClickHouseGo drives devclickhouse with clickhouse-go over HTTP, as the
// exporter does, and checks that results of assorted types decode and that
// errors reach the client with their code, for each compression.
func TestClickHouseGo(t *testing.T) {
	s := sharedServerFor(t)
	methods := map[string]clickhouse.CompressionMethod{
		"lz4": clickhouse.CompressionLZ4, "zstd": clickhouse.CompressionZSTD, "none": clickhouse.CompressionNone,
		"gzip": clickhouse.CompressionGZIP, "deflate": clickhouse.CompressionDeflate, "br": clickhouse.CompressionBrotli,
	}
	for name, method := range methods {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			conn, err := clickhouse.Open(&clickhouse.Options{
				Protocol:    clickhouse.HTTP,
				Addr:        []string{s.addr},
				Compression: &clickhouse.Compression{Method: method},
				DialTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}

			rows, err := conn.Query(ctx, `SELECT toString(number) AS s, number AS n, [number, 1] AS arr,
				map('k', toString(number)) AS m, toLowCardinality('lc') AS lc, toDateTime64('2024-01-02 03:04:05', 9, 'UTC') AS ts,
				CAST(NULL AS Nullable(String)) AS nul, toFloat64(number) / 2 AS f FROM numbers(3)`)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			var got []string
			for rows.Next() {
				var (
					str string
					n   uint64
					arr []uint64
					m   map[string]string
					lc  string
					ts  time.Time
					nul *string
					f   float64
				)
				if err := rows.Scan(&str, &n, &arr, &m, &lc, &ts, &nul, &f); err != nil {
					t.Fatalf("scan: %v", err)
				}
				got = append(got, fmt.Sprintf("%s %d %v %v %s %s %v %g", str, n, arr, m, lc, ts.UTC().Format(time.RFC3339), nul, f))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"0 0 [0 1] map[k:0] lc 2024-01-02T03:04:05Z <nil> 0",
				"1 1 [1 1] map[k:1] lc 2024-01-02T03:04:05Z <nil> 0.5",
				"2 2 [2 1] map[k:2] lc 2024-01-02T03:04:05Z <nil> 1",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			// Query asks for a compressed answer (compress=1) with lz4 and
			// zstd, so the error body comes compressed and reads back whole.
			_, err = conn.Query(ctx, "SELECT * FROM nope_"+name)
			if err == nil || !strings.Contains(err.Error(), "Code: 60") || !strings.Contains(err.Error(), "UNKNOWN_TABLE") {
				t.Errorf("query error: %v", err)
			}
			// Exec does not ask for compress=1 but clickhouse-go v2.46.0 still
			// decompresses the error body with lz4/zstd, so, as against a real
			// ClickHouse, only the HTTP status survives in the message.
			err = conn.Exec(ctx, "SELECT * FROM nope_"+name)
			switch {
			case err == nil:
				t.Errorf("exec error: none")
			case method == clickhouse.CompressionLZ4 || method == clickhouse.CompressionZSTD:
				if !strings.Contains(err.Error(), "[HTTP 404]") {
					t.Errorf("exec error: %v", err)
				}
			case !strings.Contains(err.Error(), "Code: 60") || !strings.Contains(err.Error(), "UNKNOWN_TABLE"):
				t.Errorf("exec error: %v", err)
			}

			db := freshDB(t, s, "chgo_"+name)
			if err := conn.Exec(ctx, "CREATE TABLE "+db+".c (a UInt32, s String, CONSTRAINT small CHECK a < 100) ENGINE = MergeTree ORDER BY a"); err != nil {
				t.Fatal(err)
			}
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".c")
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			for i := range 50 {
				if err := batch.Append(uint32(i), fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				t.Fatalf("send: %v", err)
			}
			batch, err = conn.PrepareBatch(ctx, "INSERT INTO "+db+".c")
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			_ = batch.Append(uint32(500), "too big")
			err = batch.Send()
			if err == nil || !strings.Contains(err.Error(), "Code: 469") || !strings.Contains(err.Error(), "VIOLATED_CONSTRAINT") {
				t.Errorf("constraint violation error: %v", err)
			}
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".c").Scan(&n); err != nil || n != 50 {
				t.Errorf("count: %d, %v", n, err)
			}
		})
	}
}

// TestConcurrency runs inserts and reads from many goroutines against two
// databases with the same table name: each statement must run in its own
// request's database, whatever runs beside it.
func TestConcurrency(t *testing.T) {
	s := sharedServerFor(t)
	dbs := []string{freshDB(t, s, "conc"), freshDB(t, s, "conc")}
	for _, db := range dbs {
		s.query(t, "CREATE TABLE "+db+".t (w UInt32, i UInt32) ENGINE = MergeTree ORDER BY (w, i)")
	}
	const workers, rounds, rowsPer = 8, 15, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[w%2]
			for r := range rounds {
				var body strings.Builder
				for i := range rowsPer {
					fmt.Fprintf(&body, "%d\t%d\n", w, r*rowsPer+i)
				}
				u := s.url("/") + "?" + url.Values{"query": {"INSERT INTO t FORMAT TabSeparated"}, "database": {db}}.Encode()
				resp, err := http.Post(u, "text/plain", strings.NewReader(body.String()))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("worker %d insert: %d %s", w, resp.StatusCode, b)
					return
				}
				u = s.url("/") + "?" + url.Values{"query": {fmt.Sprintf("SELECT count() FROM t WHERE w = %d", w)}, "database": {db}}.Encode()
				resp, err = http.Get(u)
				if err != nil {
					errs <- err
					return
				}
				b, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("%d\n", (r+1)*rowsPer); resp.StatusCode != 200 || string(b) != want {
					errs <- fmt.Errorf("worker %d round %d: count %d %q, want %q", w, r, resp.StatusCode, b, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, db := range dbs {
		if n := s.count(t, db+".t"); n != workers/2*rounds*rowsPer {
			t.Errorf("%s.t: %d rows, want %d", db, n, workers/2*rounds*rowsPer)
		}
	}
}

// TestBadInputNeverKills sends malformed requests and then checks that the
// server still answers.
func TestBadInputNeverKills(t *testing.T) {
	s := sharedServerFor(t)
	db := freshDB(t, s, "bad")
	s.query(t, "CREATE TABLE "+db+".t (a UInt64, s String, m Map(String, String)) ENGINE = MergeTree ORDER BY a")
	insert := func(format string) url.Values {
		return url.Values{"query": {"INSERT INTO t FORMAT " + format}, "database": {db}}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	frame := func(data []byte, method compress.Method) []byte {
		w := compress.NewWriter(compress.LevelZero, method)
		if err := w.Compress(data); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), w.Data...)
	}
	goodFrame := frame([]byte("1\tx\t{}\n"), compress.LZ4)
	corrupt := append([]byte(nil), goodFrame...)
	corrupt[len(corrupt)-1] ^= 0xff
	for i, tc := range []struct {
		params url.Values
		header map[string]string
		body   []byte
	}{
		{insert("Native"), nil, random(4096)},
		{insert("Native"), nil, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{insert("RowBinary"), nil, random(100)},
		{withParam(insert("TabSeparated"), "decompress", "1"), nil, corrupt},
		{withParam(insert("TabSeparated"), "decompress", "1"), nil, goodFrame[:len(goodFrame)-3]},
		{withParam(insert("TabSeparated"), "decompress", "1"), nil, random(64)},
		{url.Values{"query": {"SELECT 1"}, "compress": {"1"}, "decompress": {"1"}}, nil, random(10)},
		{insert("TabSeparated"), map[string]string{"Content-Encoding": "gzip"}, random(50)},
		{insert("TabSeparated"), map[string]string{"Content-Encoding": "zstd"}, random(50)},
		{url.Values{"query": {"SELECT number FROM numbers(3)"}, "default_format": {"Native"}, "client_protocol_version": {"54460"}}, nil, nil},
		{url.Values{"query": {"SELECT 1"}, "default_format": {"NoSuchFormat"}}, nil, nil},
		{nil, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, []byte("--x--")},
		{nil, nil, random(2000)},
		{url.Values{"query": {"INSERT INTO " + db + ".t FORMAT"}}, nil, []byte("1")},
		{url.Values{"query": {strings.Repeat("(", 100000)}}, nil, nil},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.url("/")+"?"+tc.params.Encode(), bytes.NewReader(tc.body))
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v (server died?)\nstderr:\n%s", i, err, s.stderr.String())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.Header.Get("X-ClickHouse-Exception-Code") == "" {
			t.Errorf("request %d: status %d without exception code: %q", i, resp.StatusCode, b)
		}
	}
	if got := s.query(t, "SELECT 40 + 2"); got != "42\n" {
		t.Fatalf("after bad input: %q", got)
	}
	select {
	case <-s.done:
		t.Fatalf("devclickhouse exited: %v\nstderr:\n%s", s.exitErr(), s.stderr.String())
	default:
	}
}

func withParam(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}
