// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
)

// openNative opens clickhouse-go over devclickhouse's native protocol.
func openNative(t *testing.T, s *server, method clickhouse.CompressionMethod, mod func(*clickhouse.Options)) clickhouse.Conn {
	t.Helper()
	opts := &clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{s.native},
		Compression: &clickhouse.Compression{Method: method},
		DialTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second,
	}
	if mod != nil {
		mod(opts)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestNativeClickHouseGo runs clickhouse-go's native transport against
// devclickhouse with each compression: ping, results of many types in
// several blocks, an empty result, exceptions with their codes, settings,
// a batch insert.
func TestNativeClickHouseGo(t *testing.T) {
	s := sharedServerFor(t)
	for _, method := range []clickhouse.CompressionMethod{clickhouse.CompressionLZ4, clickhouse.CompressionNone, clickhouse.CompressionZSTD} {
		t.Run(method.String(), func(t *testing.T) {
			ctx := testContext(t)
			conn := openNative(t, s, method, nil)
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			v, err := conn.ServerVersion()
			if err != nil || v.Revision != 54460 || v.Version.Major != 26 || v.DisplayName != "devclickhouse" {
				t.Errorf("server version %+v, %v", v, err)
			}
			scanTypes(t, ctx, conn)
			nativeBlocks(t, ctx, conn)
			nativeExceptions(t, ctx, conn)
			nativeSettings(t, ctx, conn)
			nativeInsert(t, ctx, s, conn)
		})
	}
}

// TestTypesOverHTTP reads the row of many types over HTTP too, where the
// same re-encoding serves clickhouse-go's client_protocol_version.
func TestTypesOverHTTP(t *testing.T) {
	scanTypes(t, testContext(t), openClickHouse(t, sharedServerFor(t), overHTTP, nil))
}

// scanTypes reads one row of many types: the engine's Native output,
// re-encoded at the client's revision, decoded by clickhouse-go.
func scanTypes(t *testing.T, ctx context.Context, conn clickhouse.Conn) {
	t.Helper()
	var (
		u    uint64
		str  string
		lc   string
		arr  []uint32
		m    map[string]string
		n    *int32
		null *string
		dt   time.Time
		id   uuid.UUID
		tup  []any
		am   []map[string]string
		fs   string
		b    bool
		e    string
		lcs  []string
	)
	err := conn.QueryRow(ctx, `SELECT toUInt64(42), 'it''s', toLowCardinality('lc'), [1, 2, 3]::Array(UInt32),
		map('k', 'v')::Map(LowCardinality(String), String), toNullable(toInt32(7)), NULL::Nullable(String),
		toDateTime64('2024-01-02 03:04:05.123456789', 9, 'UTC'), toUUID('5b8efff7-9803-8103-d269-b633813fc601'),
		(1, 'a')::Tuple(a UInt8, b String), [map('x', 'y'), map()]::Array(Map(LowCardinality(String), String)),
		toFixedString('ab', 2), true, 'y'::Enum8('x' = 1, 'y' = 2), [toLowCardinality('p'), 'q']`).
		Scan(&u, &str, &lc, &arr, &m, &n, &null, &dt, &id, &tup, &am, &fs, &b, &e, &lcs)
	if err != nil {
		t.Fatalf("types: %v", err)
	}
	got := strings.TrimSpace(fmt.Sprintln(u, str, lc, arr, m, *n, null, dt.UTC().Format(time.RFC3339Nano), id, tup, am, fs, b, e, lcs))
	want := "42 it's lc [1 2 3] map[k:v] 7 <nil> 2024-01-02T03:04:05.123456789Z 5b8efff7-9803-8103-d269-b633813fc601 [1 a] [map[x:y] map[]] ab true y [p q]"
	if got != want {
		t.Errorf("types:\n got %s\nwant %s", got, want)
	}
}

// nativeBlocks reads a result of many blocks and an empty one.
func nativeBlocks(t *testing.T, ctx context.Context, conn clickhouse.Conn) {
	t.Helper()
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 1000}))
	rows, err := conn.Query(ctx, "SELECT number, toString(number) FROM numbers(25000)")
	if err != nil {
		t.Fatal(err)
	}
	var sum, count uint64
	for rows.Next() {
		var (
			n uint64
			s string
		)
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		sum += n
		count++
	}
	if err := rows.Err(); err != nil || count != 25000 || sum != 25000*24999/2 {
		t.Errorf("blocks: %d rows, sum %d, %v", count, sum, err)
	}
	rows, err = conn.Query(ctx, "SELECT 1 AS one, 'x' AS two WHERE 0")
	if err != nil {
		t.Fatalf("empty result: %v", err)
	}
	if cols := rows.Columns(); len(cols) != 2 || cols[1] != "two" || rows.ColumnTypes()[0].DatabaseTypeName() != "UInt8" || rows.Next() {
		t.Errorf("empty result: columns %v", cols)
	}
	rows.Close()
}

