package testservers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/internal/stack"
)

func TestBinaryPathIsUnderTheRepoRoot(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(binaryPath(t), "/bin/devclickhouse") || !strings.HasPrefix(binaryPath(t), root) {
		t.Fatalf("binary path %q is not under %s/bin", binaryPath(t), root)
	}
}

func binaryPath(t *testing.T) string {
	p, err := DevClickHouseBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClickHouseQueryStopStartPauseResume(t *testing.T) {
	ch := StartClickHouse(t)
	if !strings.HasPrefix(ch.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint() = %q", ch.Endpoint())
	}
	ch.Query(t, "CREATE DATABASE IF NOT EXISTS tsdb")
	ch.Query(t, "CREATE TABLE tsdb.t (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
	ch.Query(t, "INSERT INTO tsdb.t VALUES (1, 'a'), (2, 'b')")
	if got := ch.Query(t, "SELECT n, s FROM tsdb.t ORDER BY n"); got != "1\ta\n2\tb" {
		t.Fatalf("TabSeparated result = %q", got)
	}
	if got := ch.QueryInt(t, "SELECT count() FROM tsdb.t"); got != 2 {
		t.Fatalf("count = %d", got)
	}
	_, err := ch.QueryE(context.Background(), "SELECT * FROM tsdb.missing")
	if err == nil || !strings.Contains(err.Error(), "exception code 60") {
		t.Fatalf("query of a missing table: want exception code 60 (UNKNOWN_TABLE), got %v", err)
	}

	// Outage: connection refused, then back on the same address with the data.
	addr := ch.Addr()
	ch.Stop()
	_, err = ch.QueryE(context.Background(), "SELECT 1")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("query while stopped: want connection refused, got %v", err)
	}
	ch.Start()
	if ch.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", ch.Addr(), addr)
	}
	if got := ch.QueryInt(t, "SELECT count() FROM tsdb.t"); got != 2 {
		t.Fatalf("after restart count = %d, want 2 (data dir kept)", got)
	}

	// Hung server: accepts, never answers, until resumed.
	ch.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = ch.QueryE(ctx, "SELECT 1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query while paused: want a deadline error, got %v", err)
	}
	ch.Resume()
	if got := ch.Query(t, "SELECT 1"); got != "1" {
		t.Fatalf("after resume SELECT 1 = %q", got)
	}
	resp, err := http.Get(ch.Endpoint() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(ch.Log(), "devclickhouse ready on http://"+addr) {
		t.Fatalf("server log lacks the ready line:\n%s", ch.Log())
	}
}

func TestClickHouseStopWhilePaused(t *testing.T) {
	ch := StartClickHouse(t)
	ch.Pause()
	done := make(chan struct{})
	go func() {
		ch.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop of a paused server did not return")
	}
}

// fatalTB records the first Fatalf and stops the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFailsTheTestWithAHint(t *testing.T) {
	orig := devClickHouseBinary
	t.Cleanup(func() { devClickHouseBinary = orig })
	devClickHouseBinary = func() (string, error) { return filepath.Join(t.TempDir(), "bin", "devclickhouse"), nil }

	ftb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartClickHouse(ftb)
	}()
	<-done
	if !strings.Contains(ftb.msg, "bin/devclickhouse not found: run `make devservers`") {
		t.Fatalf("Fatalf message = %q", ftb.msg)
	}
}
