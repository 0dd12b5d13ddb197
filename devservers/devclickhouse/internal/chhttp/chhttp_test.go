// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession/sessiontest"
)

func TestSplitInsert(t *testing.T) {
	for _, tc := range []struct {
		name         string
		param, body  string
		ok           bool
		head, format string
		data         string
	}{
		{"param and binary body", "INSERT INTO db.t (a, b) FORMAT Native", "\x02\x01bin", true, "INSERT INTO db.t (a, b) ", "Native", "\x02\x01bin"},
		{"lower case, settings", "insert into t settings async_insert=1 format TSV", "1\t2\n", true, "insert into t settings async_insert=1 ", "TSV", "1\t2\n"},
		{"statement in body", "", "INSERT INTO t FORMAT CSV\n1,2\n", true, "INSERT INTO t ", "CSV", "1,2\n"},
		{"CRLF after format", "", "INSERT INTO t FORMAT CSV\r\n1,2\n", true, "INSERT INTO t ", "CSV", "1,2\n"},
		{"data in param", "INSERT INTO t FORMAT TSV 1\t2", "", true, "INSERT INTO t ", "TSV", "1\t2"},
		{"data in param and body", "INSERT INTO t FORMAT TSV\n1\t2", "3\t4\n", true, "INSERT INTO t ", "TSV", "1\t2\n3\t4\n"},
		{"column named format", "INSERT INTO t (id, format) FORMAT TSV", "1\tx\n", true, "INSERT INTO t (id, format) ", "TSV", "1\tx\n"},
		{"values", "INSERT INTO t VALUES", "(1)", false, "", "", ""},
		{"insert select", "INSERT INTO t SELECT 1", "", false, "", "", ""},
		{"select", "SELECT 1 FORMAT JSON", "", false, "", "", ""},
		{"select in body", "", "SELECT 1 FORMAT JSON", false, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := splitInsert(tc.param, []byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if st.Head != tc.head || st.Format != tc.format || string(st.Data) != tc.data {
				t.Errorf("got head %q format %q data %q", st.Head, st.Format, st.Data)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, status := range map[int]int{27: 400, 60: 404, 62: 400, 53: 400, 81: 404, 241: 500, 252: 500, 159: 408, 48: 501, 194: 401, 497: 403, 1001: 500} {
		if got := httpStatus(code); got != status {
			t.Errorf("httpStatus(%d) = %d, want %d", code, got, status)
		}
	}
}

// nativeRev0 encodes columns as the engine's Native output does: no block
// info, no custom serialization flags.
func nativeRev0(t *testing.T, blocks ...[]proto.InputColumn) []byte {
	t.Helper()
	var buf proto.Buffer
	for _, cols := range blocks {
		b := proto.Block{Columns: len(cols), Rows: cols[0].Data.Rows()}
		if err := b.EncodeRawBlock(&buf, 0, cols); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Buf
}

func TestReencodeNative(t *testing.T) {
	in := nativeRev0(t,
		[]proto.InputColumn{
			{Name: "n", Data: &proto.ColUInt64{1, 2, 3}},
			{Name: "s", Data: func() *proto.ColStr { c := new(proto.ColStr); c.Append("a"); c.Append("b"); c.Append("c"); return c }()},
			{Name: "lc", Data: func() *proto.ColLowCardinality[string] {
				c := new(proto.ColStr).LowCardinality()
				c.AppendArr([]string{"x", "y", "x"})
				return c
			}()},
		},
		[]proto.InputColumn{
			{Name: "n", Data: &proto.ColUInt64{4}},
			{Name: "s", Data: func() *proto.ColStr { c := new(proto.ColStr); c.Append("d"); return c }()},
			{Name: "lc", Data: func() *proto.ColLowCardinality[string] {
				c := new(proto.ColStr).LowCardinality()
				c.Append("z")
				return c
			}()},
		},
	)
	const rev = 54460
	out, err := reencodeNative(in, rev)
	if err != nil {
		t.Fatal(err)
	}
	r := proto.NewReader(bytes.NewReader(out))
	var got []string
	for {
		var b proto.Block
		var res proto.Results
		if err := b.DecodeBlock(r, rev, res.Auto()); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decode at %d: %v", rev, err)
		}
		for i := range b.Rows {
			got = append(got, strconv.FormatUint(res[0].Data.(*proto.ColUInt64).Row(i), 10)+"/"+
				res[1].Data.(*proto.ColStr).Row(i)+"/"+res[2].Data.(*proto.ColLowCardinality[string]).Row(i))
		}
	}
	if want := "1/a/x 2/b/y 3/c/x 4/d/z"; strings.Join(got, " ") != want {
		t.Errorf("rows %q, want %q", strings.Join(got, " "), want)
	}

	if out, err := reencodeNative(nil, rev); err != nil || len(out) != 0 {
		t.Errorf("empty: %q %v", out, err)
	}
	if _, err := reencodeNative(in[:len(in)-3], rev); err == nil {
		t.Error("truncated input: no error")
	}
	if _, err := reencodeNative([]byte{1, 1, 1, 'x', 7, 'N', 'o', 'T', 'y', 'p', 'e', '!'}, rev); err == nil {
		t.Error("unknown type: no error")
	}
}

// fakeEngine records statements and answers from a function.
type fakeEngine = sessiontest.Engine

func newTestServer(t *testing.T, eng *fakeEngine) *httptest.Server {
	t.Helper()
	sess, err := sessiontest.NewSession(eng, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(sess, Options{}))
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, method string, params url.Values, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+"/?"+params.Encode(), bytes.NewReader(body))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPanicIsAnError(t *testing.T) {
	eng := &fakeEngine{Answer: func(q, _ string) ([]byte, error) {
		if strings.Contains(q, "boom") {
			var m map[string]int
			m["x"]++ // nil map write: a runtime panic
		}
		return []byte("1\n"), nil
	}}
	ts := newTestServer(t, eng)
	resp, b := get(t, ts, http.MethodPost, url.Values{"query": {"SELECT boom"}}, nil)
	if resp.StatusCode != 500 || resp.Header.Get("X-ClickHouse-Exception-Code") != "1001" || !strings.HasPrefix(string(b), "Code: 1001. DB::Exception: ") {
		t.Errorf("panic: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	resp, b = get(t, ts, http.MethodGet, url.Values{"query": {"SELECT 1"}}, nil)
	if resp.StatusCode != 200 || string(b) != "1\n" {
		t.Errorf("after panic: %d %q", resp.StatusCode, b)
	}
}

func TestCompressedRequestAndResponse(t *testing.T) {
	eng := &fakeEngine{Answer: func(q, _ string) ([]byte, error) {
		if strings.HasPrefix(q, "SELECT big") {
			return bytes.Repeat([]byte("0123456789abcdef"), 200_000), nil // > 1 frame
		}
		if strings.HasPrefix(q, "SELECT fail") {
			return nil, errors.New("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)")
		}
		return nil, nil
	}}
	ts := newTestServer(t, eng)

	for _, m := range []compress.Method{compress.LZ4, compress.ZSTD, compress.None} {
		w := compress.NewWriter(compress.LevelZero, m)
		var body []byte
		for _, part := range []string{"1\ta\n", "2\tb\n"} {
			if err := w.Compress([]byte(part)); err != nil {
				t.Fatal(err)
			}
			body = append(body, w.Data...)
		}
		resp, b := get(t, ts, http.MethodPost, url.Values{"query": {"INSERT INTO t FORMAT TabSeparated"}, "decompress": {"1"}}, body)
		if resp.StatusCode != 200 {
			t.Fatalf("%v insert: %d %q", m, resp.StatusCode, b)
		}
		files := eng.Files()
		got := files[len(files)-1]
		if got != "1\ta\n2\tb\n" {
			t.Errorf("%v: engine read %q", m, got)
		}
	}

	decode := func(b []byte) string {
		t.Helper()
		r := compress.NewReader(bytes.NewReader(b))
		var out bytes.Buffer
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				if !errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("decode: %v", err)
				}
				return out.String()
			}
		}
	}
	resp, b := get(t, ts, http.MethodGet, url.Values{"query": {"SELECT big"}, "compress": {"1"}}, nil)
	if got := decode(b); resp.StatusCode != 200 || len(got) != 3_200_000 || !strings.HasPrefix(got, "0123") {
		t.Errorf("compressed result: %d, %d bytes", resp.StatusCode, len(got))
	}
	resp, b = get(t, ts, http.MethodGet, url.Values{"query": {"SELECT fail"}, "compress": {"1"}}, nil)
	if got := decode(b); resp.StatusCode != 404 || !strings.HasPrefix(got, "Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE) (version 26.7.2.1)") {
		t.Errorf("compressed error: %d %q", resp.StatusCode, got)
	}
}

func TestDatabaseSelection(t *testing.T) {
	eng := &fakeEngine{}
	ts := newTestServer(t, eng)
	for _, db := range []string{"", "a", "a", "b`x", ""} {
		params := url.Values{"query": {"SELECT 1"}}
		if db != "" {
			params.Set("database", db)
		}
		if resp, b := get(t, ts, http.MethodGet, params, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	var uses []string
	for _, q := range eng.Statements() {
		if strings.HasPrefix(q, "USE ") {
			uses = append(uses, q)
		}
	}
	if want := "USE `default`|USE `a`|USE `b\\`x`|USE `default`"; strings.Join(uses, "|") != want {
		t.Errorf("USE statements %q, want %q", strings.Join(uses, "|"), want)
	}
}