// nativeExceptions checks the codes of the engine's errors and that the
// connection keeps serving after them.
func nativeExceptions(t *testing.T, ctx context.Context, conn clickhouse.Conn) {
	t.Helper()
	for _, tc := range []struct {
		query    string
		settings clickhouse.Settings
		code     int32
		text     string
	}{
		{"SELECT * FROM e2e_no_such_table", nil, 60, "Unknown table expression identifier 'e2e_no_such_table'"},
		{"SELEC 1", nil, 62, "Syntax error"},
		{"SELECT 1", clickhouse.Settings{"e2e_no_such_setting": 1}, 115, "Unknown setting"},
		{"SELECT throwIf(1, 'boom')", nil, 395, "boom"},
		{"CREATE TABLE e2e_ro (a UInt8) ENGINE = Memory", clickhouse.Settings{"readonly": 1}, 164, "readonly"},
	} {
		qctx := ctx
		if tc.settings != nil {
			qctx = clickhouse.Context(ctx, clickhouse.WithSettings(tc.settings))
		}
		var exc *clickhouse.Exception
		err := conn.Exec(qctx, tc.query)
		if !errors.As(err, &exc) || exc.Code != tc.code || !strings.Contains(exc.Message, tc.text) {
			t.Errorf("%s: %v, want code %d with %q", tc.query, err, tc.code, tc.text)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("after %s: ping: %v", tc.query, err)
		}
	}
}

