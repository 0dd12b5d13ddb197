// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const buildHint = "build it with `make devservers` (or `make -C devservers devclickhouse`, which also fetches libchdb.so with its `libchdb` target)"

// binaryPath finds bin/devclickhouse, failing the test (never skipping) when
// it or the engine library is missing.
func binaryPath(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("DEVCLICKHOUSE_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "..", "bin", "devclickhouse")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("devclickhouse binary path %q: %v", bin, err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("devclickhouse binary not found at %s: %v; %s", abs, err, buildHint)
	}
	lib := filepath.Join("..", "..", ".cache", "chdb", "lib", "libchdb.so")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("libchdb.so not found at %s: %v; fetch it with `make -C devservers libchdb` or %s", lib, err, buildHint)
	}
	return abs
}

// readyRe reads the ready line; " native=tcp://ADDR" ends it when the
// native protocol is served.
var readyRe = regexp.MustCompile(`^devclickhouse ready on http://(\S+) data=(.+?)(?: native=tcp://(\S+))?$`)

// server is one devclickhouse subprocess.
type server struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string // HTTP
	native string // native protocol
	dir    string
	stderr *syncBuffer
	lines  chan string // stdout lines after the ready line
	done   chan struct{}
	waitMu sync.Mutex
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer starts devclickhouse on free ports (HTTP and native) with its
// data in dir and waits for its ready line and a successful /ping. It is
// stopped at cleanup.
func startServer(t testing.TB, dir string) *server {
	t.Helper()
	return startServerArgs(t, dir, "--native-listen", "127.0.0.1:0")
}

// startServerArgs starts devclickhouse with more arguments.
func startServerArgs(t testing.TB, dir string, extra ...string) *server {
	t.Helper()
	bin := binaryPath(t)
	args := append([]string{"--listen", "127.0.0.1:0", "--data", dir}, extra...)
	if os.Getenv("DEVCLICKHOUSE_TEST_VERBOSE") != "" {
		args = append(args, "--verbose")
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, dir: dir, stderr: &syncBuffer{}, lines: make(chan string, 16), done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if os.Getenv("DEVCLICKHOUSE_TEST_VERBOSE") != "" {
		cmd.Stderr = io.MultiWriter(s.stderr, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				ready <- sc.Text()
				first = false
				continue
			}
			s.lines <- sc.Text()
		}
		close(s.lines)
		if first {
			close(ready)
		}
	}()
	go func() {
		err := cmd.Wait()
		s.waitMu.Lock()
		s.err = err
		s.waitMu.Unlock()
		close(s.done)
	}()
	t.Cleanup(func() { s.stopIfRunning() })

	select {
	case line, ok := <-ready:
		if !ok {
			<-s.done
			t.Fatalf("devclickhouse exited before its ready line: %v\nstderr:\n%s", s.exitErr(), s.stderr.String())
		}
		m := readyRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected first line %q", line)
		}
		s.addr, s.native = m[1], m[3]
		wantDir, _ := filepath.Abs(dir)
		if m[2] != wantDir {
			t.Fatalf("ready line names data dir %q, want %q", m[2], wantDir)
		}
		if strings.HasSuffix(s.addr, ":0") || strings.HasSuffix(s.native, ":0") {
			t.Fatalf("ready line shows port 0: %q", line)
		}
		if slices.Contains(extra, "--native-listen") != (s.native != "") {
			t.Fatalf("ready line %q: native address wanted: %v", line, slices.Contains(extra, "--native-listen"))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no ready line within 60s\nstderr:\n%s", s.stderr.String())
	}
	waitFor(t, 30*time.Second, "GET /ping answers Ok.", func() bool {
		resp, err := http.Get(s.url("/ping"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && string(b) == "Ok.\n"
	})
	return s
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

func (s *server) exitErr() error {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	return s.err
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30s, and no
// stdout line besides the ready line.
func (s *server) stop(t testing.TB) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("devclickhouse did not exit within 30s of SIGTERM\nstderr:\n%s", s.stderr.String())
	}
	if err := s.exitErr(); err != nil {
		t.Fatalf("devclickhouse exit after SIGTERM: %v\nstderr:\n%s", err, s.stderr.String())
	}
	for line := range s.lines {
		t.Errorf("unexpected extra stdout line: %q", line)
	}
}

func (s *server) stopIfRunning() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request to the server's query endpoint.
func (s *server) do(t testing.TB, method string, params url.Values, body io.Reader) response {
	t.Helper()
	u := s.url("/") + "?" + params.Encode()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// query runs a statement with curl's conventions (GET for reads, POST
// otherwise) and requires success; it returns the TabSeparated output.
func (s *server) query(t testing.TB, sql string) string {
	t.Helper()
	method := http.MethodPost
	if up := strings.ToUpper(strings.TrimSpace(sql)); strings.HasPrefix(up, "SELECT") || strings.HasPrefix(up, "SHOW") {
		method = http.MethodGet
	}
	r := s.do(t, method, url.Values{"query": {sql}}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", sql, r.status, r.body)
	}
	return r.body
}

// count returns SELECT count() FROM table.
func (s *server) count(t testing.TB, table string) int {
	t.Helper()
	out := strings.TrimSpace(s.query(t, "SELECT count() FROM "+table))
	var n int
	if _, err := fmt.Sscan(out, &n); err != nil {
		t.Fatalf("count(%s): %q: %v", table, out, err)
	}
	return n
}

// sharedT hands the shared server's cleanup to TestMain instead of the test
// that happened to start it.
type sharedT struct{ *testing.T }

var sharedCleanups []func()

func (s *sharedT) Cleanup(f func()) { sharedCleanups = append(sharedCleanups, f) }

func tempDir() (string, error) { return os.MkdirTemp("", "devclickhouse-e2e-") }

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(sharedCleanups) - 1; i >= 0; i-- {
		sharedCleanups[i]()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}
