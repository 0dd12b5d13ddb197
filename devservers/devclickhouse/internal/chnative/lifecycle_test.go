// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestTimeouts checks that no client holds a connection's goroutine
// forever: one that never says hello, one that stops inside a packet, one
// idle between queries.
func TestTimeouts(t *testing.T) {
	ts := startServer(t, newFake(), Options{
		HandshakeTimeout: 200 * time.Millisecond, ReceiveTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
	})
	silent := dial(t, ts.addr)
	if exc := silent.closed(); exc == nil || exc.Code != proto.ErrSocketTimeout {
		t.Errorf("no hello: %+v", exc)
	}

	stalled, _ := connect(t, ts.addr, 54460, compress.None)
	stalled.send(&packets{b: proto.Buffer{Buf: []byte{byte(proto.ClientCodeQuery), 5, 'a'}}})
	if exc := stalled.closed(); exc == nil || exc.Code != proto.ErrSocketTimeout {
		t.Errorf("stalled query: %+v", exc)
	}

	idle, _ := connect(t, ts.addr, 54460, compress.None)
	start := time.Now()
	if exc := idle.closed(); exc != nil || time.Since(start) < 250*time.Millisecond {
		t.Errorf("idle: closed after %v with %+v, want a quiet close after the idle timeout", time.Since(start), exc)
	}
}

// TestShutdown checks that Shutdown ends idle connections at once and lets
// a query in flight finish.
func TestShutdown(t *testing.T) {
	eng := newFake()
	ts := startServer(t, eng, Options{})
	idle, _ := connect(t, ts.addr, 54460, compress.None)
	silent := dial(t, ts.addr) // connected, said nothing

	busy, _ := connect(t, ts.addr, 54460, compress.None)
	release, started := make(chan struct{}), make(chan struct{})
	eng.SetAnswer(func(q, format string) ([]byte, error) {
		if q == "SELECT rows" {
			close(started)
			<-release
		}
		return fakeAnswers(q, format)
	})
	busy.send(busy.packets().query("SELECT rows"))
	<-started

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	for i, c := range []*client{idle, silent} {
		if exc := c.closed(); exc != nil {
			t.Errorf("idle connection %d: %+v", i, exc)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a query in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if res := busy.answer(false); res.exc != nil || rowsOf(t, res) != "1/a 2/b 3/c" {
		t.Errorf("query in flight: %+v", res)
	}
	busy.closed()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// TestClickHouseGo drives the server with clickhouse-go's native transport:
// ping, a query, a batch insert, an exception.
func TestClickHouseGo(t *testing.T) {
	eng := newFake()
	ts := startServer(t, eng, Options{})
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{ts.addr}, Protocol: clickhouse.Native, DialTimeout: 5 * time.Second,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	rows, err := conn.Query(ctx, "SELECT rows")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			n uint64
			s string
		)
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil || len(got) != 3 {
		t.Errorf("rows %q, %v", got, err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO t (a, s)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := batch.Append(uint32(i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}
	var exc *clickhouse.Exception
	if err := conn.Exec(ctx, "SELECT * FROM nope"); !errors.As(err, &exc) || exc.Code != 60 {
		t.Errorf("exception: %v", err)
	}
}
