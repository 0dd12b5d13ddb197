package testservers

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/internal/stack"
)

// ModulePath is the root module of this repository; RepoRoot looks for its
// go.mod.
const ModulePath = "github.com/otelfailover/otelcol-failover"

// ClickHouseReadyTimeout bounds how long StartClickHouse and Start wait for
// the server to answer GET /ping (chDB opens in about 0.1 s; the race
// detector and a busy machine make it slower).
const ClickHouseReadyTimeout = 60 * time.Second

// ClickHouse is a bin/devclickhouse subprocess: the ClickHouse HTTP
// interface served by an embedded chDB engine, on 127.0.0.1.
type ClickHouse struct {
	tb      testing.TB
	bin     string
	dataDir string
	log     *syncBuffer

	mu     sync.Mutex
	addr   string // host:port, fixed after the first start
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	paused bool
}

// RepoRoot walks up from the working directory to the directory whose
// go.mod declares ModulePath (nested modules such as devservers/... and
// tools are skipped).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, ModulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

// declaresModule reports whether go.mod content declares module path.
func declaresModule(gomod []byte, path string) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == path
		}
	}
	return false
}

// DevClickHouseBinary is the path of bin/devclickhouse in the repository.
func DevClickHouseBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "devclickhouse"), nil
}

// devClickHouseBinary is replaced in this package's tests.
var devClickHouseBinary = DevClickHouseBinary

// StartClickHouse runs bin/devclickhouse with a fresh data directory on a
// free port of 127.0.0.1 and waits until it answers GET /ping. It fails the
// test (it does not skip it) when the binary has not been built. The server
// is stopped when the test ends; its log is printed if the test failed.
func StartClickHouse(tb testing.TB) *ClickHouse {
	tb.Helper()
	bin, err := devClickHouseBinary()
	if err != nil {
		tb.Fatalf("testservers: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("bin/devclickhouse not found: run `make devservers` (looked for %s: %v)", bin, err)
	}
	ch := &ClickHouse{
		tb:      tb,
		bin:     bin,
		dataDir: tb.TempDir(),
		log:     &syncBuffer{},
	}
	tb.Cleanup(func() {
		ch.stop()
		if tb.Failed() {
			tb.Logf("devclickhouse log (%s, data %s):\n%s", ch.addrOrUnknown(), ch.dataDir, ch.log.String())
		}
	})
	if err := ch.start("127.0.0.1:0"); err != nil {
		tb.Fatalf("testservers: start devclickhouse: %v\nserver log:\n%s", err, ch.log.String())
	}
	return ch
}

// readyAddr finds the address in devclickhouse's ready line,
// "devclickhouse ready on http://ADDR data=DIR".
var readyAddr = regexp.MustCompile(`ready on http://(\S+:(\d+))`)

func (ch *ClickHouse) start(listen string) error {
	cmd := exec.Command(ch.bin, "--listen", listen, "--data", ch.dataDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	// If the test binary dies without running its cleanups (a panic, a
	// -timeout), take the server (about 250 MB of chDB) down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", ch.bin, err)
	}
	fmt.Fprintf(ch.log, "--- started pid %d: %s\n", cmd.Process.Pid, strings.Join(cmd.Args, " "))

	addrCh := make(chan string, 2)
	var pipes sync.WaitGroup
	scan := func(r io.Reader) {
		defer pipes.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(ch.log, line)
			if m := readyAddr.FindStringSubmatch(line); m != nil && m[2] != "0" {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}
	pipes.Add(2)
	go scan(stdout)
	go scan(stderr)

	exited := make(chan struct{})
	var waitErr error
	go func() {
		pipes.Wait() // Wait must not run before the pipes are drained
		waitErr = cmd.Wait()
		fmt.Fprintf(ch.log, "--- pid %d exited: %v\n", cmd.Process.Pid, waitErr)
		close(exited)
	}()

	ch.mu.Lock()
	ch.cmd, ch.exited, ch.paused = cmd, exited, false
	ch.mu.Unlock()

	deadline := time.Now().Add(ClickHouseReadyTimeout)
	addr := ""
	if !strings.HasSuffix(listen, ":0") {
		addr = listen
	} else {
		select {
		case addr = <-addrCh:
		case <-exited:
			return fmt.Errorf("devclickhouse exited before printing its address: %v", waitErr)
		case <-time.After(time.Until(deadline)):
			ch.stop()
			return fmt.Errorf("devclickhouse printed no listen address within %v", ClickHouseReadyTimeout)
		}
	}
	ch.mu.Lock()
	ch.addr = addr
	ch.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("devclickhouse exited before answering /ping: %v", waitErr)
		default:
		}
		lastErr = ping(client, addr)
		if lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	ch.stop()
	return fmt.Errorf("devclickhouse on %s did not answer GET /ping within %v: %v", addr, ClickHouseReadyTimeout, lastErr)
}

func ping(client *http.Client, addr string) error {
	resp, err := client.Get("http://" + addr + "/ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Ok." {
		return fmt.Errorf("GET /ping: %s %q", resp.Status, body)
	}
	return nil
}

func (ch *ClickHouse) addrOrUnknown() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.addr == "" {
		return "address unknown"
	}
	return ch.addr
}

// Addr is the server's host:port.
func (ch *ClickHouse) Addr() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.addr
}

