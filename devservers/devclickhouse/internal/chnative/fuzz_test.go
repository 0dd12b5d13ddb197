// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// FuzzPacketReader feeds arbitrary bytes to a connection, as a client that
// sends them and leaves: the server reads them as Hello, Query and Data
// packets (and whatever else they say), runs what they ask on a fake
// engine, and must neither panic nor hang. The seeds are well-formed
// conversations; `go test` runs them, `go test -fuzz FuzzPacketReader`
// mutates them.
func FuzzPacketReader(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	sess, err := chsession.New(answerEngine(fakeAnswers), chsession.Options{TempDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	srv := New(sess, Options{MaxQueryBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			newConn(srv, &memConn{r: bytes.NewReader(data)}).serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the connection still runs 10 s after its input ended (%d bytes)", len(data))
		}
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("%d panics (see the log above)", n)
		}
	})
}

// TestFuzzSeedsGoDeep checks that the seeds are conversations the server
// follows to their end, so that fuzzing starts from every kind of packet.
func TestFuzzSeedsGoDeep(t *testing.T) {
	sess, err := chsession.New(answerEngine(fakeAnswers), chsession.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(sess, Options{})
	// The last byte of each answer: EndOfStream, Pong, Exception (old
	// revision), or the HTTP answer's.
	for i, want := range []byte{byte(proto.ServerCodePong), byte(proto.ServerCodeEndOfStream), byte(proto.ServerCodeEndOfStream),
		byte(proto.ServerCodeEndOfStream), 0, byte(proto.ServerCodeEndOfStream),
		byte(proto.ServerCodeEndOfStream), byte(proto.ServerCodeEndOfStream), 0, '\n', 0} {
		var out bytes.Buffer
		newConn(srv, &memConn{r: bytes.NewReader(fuzzSeeds()[i]), out: &out}).serve()
		if out.Len() == 0 || want != 0 && out.Bytes()[out.Len()-1] != want {
			t.Errorf("seed %d: answer of %d bytes ends with %d, want %d", i, out.Len(), out.Bytes()[max(0, out.Len()-1)], want)
		}
	}
}

func fuzzSeeds() [][]byte {
	lc := new(proto.ColStr).LowCardinality()
	lc.AppendArr([]string{"x", "y", "x"})
	arr := new(proto.ColStr).Array()
	arr.AppendArr([][]string{{"a"}, {}, {"b", "c"}})
	block := []proto.InputColumn{
		{Name: "a", Data: &proto.ColUInt32{1, 2, 3}}, {Name: "s", Data: strCol("p", "q", "r")},
		{Name: "lc", Data: lc}, {Name: "arr", Data: arr},
	}
	conversation := func(rev int, m compress.Method) *packets {
		return newPackets(rev, m).hello(rev, "").addendum()
	}
	return [][]byte{
		conversation(54460, compress.None).ping().b.Buf,
		conversation(54460, compress.None).query("SELECT * FROM nope").query("SELECT rows").query("SELECT empty").b.Buf,
		conversation(54460, compress.LZ4).query("SELECT rows", proto.Setting{Key: "max_threads", Value: "2", Important: true}).b.Buf,
		conversation(54460, compress.None).query("INSERT INTO t (a, s) FORMAT Native").data(block[:2]).data(nil).b.Buf,
		conversation(54460, compress.LZ4).query("INSERT INTO t VALUES").data(block[:2]).data(block[:2]).data(nil).
			queryOnly("SELECT rows").data(block).data(nil).b.Buf, // an external table, refused

		conversation(54460, compress.ZSTD).query("INSERT INTO t (a, s) VALUES").data(block[:2]).data(nil).b.Buf,
		conversation(54460, compress.None).query("SET max_threads = 1").query("USE db").query("INSERT INTO t FORMAT TSV\n1\tx\n").b.Buf,
		conversation(54429, compress.None).query("SELECT rows").b.Buf,
		conversation(54000, compress.None).b.Buf,
		[]byte("GET /ping HTTP/1.1\r\n\r\n"),
		{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	}
}

// answerEngine is an engine that keeps nothing: fuzzing runs it millions
// of times.
type answerEngine func(q, format string) ([]byte, error)

func (a answerEngine) Query(q []byte, format string) ([]byte, error) { return a(string(q), format) }

// memConn is a connection whose client sent its bytes and closed its side.
// What the server answers goes to out, when set.
type memConn struct {
	r   *bytes.Reader
	out *bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) {
	if c.out != nil {
		c.out.Write(p)
	}
	return len(p), nil
}
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }
