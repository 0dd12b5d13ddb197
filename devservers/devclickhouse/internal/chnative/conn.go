// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// conn is one client connection: a session of the native protocol. Its
// database (Hello, USE) and its SET settings last as long as it does.
type conn struct {
	srv  *Server
	sess *chsession.Session
	nc   net.Conn
	r    *proto.Reader
	pr   packetReader
	w    *bufio.Writer
	out  proto.Buffer

	rev      int    // negotiated revision
	client   string // for the log
	db       string
	settings []chsession.Setting // set by the client's SET statements

	// Per query: whether Data blocks are compressed, and with what the
	// server compresses its own.
	compress bool
	method   compress.Method
	writers  map[compress.Method]*compress.Writer

	mu   sync.Mutex
	idle bool // waiting for the next packet: Shutdown may end it
}

func newConn(s *Server, nc net.Conn) *conn {
	r := proto.NewReader(nc)
	return &conn{
		srv:  s,
		sess: s.sess,
		nc:   nc,
		r:    r,
		pr:   packetReader{r: r, maxQuery: s.opts.MaxQueryBytes},
		w:    bufio.NewWriterSize(nc, 64<<10),
		db:   "default",
	}
}

// errQuiet ends a connection with nothing more to say.
var errQuiet = errors.New("connection closed")

// serve runs the connection: the handshake, then one packet after the
// other until the client leaves, breaks the protocol or times out, or the
// server shuts down.
func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		if v := recover(); v != nil {
			c.srv.panics.Add(1)
			c.srv.log.Printf("native: panic serving %s: %v\n%s", c.nc.RemoteAddr(), v, debug.Stack())
			c.end(&protocolError{exc: exception(proto.ErrStdException, "devclickhouse: internal error: %v", v)})
		}
	}()
	if err := c.handshake(); err != nil {
		c.end(err)
		return
	}
	for {
		if !c.enterIdle(c.srv.opts.IdleTimeout) {
			return
		}
		code, err := c.pr.code()
		c.leaveIdle()
		if err != nil {
			// The client left, or stayed silent past the idle timeout: no
			// one to tell.
			c.logEnd(err)
			return
		}
		now := time.Now()
		_ = c.nc.SetReadDeadline(now.Add(c.srv.opts.ReceiveTimeout))
		_ = c.nc.SetWriteDeadline(now.Add(c.srv.opts.SendTimeout))
		if err := c.handle(code); err != nil {
			c.end(err)
			return
		}
	}
}

// handle answers one packet. An error ends the connection.
func (c *conn) handle(code proto.ClientCode) error {
	switch code {
	case proto.ClientCodePing:
		c.writePong()
		return c.flush()
	case proto.ClientCodeQuery:
		return c.query()
	case proto.ClientCodeCancel:
		// Nothing runs between queries: a late cancel.
		return nil
	case proto.ClientCodeHello, proto.ClientCodeData:
		return newProtocolError(proto.ErrUnexpectedPacketFromClient,
			"Unexpected packet %s received from client between queries", code)
	case proto.ClientTablesStatusRequest, proto.ClientCodeSSHChallengeRequest, proto.ClientCodeSSHChallengeResponse:
		return newProtocolError(proto.ErrNotImplemented, "devclickhouse does not serve packet %s", code)
	}
	return newProtocolError(proto.ErrUnknownPacketFromClient, "Unknown packet %d from client", byte(code))
}

