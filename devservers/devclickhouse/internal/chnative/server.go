// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package chnative serves ClickHouse's native TCP protocol in front of the
// embedded engine, enough of it for clickhouse-go's native transport (and so
// the collector's clickhouse exporter over tcp://): handshake, ping,
// queries with their settings, results as Data blocks, inserts whose data
// comes in Data blocks, exceptions with ClickHouse's codes, lz4 and zstd
// compression. Packets are encoded and decoded with ch-go's proto package;
// statements run on the session shared with the HTTP interface.
package chnative

import (
	"context"
	"errors"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// Revisions of the native protocol. The server announces the highest
// revision whose every packet change it implements (that of clickhouse-go
// v2.46 and ch-go v0.71); the connection then speaks the lower of the
// client's and the server's. Below minRevision, settings travel in a
// binary form that devclickhouse does not read.
const (
	serverRevision = int(proto.FeatureServerQueryTimeInProgress) // 54460
	minRevision    = int(proto.FeatureSettingsSerializedAsStrings)
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// HTTPAddr is the address of devclickhouse's HTTP interface, named in
	// the answer to an HTTP request sent to the native port.
	HTTPAddr string
	// HandshakeTimeout bounds the wait for a new connection's Hello
	// (ClickHouse's handshake_timeout_ms: 10 s).
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing between queries
	// for that long (ClickHouse's idle_connection_timeout: 3600 s): long
	// enough for a client's pool of idle connections, short of forever.
	IdleTimeout time.Duration
	// ReceiveTimeout bounds the wait for the rest of a packet or for the
	// next block of an insert (ClickHouse's receive_timeout: 300 s).
	ReceiveTimeout time.Duration
	// SendTimeout bounds the writing of an answer (send_timeout: 300 s).
	SendTimeout time.Duration
	// MaxQueryBytes bounds a query's text (default 1 GiB, ClickHouse's
	// largest string).
	MaxQueryBytes int
}

func (o *Options) setDefaults() {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.ReceiveTimeout <= 0 {
		o.ReceiveTimeout = 300 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 300 * time.Second
	}
	if o.MaxQueryBytes <= 0 {
		o.MaxQueryBytes = 1 << 30
	}
}

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = errors.New("chnative: server closed")

// Server serves the native protocol on the listeners given to Serve.
type Server struct {
	sess *chsession.Session
	opts Options
	log  *log.Logger

	closing atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // connections being served

	// panics counts the panics recovered while serving connections (the
	// fuzz test requires none).
	panics atomic.Int64
}

// New returns a Server running its statements on sess.
func New(sess *chsession.Session, opts Options) *Server {
	opts.setDefaults()
	return &Server{
		sess:      sess,
		opts:      opts,
		log:       sess.Logger(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Serve accepts connections on ln until Shutdown, serving each in its own
// goroutine. It returns ErrServerClosed after Shutdown, or the error that
// stopped accepting.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors or the like: wait, as net/http does,
				// instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Printf("native: accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.serveConn(nc)
	}
}

// serveConn starts serving one connection, unless the server is closing.
func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
		c.serve()
	}()
}

// Shutdown stops accepting, closes idle connections and waits for the
// connections running a query to finish it (they close after their
// answer), until ctx ends; then it closes them all and returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.interruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// A connection inside a statement stays until the engine returns: a
	// statement cannot be interrupted.
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}
