package testservers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/internal/stack"
)

// ClickHouseReadyTimeout bounds how long StartClickHouse and Start wait for
// the server's ready line (chDB opens in about 0.1 s; the race detector and
// a busy machine make it slower).
const ClickHouseReadyTimeout = 60 * time.Second

// ClickHouse is bin/devclickhouse for a Go test: the ClickHouse HTTP
// interface served by an embedded chDB engine on 127.0.0.1. It is the
// process of internal/stack (the one the end-to-end tests and the demo run)
// with a fresh data directory; errors fail the test.
type ClickHouse struct {
	tb  testing.TB
	srv *stack.ClickHouse
}

// DevClickHouseBinary is the path of bin/devclickhouse in the repository.
func DevClickHouseBinary() (string, error) {
	root, err := stack.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "devclickhouse"), nil
}

// devClickHouseBinary is replaced in this package's tests.
var devClickHouseBinary = DevClickHouseBinary

// StartClickHouse runs bin/devclickhouse with a fresh data directory on a
// free port of 127.0.0.1 and waits until it serves. It fails the test (it
// does not skip it) when the binary has not been built. The server is
// stopped when the test ends; its log is printed if the test failed.
func StartClickHouse(tb testing.TB) *ClickHouse {
	tb.Helper()
	bin, err := devClickHouseBinary()
	if err != nil {
		tb.Fatalf("testservers: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("bin/devclickhouse not found: run `make devservers` (looked for %s: %v)", bin, err)
	}
	srv, err := stack.NewClickHouse(filepath.Dir(filepath.Dir(bin)), tb.TempDir())
	if err != nil {
		tb.Fatalf("testservers: %v", err)
	}
	ch := &ClickHouse{tb: tb, srv: srv}
	tb.Cleanup(func() {
		if err := srv.Stop(10 * time.Second); err != nil {
			tb.Errorf("testservers: stop devclickhouse: %v", err)
		}
		if tb.Failed() {
			tb.Logf("devclickhouse log (%s):\n%s", srv.LogPath, ch.Log())
		}
	})
	if _, err := srv.Start(ClickHouseReadyTimeout); err != nil {
		tb.Fatalf("testservers: start devclickhouse: %v\nserver log:\n%s", err, ch.Log())
	}
	return ch
}

// Addr is the server's host:port, the same across Stop and Start.
func (ch *ClickHouse) Addr() string { return ch.srv.Addr }

// Endpoint is the server's URL, http://host:port, for the clickhouse
// exporter's `endpoint`.
func (ch *ClickHouse) Endpoint() string { return ch.srv.Endpoint() }

// Log returns what the server printed so far (all runs).
func (ch *ClickHouse) Log() string {
	b, err := os.ReadFile(ch.srv.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// QueryE runs sql over the HTTP interface and returns the result
// (TabSeparated, the interface's default format) with surrounding
// whitespace trimmed; a ClickHouse error names its exception code.
func (ch *ClickHouse) QueryE(ctx context.Context, sql string) (string, error) {
	return ch.srv.Query(ctx, sql)
}

// Query is QueryE failing the test on error, with a 30 s deadline.
func (ch *ClickHouse) Query(tb testing.TB, sql string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ch.QueryE(ctx, sql)
	if err != nil {
		tb.Fatalf("testservers: %v", err)
	}
	return out
}

// QueryInt runs a query returning one number (e.g. SELECT count() ...).
func (ch *ClickHouse) QueryInt(tb testing.TB, sql string) int64 {
	tb.Helper()
	out := ch.Query(tb, sql)
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		tb.Fatalf("testservers: clickhouse: %q returned %q, not a number", sql, out)
	}
	return n
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s) and waits
// for it to exit. Clients then see connection refused. The data directory
// is kept for Start.
func (ch *ClickHouse) Stop() {
	ch.tb.Helper()
	if err := ch.srv.Stop(10 * time.Second); err != nil {
		ch.tb.Fatalf("testservers: %v", err)
	}
}

// Start restarts a stopped server on the same address with the same data
// directory, and waits until it serves.
func (ch *ClickHouse) Start() {
	ch.tb.Helper()
	if ch.srv.Running() {
		ch.tb.Fatalf("testservers: devclickhouse on %s is already running", ch.Addr())
	}
	// The port was free while the server was down, so another program (a
	// client's ephemeral port) may hold it for a moment: retry a while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ch.srv.Start(ClickHouseReadyTimeout)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			ch.tb.Fatalf("testservers: restart devclickhouse on %s: %v\nserver log:\n%s", ch.Addr(), err, ch.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but never answered, the "hung server" outage. It returns once the
// process is stopped.
func (ch *ClickHouse) Pause() {
	ch.tb.Helper()
	if err := ch.srv.Pause(); err != nil {
		ch.tb.Fatalf("testservers: pause devclickhouse: %v", err)
	}
}

// Resume unfreezes a paused server (SIGCONT).
func (ch *ClickHouse) Resume() {
	ch.tb.Helper()
	if err := ch.srv.Resume(); err != nil {
		ch.tb.Fatalf("testservers: resume devclickhouse: %v", err)
	}
}