// handshake reads the client's Hello, answers with the server's, and reads
// the addendum that recent revisions send after it.
func (c *conn) handshake() error {
	// Waiting for the Hello counts as idle: Shutdown does not wait for a
	// client that connected and said nothing.
	if !c.enterIdle(c.srv.opts.HandshakeTimeout) {
		return errQuiet
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))
	code, err := c.pr.code()
	if err != nil {
		c.leaveIdle()
		return err
	}
	if looksLikeHTTP(byte(code)) {
		c.leaveIdle()
		c.answerHTTP()
		return errQuiet
	}
	if code != proto.ClientCodeHello {
		c.leaveIdle()
		return newProtocolError(proto.ErrUnexpectedPacketFromClient,
			"Unexpected packet from client (expected Hello, got packet %d)", byte(code))
	}
	hello, err := c.pr.hello()
	c.leaveIdle()
	if err != nil {
		return err
	}
	c.client = fmt.Sprintf("%q %d.%d revision %d", hello.Name, hello.Major, hello.Minor, hello.ProtocolVersion)
	if hello.ProtocolVersion < minRevision {
		return newProtocolError(proto.ErrProtocolVersionMismatch,
			"Client %s speaks native protocol revision %d; devclickhouse serves revisions %d to %d",
			chsession.Truncate(hello.Name, 100), hello.ProtocolVersion, minRevision, serverRevision)
	}
	c.rev = min(hello.ProtocolVersion, serverRevision)
	if hello.Database != "" {
		c.db = hello.Database
	}
	if exc := c.checkDatabase(); exc != nil {
		return &protocolError{exc: exc}
	}
	c.writeHello()
	if err := c.flush(); err != nil {
		return err
	}
	if proto.FeatureAddendum.In(c.rev) {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))
		if err := c.pr.skipStr("quota key"); err != nil {
			return err
		}
	}
	if c.sess.Verbose() {
		c.srv.log.Printf("native: %s: %s connected to database %s (revision %d)", c.nc.RemoteAddr(), c.client, c.db, c.rev)
	}
	return nil
}

// checkDatabase refuses a Hello naming a database that does not exist, as
// ClickHouse does.
func (c *conn) checkDatabase() *chsession.Exception {
	if c.db == "default" {
		return nil
	}
	out, exc := c.sess.Run("default", []byte("EXISTS DATABASE "+chsession.QuoteIdent(c.db)), "TabSeparated", nil)
	if exc != nil {
		return exc
	}
	if len(out) > 0 && out[0] == '1' {
		return nil
	}
	return exception(proto.ErrUnknownDatabase, "Database %s does not exist", chsession.QuoteIdent(c.db))
}

// looksLikeHTTP reports whether the first byte of a connection starts an
// HTTP request (GET, POST, PUT, HEAD) rather than a Hello packet.
func looksLikeHTTP(b byte) bool { return b == 'G' || b == 'P' || b == 'H' }

// answerHTTP tells an HTTP client that it reached the native port, as
// ClickHouse does.
func (c *conn) answerHTTP() {
	port := "the HTTP port"
	if c.srv.opts.HTTPAddr != "" {
		if _, p, err := net.SplitHostPort(c.srv.opts.HTTPAddr); err == nil {
			port = "port " + p
		}
	}
	var here string
	if _, p, err := net.SplitHostPort(c.nc.LocalAddr().String()); err == nil {
		here = " " + p
	}
	body := fmt.Sprintf("Port%s is for clickhouse-client program\r\nYou must use %s for HTTP.\r\n", here, port)
	_, _ = c.w.WriteString("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
	_ = c.flush()
}

// enterIdle marks the connection as waiting for the client to start a
// packet, for at most timeout; false when the server is shutting down.
func (c *conn) enterIdle(timeout time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv.closing.Load() {
		return false
	}
	c.idle = true
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	return true
}

func (c *conn) leaveIdle() {
	c.mu.Lock()
	c.idle = false
	c.mu.Unlock()
}

// interruptIfIdle ends the wait of an idle connection (Shutdown).
func (c *conn) interruptIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// end tells the client why its connection ends, when there is something
// to tell and a way to: a protocol error's exception, a timeout.
func (c *conn) end(err error) {
	var pe *protocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		c.writeException(pe.exc)
		_ = c.flush()
	case errors.As(err, &ne) && ne.Timeout() && !c.srv.closing.Load():
		c.writeException(exception(proto.ErrSocketTimeout, "Timeout exceeded while reading from socket (%s)", c.nc.RemoteAddr()))
		_ = c.flush()
	}
	c.logEnd(err)
}

func (c *conn) logEnd(err error) {
	if !c.sess.Verbose() {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, errQuiet) {
		c.srv.log.Printf("native: %s: disconnected", c.nc.RemoteAddr())
		return
	}
	c.srv.log.Printf("native: %s: connection closed: %v", c.nc.RemoteAddr(), err)
}
