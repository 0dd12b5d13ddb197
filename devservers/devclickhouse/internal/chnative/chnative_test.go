// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession/sessiontest"
)

// rev0 encodes columns as the engine's Native output does.
func rev0(cols ...proto.InputColumn) []byte {
	var buf proto.Buffer
	b := proto.Block{Columns: len(cols), Rows: cols[0].Data.Rows()}
	if err := b.EncodeRawBlock(&buf, 0, cols); err != nil {
		panic(err)
	}
	return buf.Buf
}

func strCol(vals ...string) *proto.ColStr {
	c := new(proto.ColStr)
	for _, v := range vals {
		c.Append(v)
	}
	return c
}

// fakeAnswers is an engine with a table t (a UInt32, s String,
// m UInt32 MATERIALIZED) and a few canned results.
func fakeAnswers(q, format string) ([]byte, error) {
	switch {
	case strings.Contains(q, "nope"):
		return nil, errors.New("Code: 60. DB::Exception: Unknown table expression identifier 'nope'. (UNKNOWN_TABLE) (version 26.7.2.1)")
	case strings.HasPrefix(q, "DESCRIBE TABLE"):
		return []byte("a\tUInt32\t\t\t\t\t\ns\tString\t\t\t\t\t\nm\tUInt32\tMATERIALIZED\ta * 2\t\t\t\n"), nil
	case strings.HasPrefix(q, "EXISTS DATABASE"):
		if strings.Contains(q, "missing") {
			return []byte("0\n"), nil
		}
		return []byte("1\n"), nil
	case strings.HasPrefix(q, "SELECT empty") && format == "TabSeparatedWithNamesAndTypes":
		return []byte("x\ty\\tz\nUInt8\tString\n"), nil
	case strings.HasPrefix(q, "SELECT empty"):
		return nil, nil
	case strings.HasPrefix(q, "SELECT rows") && format == "Native":
		return append(
			rev0(proto.InputColumn{Name: "n", Data: &proto.ColUInt64{1, 2}}, proto.InputColumn{Name: "s", Data: strCol("a", "b")}),
			rev0(proto.InputColumn{Name: "n", Data: &proto.ColUInt64{3}}, proto.InputColumn{Name: "s", Data: strCol("c")})...), nil
	}
	return nil, nil
}

func newFake() *sessiontest.Engine { return &sessiontest.Engine{Answer: fakeAnswers} }

// rowsOf renders the data blocks of a result (the header has no rows).
func rowsOf(t *testing.T, res result) string {
	t.Helper()
	var out []string
	for _, b := range res.blocks {
		if len(b) == 0 || b[0].Data.Rows() == 0 {
			continue
		}
		for i := range b[0].Data.Rows() {
			out = append(out, fmt.Sprintf("%d/%s", b[0].Data.(*proto.ColUInt64).Row(i),
				b[1].Data.(*proto.ColStr).Row(i)))
		}
	}
	return strings.Join(out, " ")
}

