// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command devclickhouse is a local ClickHouse for development and tests: the
// ClickHouse engine of chDB (libchdb.so) behind the ClickHouse HTTP
// interface and, with --native-listen, its native TCP protocol, enough of
// them for clickhouse-go (and so the collector's clickhouse exporter) and
// for curl.
//
//	devclickhouse --listen 127.0.0.1:8123 --native-listen 127.0.0.1:9000 --data ./chdata
//
// It prints one line when it accepts connections,
// "devclickhouse ready on http://ADDR data=DIR", followed by
// " native=tcp://ADDR" when it serves the native protocol, and exits 0 on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chdb"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chhttp"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chnative"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

func main() {
	os.Exit(run())
}

func run() int {
	listen := flag.String("listen", "127.0.0.1:8123", "address to serve the ClickHouse HTTP interface on (port 0 picks a free port)")
	nativeListen := flag.String("native-listen", "", "address to serve ClickHouse's native TCP protocol on, e.g. 127.0.0.1:9000 (port 0 picks a free port; empty: not served)")
	dataDir := flag.String("data", "devclickhouse-data", "directory holding the databases; kept across restarts")
	verbose := flag.Bool("verbose", false, "log every statement to stderr")
	flag.Parse()
	logger := log.New(os.Stderr, "devclickhouse: ", log.LstdFlags)

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		logger.Print(err)
		return 1
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logger.Print(err)
		return 1
	}
	// Bodies of INSERT ... FORMAT requests wait here while the engine reads
	// them: inside the data directory, emptied at start, so a killed process
	// leaves nothing behind elsewhere.
	tmpDir := filepath.Join(dir, "devclickhouse_inserts")
	if err := os.RemoveAll(tmpDir); err != nil {
		logger.Print(err)
		return 1
	}
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		logger.Print(err)
		return 1
	}
	defer os.RemoveAll(tmpDir)

	// Listen first: a busy port fails fast, before the engine starts.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Print(err)
		return 1
	}
	var nativeLn net.Listener
	if *nativeListen != "" {
		if nativeLn, err = net.Listen("tcp", *nativeListen); err != nil {
			logger.Print(err)
			ln.Close()
			return 1
		}
	}
	closeListeners := func() {
		ln.Close()
		if nativeLn != nil {
			nativeLn.Close()
		}
	}

	// Signals are caught before the engine starts, and the engine is told to
	// leave the process's signal handlers alone.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	conn, err := chdb.Open(dir)
	if err != nil {
		logger.Print(err)
		closeListeners()
		return 1
	}
	// One engine session for both front ends: their statements queue on it.
	sess, err := chsession.New(conn, chsession.Options{TempDir: tmpDir, Logger: logger, Verbose: *verbose})
	if err != nil {
		logger.Print(err)
		conn.Close()
		closeListeners()
		return 1
	}

	httpSrv := &http.Server{
		Handler:           chhttp.New(sess, chhttp.Options{}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logger,
	}
	served := make(chan error, 2)
	go func() { served <- httpSrv.Serve(ln) }()
	ready := fmt.Sprintf("devclickhouse ready on http://%s data=%s", ln.Addr(), dir)
	var nativeSrv *chnative.Server
	if nativeLn != nil {
		nativeSrv = chnative.New(sess, chnative.Options{HTTPAddr: ln.Addr().String()})
		go func() { served <- nativeSrv.Serve(nativeLn) }()
		// Appended, so that the line still starts as it always did.
		ready += fmt.Sprintf(" native=tcp://%s", nativeLn.Addr())
	}
	fmt.Println(ready)

	code := 0
	select {
	case sig := <-sigs:
		logger.Printf("%v: shutting down", sig)
	case err := <-served:
		logger.Printf("server stopped: %v", err)
		code = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Both front ends at once: each lets its requests in flight finish.
	var stopped sync.WaitGroup
	stopped.Go(func() {
		if err := httpSrv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("shutdown: %v", err)
		}
	})
	if nativeSrv != nil {
		stopped.Go(func() {
			if err := nativeSrv.Shutdown(ctx); err != nil {
				logger.Printf("native shutdown: %v", err)
			}
		})
	}
	stopped.Wait()
	conn.Close()
	if n := conn.SignalRepairs(); n > 0 && *verbose {
		logger.Printf("restored signal handlers after %d engine calls", n)
	}
	return code
}