// Endpoint is the server's URL, http://host:port, for the clickhouse
// exporter's `endpoint`.
func (ch *ClickHouse) Endpoint() string { return "http://" + ch.Addr() }

// Log returns what the server printed so far (all runs).
func (ch *ClickHouse) Log() string { return ch.log.String() }

// QueryE runs sql over the HTTP interface and returns the result
// (TabSeparated, the interface's default format) with surrounding
// whitespace trimmed.
func (ch *ClickHouse) QueryE(ctx context.Context, sql string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.Endpoint()+"/", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("query %q: %s (exception code %s): %s", sql, resp.Status,
			resp.Header.Get("X-ClickHouse-Exception-Code"), strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// Query is QueryE failing the test on error, with a 30 s deadline.
func (ch *ClickHouse) Query(tb testing.TB, sql string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ch.QueryE(ctx, sql)
	if err != nil {
		tb.Fatalf("testservers: clickhouse: %v", err)
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
	ch.stop()
}

func (ch *ClickHouse) stop() {
	ch.mu.Lock()
	cmd, exited, paused := ch.cmd, ch.exited, ch.paused
	ch.cmd, ch.paused = nil, false
	ch.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(ch.log, "--- pid %d ignored SIGTERM for 10s: killing\n", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Start restarts a stopped server on the same address with the same data
// directory, and waits until it answers GET /ping.
func (ch *ClickHouse) Start() {
	ch.tb.Helper()
	ch.mu.Lock()
	running, addr := ch.cmd != nil, ch.addr
	ch.mu.Unlock()
	if running {
		ch.tb.Fatalf("testservers: devclickhouse on %s is already running", addr)
	}
	// The port was free while the server was down, so another program (a
	// client's ephemeral port) may hold it for a moment: retry a while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ch.start(addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			ch.tb.Fatalf("testservers: restart devclickhouse on %s: %v\nserver log:\n%s", addr, err, ch.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but never answered, the "hung server" outage. It returns once the
// process is stopped (the signal is delivered asynchronously).
func (ch *ClickHouse) Pause() {
	ch.tb.Helper()
	pid := ch.signal(syscall.SIGSTOP, true)
	if err := stack.WaitStopped(pid, 10*time.Second); err != nil {
		ch.tb.Fatalf("testservers: devclickhouse: %v", err)
	}
}

// Resume unfreezes a paused server (SIGCONT).
func (ch *ClickHouse) Resume() {
	ch.tb.Helper()
	ch.signal(syscall.SIGCONT, false)
}

func (ch *ClickHouse) signal(sig syscall.Signal, paused bool) (pid int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.cmd == nil {
		ch.tb.Fatalf("testservers: devclickhouse is not running (signal %v)", sig)
	}
	if err := ch.cmd.Process.Signal(sig); err != nil {
		ch.tb.Fatalf("testservers: signal %v to devclickhouse: %v", sig, err)
	}
	ch.paused = paused
	return ch.cmd.Process.Pid
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
