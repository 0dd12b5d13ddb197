// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession/sessiontest"
)

// The tests speak the protocol with ch-go's encoders and decoders, which
// the server shares only for single packets: how packets follow each other,
// and what goes compressed, is written here from the protocol.

// packets builds what a client sends.
type packets struct {
	b   proto.Buffer
	rev int
	// compress is the method of the client's compressed Data blocks; None
	// sends them uncompressed and says so in the Query.
	method compress.Method
}

func (p *packets) hello(rev int, db string) *packets {
	proto.ClientHello{Name: "chnative-test", Major: 1, Minor: 2, ProtocolVersion: rev, Database: db, User: "default"}.Encode(&p.b)
	return p
}

func (p *packets) addendum() *packets {
	if proto.FeatureAddendum.In(p.rev) {
		p.b.PutString("") // quota key
	}
	return p
}

// query sends a Query without external tables.
func (p *packets) query(body string, settings ...proto.Setting) *packets {
	return p.queryOnly(body, settings...).data(nil)
}

// queryOnly sends a Query, to be followed by its external tables and an
// empty block.
func (p *packets) queryOnly(body string, settings ...proto.Setting) *packets {
	compression := proto.CompressionDisabled
	if p.method != compress.None {
		compression = proto.CompressionEnabled
	}
	q := proto.Query{
		ID: "q1", Body: body, Stage: proto.StageComplete, Compression: compression, Settings: settings,
		Info: proto.ClientInfo{
			ProtocolVersion: p.rev, Major: 1, Minor: 2, Interface: proto.InterfaceTCP, Query: proto.ClientQueryInitial,
			ClientName: "chnative-test",
		},
	}
	q.EncodeAware(&p.b, p.rev)
	return p
}

// data sends one block (nil: the empty block that ends a stream).
func (p *packets) data(cols []proto.InputColumn) *packets {
	proto.ClientCodeData.Encode(&p.b)
	p.b.PutString("")
	var blk proto.Buffer
	b := proto.Block{Info: proto.BlockInfo{BucketNum: -1}, Columns: len(cols)}
	if len(cols) > 0 {
		b.Rows = cols[0].Data.Rows()
	}
	if err := b.EncodeBlock(&blk, p.rev, cols); err != nil {
		panic(err)
	}
	if p.method == compress.None {
		p.b.PutRaw(blk.Buf)
		return p
	}
	w := compress.NewWriter(compress.LevelZero, p.method)
	if err := w.Compress(blk.Buf); err != nil {
		panic(err)
	}
	p.b.PutRaw(w.Data)
	return p
}

func (p *packets) ping() *packets {
	proto.ClientCodePing.Encode(&p.b)
	return p
}

func newPackets(rev int, method compress.Method) *packets {
	return &packets{rev: rev, method: method}
}

// testServer is a Server on a loopback port over a fake engine.
type testServer struct {
	srv  *Server
	addr string
	eng  *sessiontest.Engine
}

func startServer(t *testing.T, eng *sessiontest.Engine, opts Options) *testServer {
	t.Helper()
	sess, err := sessiontest.NewSession(eng, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(sess, opts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		if n := srv.panics.Load(); n != 0 {
			t.Errorf("%d panics while serving", n)
		}
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), eng: eng}
}

// client is one raw connection to a server.
type client struct {
	t      *testing.T
	nc     net.Conn
	r      *proto.Reader
	rev    int
	method compress.Method
}

// dial connects with a deadline for the whole test conversation.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: proto.NewReader(nc)}
}

// connect dials and shakes hands at rev.
func connect(t *testing.T, addr string, rev int, method compress.Method) (*client, proto.ServerHello) {
	t.Helper()
	c := dial(t, addr)
	c.rev, c.method = rev, method
	c.send(newPackets(rev, method).hello(rev, ""))
	code := c.code()
	if code != proto.ServerCodeHello {
		t.Fatalf("handshake: packet %s, want Hello (%v)", code, c.exceptionIf(code))
	}
	var h proto.ServerHello
	if err := h.DecodeAware(c.r, min(rev, serverRevision)); err != nil {
		t.Fatalf("server hello: %v", err)
	}
	c.rev = min(rev, h.Revision)
	c.send(newPackets(c.rev, method).addendum())
	return c, h
}

func (c *client) packets() *packets { return newPackets(c.rev, c.method) }

func (c *client) send(p *packets) {
	c.t.Helper()
	if _, err := c.nc.Write(p.b.Buf); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) code() proto.ServerCode {
	c.t.Helper()
	b, err := c.r.ReadByte()
	if err != nil {
		c.t.Fatalf("read packet code: %v", err)
	}
	return proto.ServerCode(b)
}

func (c *client) exceptionIf(code proto.ServerCode) *proto.Exception {
	if code != proto.ServerCodeException {
		return nil
	}
	return c.exception()
}

func (c *client) exception() *proto.Exception {
	c.t.Helper()
	var e proto.Exception
	if err := e.DecodeAware(c.r, c.rev); err != nil {
		c.t.Fatalf("exception: %v", err)
	}
	return &e
}

// result is what the server answered to a query.
type result struct {
	blocks   []proto.Results // data blocks, the header included
	exc      *proto.Exception
	progress []proto.Progress
	profile  bool
}

// answer reads packets up to the end of the answer: EndOfStream or an
// exception; it stops after the first Data block when header is set (an
// INSERT's header).
func (c *client) answer(header bool) result {
	c.t.Helper()
	var res result
	for {
		switch code := c.code(); code {
		case proto.ServerCodeData:
			if _, err := c.r.Str(); err != nil {
				c.t.Fatalf("data name: %v", err)
			}
			if c.method != compress.None {
				c.r.EnableCompression()
			}
			var (
				b       proto.Block
				results proto.Results
			)
			err := b.DecodeBlock(c.r, c.rev, results.Auto())
			c.r.DisableCompression()
			if err != nil {
				c.t.Fatalf("data block: %v", err)
			}
			res.blocks = append(res.blocks, results)
			if header {
				return res
			}
		case proto.ServerCodeException:
			res.exc = c.exception()
			return res
		case proto.ServerCodeProgress:
			var p proto.Progress
			if err := p.DecodeAware(c.r, c.rev); err != nil {
				c.t.Fatalf("progress: %v", err)
			}
			res.progress = append(res.progress, p)
		case proto.ServerCodeProfile:
			var p proto.Profile
			if err := p.DecodeAware(c.r, c.rev); err != nil {
				c.t.Fatalf("profile: %v", err)
			}
			res.profile = true
		case proto.ServerCodeEndOfStream:
			return res
		default:
			c.t.Fatalf("unexpected packet %s", code)
		}
	}
}

// closed requires the server to close the connection (after at most one
// exception), returning that exception.
func (c *client) closed() *proto.Exception {
	c.t.Helper()
	var exc *proto.Exception
	for {
		b, err := c.r.ReadByte()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return exc
		}
		if err != nil {
			c.t.Fatalf("waiting for the server to close: %v", err)
		}
		if proto.ServerCode(b) != proto.ServerCodeException || exc != nil {
			c.t.Fatalf("packet %d before the close", b)
		}
		exc = c.exception()
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}