func TestHandshake(t *testing.T) {
	ts := startServer(t, newFake(), Options{})
	for _, rev := range []int{54460, 54470, 54458, 54454, 54441, minRevision} {
		c, h := connect(t, ts.addr, rev, compress.None)
		if h.Name != "ClickHouse" || h.Revision != serverRevision || h.Major != 26 || h.Minor != 7 || h.Patch != 2 ||
			h.Timezone != "Etc/UTC" || h.DisplayName != "devclickhouse" {
			t.Errorf("rev %d: hello %+v", rev, h)
		}
		// The connection speaks min(client, server) from here on.
		c.send(c.packets().query("SELECT rows"))
		if res := c.answer(false); res.exc != nil || rowsOf(t, res) != "1/a 2/b 3/c" {
			t.Errorf("rev %d: %v %q", rev, res.exc, rowsOf(t, res))
		}
		c.send(c.packets().ping())
		if code := c.code(); code != proto.ServerCodePong {
			t.Errorf("rev %d: ping answered %s", rev, code)
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	ts := startServer(t, newFake(), Options{HTTPAddr: "127.0.0.1:8123"})

	c := dial(t, ts.addr)
	c.send(newPackets(54000, compress.None).hello(54000, ""))
	if exc := c.closed(); exc == nil || exc.Code != proto.ErrProtocolVersionMismatch ||
		!strings.Contains(exc.Message, "revision 54000; devclickhouse serves revisions 54429 to 54460") {
		t.Errorf("old revision: %+v", exc)
	}

	c = dial(t, ts.addr)
	c.send(newPackets(54460, compress.None).hello(54460, "missing"))
	if exc := c.closed(); exc == nil || exc.Code != proto.ErrUnknownDatabase {
		t.Errorf("unknown database: %+v", exc)
	}

	c = dial(t, ts.addr)
	c.send(newPackets(54460, compress.None).ping())
	if exc := c.closed(); exc == nil || exc.Code != proto.ErrUnexpectedPacketFromClient {
		t.Errorf("ping before hello: %+v", exc)
	}

	c = dial(t, ts.addr)
	if _, err := c.nc.Write([]byte("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(c.nc)
	if !strings.HasPrefix(got.String(), "HTTP/1.0 400 Bad Request\r\n") || !strings.Contains(got.String(), "You must use port 8123 for HTTP.") {
		t.Errorf("HTTP on the native port: %q", got.String())
	}
}

// TestHostileLengths checks that a declared length costs nothing before
// its bytes arrive: the server refuses it at once.
func TestHostileLengths(t *testing.T) {
	ts := startServer(t, newFake(), Options{MaxQueryBytes: 1 << 20})
	c := dial(t, ts.addr)
	var p proto.Buffer
	proto.ClientCodeHello.Encode(&p)
	p.PutUVarInt(1 << 40) // a client name of a terabyte
	c.send(&packets{b: p})
	if exc := c.closed(); exc == nil || exc.Code != proto.ErrTooLargeStringSize {
		t.Errorf("huge name: %+v", exc)
	}

	c, _ = connect(t, ts.addr, 54460, compress.None)
	// The server stops reading at the length: the write may fail.
	_, _ = c.nc.Write(c.packets().query(strings.Repeat("x", 2<<20)).b.Buf)
	if exc := c.closed(); exc == nil || exc.Code != proto.ErrTooLargeStringSize {
		t.Errorf("query above MaxQueryBytes: %+v", exc)
	}
}

func TestQueryResults(t *testing.T) {
	ts := startServer(t, newFake(), Options{})
	for _, m := range []compress.Method{compress.None, compress.LZ4, compress.ZSTD} {
		c, _ := connect(t, ts.addr, 54460, m)
		c.send(c.packets().query("SELECT rows FORMAT JSON"))
		res := c.answer(false)
		if res.exc != nil || len(res.blocks) != 3 || res.blocks[0][0].Name != "n" || res.blocks[0][0].Data.Rows() != 0 {
			t.Fatalf("%v: header then two blocks: %+v", m, res)
		}
		if got := rowsOf(t, res); got != "1/a 2/b 3/c" {
			t.Errorf("%v: rows %q", m, got)
		}
		if !res.profile || len(res.progress) != 1 || res.progress[0].Rows != 3 {
			t.Errorf("%v: profile %v, progress %+v", m, res.profile, res.progress)
		}
		// An empty result still names its columns.
		c.send(c.packets().query("SELECT empty"))
		res = c.answer(false)
		if res.exc != nil || len(res.blocks) != 1 || len(res.blocks[0]) != 2 || res.blocks[0][1].Name != "y\tz" ||
			res.blocks[0][1].Data.Type() != "String" {
			t.Errorf("%v: empty result: %+v", m, res)
		}
		// A statement without a result: nothing but the end.
		c.send(c.packets().query("CREATE TABLE x (a UInt8) ENGINE = Memory"))
		if res := c.answer(false); res.exc != nil || len(res.blocks) != 0 {
			t.Errorf("%v: DDL: %+v", m, res)
		}
	}
	// The engine ran the statements without their FORMAT clause.
	for _, q := range ts.eng.Statements() {
		if strings.Contains(q, "FORMAT JSON") {
			t.Errorf("FORMAT clause reached the engine: %q", q)
		}
	}
}

func TestExceptionsKeepTheConnection(t *testing.T) {
	ts := startServer(t, newFake(), Options{})
	c, _ := connect(t, ts.addr, 54460, compress.LZ4)
	for _, tc := range []struct {
		query    string
		settings []proto.Setting
		code     proto.Error
		message  string
	}{
		{"SELECT * FROM nope", nil, 60, "DB::Exception: Unknown table expression identifier 'nope'."},
		{"SELECT 1", []proto.Setting{{Key: "bad name", Value: "1", Important: true}}, 115, "DB::Exception: Unknown setting 'bad name'."},
		{"SELECT 1", []proto.Setting{{Key: "readonly", Value: "x", Important: true}}, 36, ""},
		{"CREATE TABLE x (a UInt8) ENGINE = Memory", []proto.Setting{{Key: "readonly", Value: "1"}}, 164, ""},
		{"  ", nil, 62, "DB::Exception: Empty query."},
		{"SELECT rows", []proto.Setting{{Key: "dialect", Value: "prql", Important: true}}, 48, ""},
	} {
		c.send(c.packets().query(tc.query, tc.settings...))
		res := c.answer(false)
		if res.exc == nil || res.exc.Code != tc.code || res.exc.Name != "DB::Exception" ||
			tc.message != "" && res.exc.Message != tc.message {
			t.Errorf("%q: %+v, want code %d %q", tc.query, res.exc, tc.code, tc.message)
		}
		c.send(c.packets().ping())
		if code := c.code(); code != proto.ServerCodePong {
			t.Fatalf("after %q: ping answered %s", tc.query, code)
		}
	}
}

func TestSettingsUseAndSet(t *testing.T) {
	eng := newFake()
	ts := startServer(t, eng, Options{})
	c, _ := connect(t, ts.addr, 54460, compress.None)
	eng.Statements()
	c.send(c.packets().query("SELECT empty",
		proto.Setting{Key: "max_threads", Value: "3", Important: true},
		proto.Setting{Key: "custom_x", Value: "'it''s'", Custom: true},
		proto.Setting{Key: "max_threads", Value: "4", Important: true}, // the last one wins
	))
	c.answer(false)
	want := []string{
		"USE `default`",
		"SET custom_x = 'it\\'s', max_threads = '4'",
		"SELECT empty",
		"SET custom_x = DEFAULT, max_threads = DEFAULT",
	}
	if got := eng.Statements(); strings.Join(got[:4], "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// SET and USE last as long as the connection, and only there.
	c.send(c.packets().query("SET max_threads = 5, insert_deduplication_token = 'a,b'"))
	if res := c.answer(false); res.exc != nil {
		t.Fatal(res.exc)
	}
	c.send(c.packets().query("USE `other db`"))
	if res := c.answer(false); res.exc != nil {
		t.Fatal(res.exc)
	}
	eng.Statements()
	c.send(c.packets().query("SELECT empty", proto.Setting{Key: "max_threads", Value: "6", Important: true}))
	c.answer(false)
	got := strings.Join(eng.Statements(), "\n")
	if !strings.Contains(got, "USE `other db`\nSET insert_deduplication_token = 'a,b', max_threads = '6'\nSELECT empty") {
		t.Errorf("after SET and USE:\n%s", got)
	}
	c.send(c.packets().query("SET insert_deduplication_token = DEFAULT"))
	c.answer(false)
	eng.Statements()
	c.send(c.packets().query("SELECT empty"))
	c.answer(false)
	if got := strings.Join(eng.Statements(), "\n"); !strings.Contains(got, "SET max_threads = '5'\nSELECT empty") {
		t.Errorf("after SET ... DEFAULT:\n%s", got)
	}
	other, _ := connect(t, ts.addr, 54460, compress.None)
	eng.Statements()
	other.send(other.packets().query("SELECT empty"))
	other.answer(false)
	if got := strings.Join(eng.Statements(), "\n"); strings.Contains(got, "SET") || !strings.Contains(got, "USE `default`") {
		t.Errorf("another connection inherited a SET or USE:\n%s", got)
	}
}

func TestInsertBlocks(t *testing.T) {
	eng := newFake()
	ts := startServer(t, eng, Options{})
	block := func(from int) []proto.InputColumn {
		return []proto.InputColumn{
			{Name: "a", Data: &proto.ColUInt32{uint32(from), uint32(from + 1)}},
			{Name: "s", Data: strCol(fmt.Sprint("x", from), "y")},
		}
	}
	for _, m := range []compress.Method{compress.None, compress.LZ4, compress.ZSTD} {
		for _, query := range []string{"INSERT INTO db.t (a, `s`) FORMAT Native", "INSERT INTO t VALUES", "insert into \"t\" SETTINGS async_insert = 1 format Native"} {
			c, _ := connect(t, ts.addr, 54460, m)
			c.send(c.packets().query(query, proto.Setting{Key: "insert_deduplication_token", Value: "tok", Important: true}))
			res := c.answer(true)
			if res.exc != nil || len(res.blocks) != 1 || len(res.blocks[0]) != 2 || res.blocks[0][0].Name != "a" ||
				res.blocks[0][0].Data.Type() != "UInt32" || res.blocks[0][1].Name != "s" {
				t.Fatalf("%v %s: header %+v", m, query, res)
			}
			eng.Statements()
			c.send(c.packets().data(block(1)).data(block(3)).data(nil))
			res = c.answer(false)
			if res.exc != nil || len(res.progress) != 1 || res.progress[0].WroteRows != 4 {
				t.Fatalf("%v %s: %+v", m, query, res)
			}
			stmts := eng.Statements()
			last := stmts[len(stmts)-1]
			if !strings.Contains(last, "SELECT * FROM file(") || !strings.Contains(last, "SETTINGS insert_deduplication_token = 'tok'") {
				t.Errorf("%v %s: insert statement %q", m, query, last)
			}
			files := eng.Files()
			want := append(rev0(block(1)...), rev0(block(3)...)...)
			if got := files[len(files)-1]; got != string(want) {
				t.Errorf("%v %s: the engine read %d bytes, want %d (revision 0 blocks)", m, query, len(got), len(want))
			}
		}
	}

	c, _ := connect(t, ts.addr, 54460, compress.LZ4)
	c.send(c.packets().query("INSERT INTO t (a, nosuch) VALUES"))
	if res := c.answer(true); res.exc == nil || res.exc.Code != proto.ErrNoSuchColumnInTable {
		t.Errorf("unknown column: %+v", res)
	}
	// Blocks whose columns are not the header's are refused, after the
	// stream, so that the connection goes on.
	c.send(c.packets().query("INSERT INTO t (s, a) VALUES"))
	c.answer(true)
	c.send(c.packets().data(block(1)).data(nil))
	if res := c.answer(false); res.exc == nil || res.exc.Code != proto.ErrIncorrectData {
		t.Errorf("columns out of order: %+v", res)
	}
	// No rows: nothing reaches the engine.
	eng.Statements()
	c.send(c.packets().query("INSERT INTO t (a) FORMAT Native"))
	c.answer(true)
	c.send(c.packets().data(nil))
	if res := c.answer(false); res.exc != nil {
		t.Errorf("empty insert: %v", res.exc)
	}
	if got := eng.Statements(); len(got) != 1 || !strings.HasPrefix(got[0], "DESCRIBE") {
		t.Errorf("empty insert ran %q", got)
	}
	// Inline data and INSERT ... SELECT run as they are.
	c.send(c.packets().query("INSERT INTO t FORMAT TSV\n1\tx\n"))
	if res := c.answer(false); res.exc != nil {
		t.Errorf("inline data: %v", res.exc)
	}
	c.send(c.packets().query("INSERT INTO t SELECT 1, 'values'"))
	if res := c.answer(false); res.exc != nil || len(res.blocks) != 0 {
		t.Errorf("insert select: %+v", res)
	}
	got := eng.Statements()
	if len(got) != 2 || !strings.Contains(got[0], "FROM INFILE") || got[1] != "INSERT INTO t SELECT 1, 'values'" {
		t.Errorf("statements %q", got)
	}
}

// TestMalformedClosesOnlyItsConnection sends broken packets on some
// connections while others query.
func TestMalformedClosesOnlyItsConnection(t *testing.T) {
	ts := startServer(t, newFake(), Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c, _ := connect(t, ts.addr, 54460, compress.LZ4)
			if i%2 == 0 {
				// Broken off inside a Query: the server waits for the rest
				// until the client leaves, then closes.
				c.send(&packets{b: proto.Buffer{Buf: []byte{byte(proto.ClientCodeQuery), 2, 'i', 'd', 9, 0xff}}})
				_ = c.nc.(*net.TCPConn).CloseWrite()
				c.closed()
				return
			}
			for range 20 {
				c.send(c.packets().query("SELECT rows"))
				if res := c.answer(false); res.exc != nil || rowsOf(t, res) != "1/a 2/b 3/c" {
					t.Errorf("query: %+v", res)
					return
				}
			}
		})
	}
	wg.Wait()
	httpInfo := newPackets(54460, compress.None)
	q := proto.Query{Body: "SELECT 1", Stage: proto.StageComplete, Info: proto.ClientInfo{Interface: proto.InterfaceHTTP, Query: proto.ClientQueryInitial}}
	q.EncodeAware(&httpInfo.b, 54460)
	badFrame := newPackets(54460, compress.LZ4).query("INSERT INTO t VALUES")
	for _, tc := range []struct {
		name   string
		send   []byte
		header bool // the query's answer is an INSERT header
		code   proto.Error
	}{
		{"unknown packet", []byte{77}, false, proto.ErrUnknownPacketFromClient},
		{"data between queries", newPackets(54460, compress.None).data(nil).b.Buf, false, proto.ErrUnexpectedPacketFromClient},
		{"hello again", newPackets(54460, compress.None).hello(54460, "").b.Buf, false, proto.ErrUnexpectedPacketFromClient},
		{"client info of HTTP", httpInfo.b.Buf, false, proto.ErrUnexpectedPacketFromClient},
		{"truncated query", newPackets(54460, compress.None).query("SELECT 1").b.Buf[:20], false, 0},
		{"bad compressed frame", append(badFrame.b.Buf, byte(proto.ClientCodeData), 0, 1, 2, 3), true, 0},
	} {
		c, _ := connect(t, ts.addr, 54460, compress.LZ4)
		c.send(&packets{b: proto.Buffer{Buf: tc.send}})
		_ = c.nc.(*net.TCPConn).CloseWrite()
		if tc.header {
			c.answer(true)
		}
		exc := c.closed()
		if tc.code != 0 && (exc == nil || exc.Code != tc.code) {
			t.Errorf("%s: %+v, want code %d", tc.name, exc, tc.code)
		}
	}
}