// nativeSettings checks that a query's settings are that query's alone.
func nativeSettings(t *testing.T, ctx context.Context, conn clickhouse.Conn) {
	t.Helper()
	get := func(ctx context.Context) string {
		var v string
		if err := conn.QueryRow(ctx, "SELECT getSetting('max_threads')::String").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := get(ctx)
	if got := get(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_threads": 3}))); got != "3" {
		t.Errorf("max_threads with the setting: %s", got)
	}
	if got := get(ctx); got != base {
		t.Errorf("max_threads after: %s, want %s", got, base)
	}
}

// nativeInsert inserts with PrepareBatch, the exporter's way, with a
// deduplication token in the query's settings.
func nativeInsert(t *testing.T, ctx context.Context, s *server, conn clickhouse.Conn) {
	t.Helper()
	table := dedupTable(t, s, "native_insert")
	insert := func(token string, from int) {
		t.Helper()
		ctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (id, s)")
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < from+500; i++ {
			if err := batch.Append(uint32(i), fmt.Sprint("row ", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	insert("a", 0)
	insert("a", 1000) // same token: dropped
	insert("b", 1000)
	if got := s.query(t, "SELECT count(), min(id), max(id), countIf(s = concat('row ', toString(id))) FROM "+table); got != "1000\t0\t1499\t1000\n" {
		t.Errorf("inserted rows: %q", got)
	}
}

// TestNativeSession checks what lasts as long as a connection, as in a
// ClickHouse session: SET and USE.
func TestNativeSession(t *testing.T) {
	s := sharedServerFor(t)
	db := freshDB(t, s, "native_session")
	s.query(t, "CREATE TABLE "+db+".t (a UInt8) ENGINE = Memory")
	ctx := testContext(t)
	conn := openNative(t, s, clickhouse.CompressionLZ4, func(o *clickhouse.Options) { o.MaxOpenConns, o.MaxIdleConns = 1, 1 })
	if err := conn.Exec(ctx, "SET max_threads = 7"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "USE "+db); err != nil {
		t.Fatal(err)
	}
	var threads string
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT getSetting('max_threads')::String, (SELECT count() FROM t)").Scan(&threads, &n); err != nil {
		t.Fatal(err)
	}
	if threads != "7" {
		t.Errorf("max_threads after SET: %s", threads)
	}
	// Another connection, and the HTTP interface, keep their own.
	other := openNative(t, s, clickhouse.CompressionLZ4, nil)
	if err := other.QueryRow(ctx, "SELECT getSetting('max_threads')::String").Scan(&threads); err != nil || threads == "7" {
		t.Errorf("another connection: max_threads %s, %v", threads, err)
	}
	if got := s.query(t, "SELECT getSetting('max_threads') = 7, currentDatabase()"); got != "0\tdefault\n" {
		t.Errorf("HTTP after a native SET and USE: %q", got)
	}
	// A database that does not exist is refused at the handshake.
	bad := openNative(t, s, clickhouse.CompressionLZ4, func(o *clickhouse.Options) { o.Auth.Database = "e2e_no_such_db" })
	var exc *clickhouse.Exception
	if err := bad.Ping(ctx); !errors.As(err, &exc) || exc.Code != 81 {
		t.Errorf("unknown database: %v", err)
	}
}

// rawConn dials the native port with a deadline for the whole exchange.
func rawConn(t *testing.T, s *server) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.native, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return nc
}

// readUntilClosed reads what the server sends until it closes the
// connection, failing at the deadline.
func readUntilClosed(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(nc)
	if err != nil && !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("the server did not close the connection: %v (read %d bytes)", err, len(b))
	}
	return b
}

// TestNativeBadClients sends garbage, a Hello of an old revision and an
// HTTP request to the native port: each connection gets an exception (or
// an HTTP answer) and is closed, and a proper client is served after them.
func TestNativeBadClients(t *testing.T) {
	s := sharedServerFor(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		nc := rawConn(t, s)
		junk := make([]byte, 1+rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.UintN(256))
		}
		if i%2 == 0 {
			junk[0] = byte(proto.ClientCodeHello) // garbage inside a Hello
		}
		_, _ = nc.Write(junk)
		_ = nc.(*net.TCPConn).CloseWrite()
		readUntilClosed(t, nc)
	}

	// A client of a revision devclickhouse does not serve.
	nc := rawConn(t, s)
	var hello proto.Buffer
	proto.ClientHello{Name: "old-client", Major: 1, Minor: 1, ProtocolVersion: 54000, Database: "default", User: "default"}.Encode(&hello)
	if _, err := nc.Write(hello.Buf); err != nil {
		t.Fatal(err)
	}
	r := proto.NewReader(nc)
	code, err := r.ReadByte()
	if err != nil || proto.ServerCode(code) != proto.ServerCodeException {
		t.Fatalf("old revision: packet %d, %v; want an exception", code, err)
	}
	var exc proto.Exception
	if err := exc.DecodeAware(r, 0); err != nil {
		t.Fatal(err)
	}
	if exc.Code != proto.ErrProtocolVersionMismatch || !strings.Contains(exc.Message, "revision 54000") {
		t.Errorf("old revision: %+v", exc)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("old revision: connection not closed after the exception: %v", err)
	}

	// HTTP on the native port.
	nc = rawConn(t, s)
	if _, err := io.WriteString(nc, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_, httpPort, _ := net.SplitHostPort(s.addr)
	if got := string(readUntilClosed(t, nc)); !strings.HasPrefix(got, "HTTP/1.0 400 Bad Request") || !strings.Contains(got, "use port "+httpPort+" for HTTP") {
		t.Errorf("HTTP on the native port: %q", got)
	}

	// A connection that stays silent is no one else's problem.
	_ = rawConn(t, s)
	ctx := testContext(t)
	conn := openNative(t, s, clickhouse.CompressionLZ4, nil)
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("proper client after bad ones: %d, %v", one, err)
	}
}

// TestReadyLine checks the ready line without and with the native
// protocol: unchanged without it, the native address appended with it.
func TestReadyLine(t *testing.T) {
	s := startServerArgs(t, t.TempDir())
	if s.native != "" {
		t.Errorf("native address %q without --native-listen", s.native)
	}
	s.stop(t)
	s = startServer(t, t.TempDir())
	if s.native == "" {
		t.Error("no native address with --native-listen")
	}
	// Stopping with an idle native connection and a client that said
	// nothing is as quick as without (stop fails after 30 s).
	ctx := testContext(t)
	conn := openNative(t, s, clickhouse.CompressionLZ4, nil)
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_ = rawConn(t, s)
	start := time.Now()
	s.stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v", d)
	}
}
