// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command devclickhouse is a local ClickHouse for development and tests: the
// ClickHouse engine of chDB (libchdb.so) behind the ClickHouse HTTP
// interface, enough of it for clickhouse-go (and so the collector's
// clickhouse exporter) and for curl.
//
//	devclickhouse --listen 127.0.0.1:8123 --data ./chdata
//
// It prints one line, "devclickhouse ready on http://ADDR data=DIR", when it
// accepts connections, and exits 0 on SIGTERM or SIGINT.
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
	"syscall"
	"time"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chdb"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chhttp"
)

func main() {
	os.Exit(run())
}

func run() int {
	listen := flag.String("listen", "127.0.0.1:8123", "address to serve the ClickHouse HTTP interface on (port 0 picks a free port)")
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

	// Signals are caught before the engine starts, and the engine is told to
	// leave the process's signal handlers alone.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	conn, err := chdb.Open(dir)
	if err != nil {
		logger.Print(err)
		ln.Close()
		return 1
	}
	srv, err := chhttp.New(conn, chhttp.Options{TempDir: tmpDir, Logger: logger, Verbose: *verbose})
	if err != nil {
		logger.Print(err)
		conn.Close()
		ln.Close()
		return 1
	}

	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          logger,
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	fmt.Printf("devclickhouse ready on http://%s data=%s\n", ln.Addr(), dir)

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
	if err := httpSrv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Printf("shutdown: %v", err)
	}
	conn.Close()
	if n := conn.SignalRepairs(); n > 0 && *verbose {
		logger.Printf("restored signal handlers after %d engine calls", n)
	}
	return code
}
