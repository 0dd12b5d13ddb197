// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package stack runs the local product stack as real processes on loopback:
// bin/devclickhouse, bin/devkafka and bin/otelcol-failover. The end-to-end
// tests, `make demo` and `make bench` share it. Nothing here depends on the
// testing package: callers turn errors into test failures or exit codes.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one long-running program of the stack. It can be stopped and
// started again with the same arguments (same port, same data directory).
type Process struct {
	Name string
	Bin  string
	Args []string
	Env  []string
	// ReadyPrefix, when set, is the start of the line the program prints on
	// stdout once it serves.
	ReadyPrefix string
	// LogPath receives stdout and stderr, appended across restarts.
	LogPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// Start runs the program and waits for its ready line (when ReadyPrefix is
// set) until timeout. It returns the ready line.
func (p *Process) Start(timeout time.Duration) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return "", fmt.Errorf("%s: already running", p.Name)
	}
	if _, err := os.Stat(p.Bin); err != nil {
		return "", fmt.Errorf("%s: %s not found: build it with `make build devservers`: %w", p.Name, p.Bin, err)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(logFile, "==== %s start %s %s\n", time.Now().Format(time.RFC3339Nano), p.Bin, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stderr = logFile
	// Its own process group, so that a Ctrl-C of the parent does not reach it
	// before we stop it in order; and killed with its parent if that dies
	// without stopping it (a test binary killed at its timeout), so that no
	// process is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return "", err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", fmt.Errorf("%s: %w", p.Name, err)
	}
	track(cmd.Process)
	p.cmd = cmd
	p.exited = make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if p.ReadyPrefix != "" && strings.HasPrefix(line, p.ReadyPrefix) {
				select {
				case ready <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stdout)
	}()
	exited := p.exited
	go func() {
		err := cmd.Wait()
		untrack(cmd.Process)
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		fmt.Fprintf(logFile, "==== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), err)
		logFile.Close()
		close(exited)
	}()
	if p.ReadyPrefix == "" {
		return "", nil
	}
	select {
	case line := <-ready:
		return line, nil
	case <-exited:
		p.cmd = nil
		return "", fmt.Errorf("%s exited before it was ready; see %s", p.Name, p.LogPath)
	case <-time.After(timeout):
		p.mu.Unlock()
		_ = p.Stop(5 * time.Second)
		p.mu.Lock()
		return "", fmt.Errorf("%s was not ready within %v; see %s", p.Name, timeout, p.LogPath)
	}
}

// Running reports whether the process is up.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id while the process is up, 0 otherwise (the bench
// reads /proc/<pid> for CPU time and memory).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	select {
	case <-p.exited:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Signal sends sig to the process (SIGSTOP/SIGCONT simulate a hang).
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s: not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Paused reports whether the process is stopped by a signal (SIGSTOP): its
// state in /proc is T.
func (p *Process) Paused() (bool, error) {
	pid := p.Pid()
	if pid == 0 {
		return false, fmt.Errorf("%s: not running", p.Name)
	}
	return Stopped(pid)
}

// Pause sends SIGSTOP and waits until the process is stopped: the signal is
// delivered asynchronously, and a request it was still serving would be
// answered after kill(2) returned.
func (p *Process) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return WaitStopped(p.Pid(), 10*time.Second)
}

// Resume sends SIGCONT.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Stopped reports whether process pid is stopped by a signal: its state in
// /proc/<pid>/stat is T.
func Stopped(pid int) (bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false, err
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state
	// follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false, fmt.Errorf("pid %d: unexpected /proc stat %q", pid, s)
	}
	return s[i+2] == 'T', nil
}

// WaitStopped polls until process pid is stopped (after SIGSTOP), or fails
// after timeout.
func WaitStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := Stopped(pid)
		if err != nil {
			return err
		}
		if stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d was not stopped %v after SIGSTOP", pid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop sends SIGTERM (after SIGCONT, in case it was paused), waits up to
// grace, then kills it. It is safe to call on a stopped process.
func (p *Process) Stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s did not stop within %v and was killed", p.Name, grace)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var exitErr *exec.ExitError
	if errors.As(p.exitErr, &exitErr) && exitErr.ExitCode() > 0 {
		return fmt.Errorf("%s exited with status %d; see %s", p.Name, exitErr.ExitCode(), p.LogPath)
	}
	return nil
}

// Kill stops the process at once with SIGKILL (a crash).
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// handedOut holds the ports FreePort returned: the kernel may offer a port
// again once its probe listener is closed, and two servers of one stack
// (or a server restarted later on its port) must never be given the same.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not been given before.
func FreePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port on 127.0.0.1 that was not handed out already")
}

// ModulePath is the root module of this repository; RepoRoot looks for its
// go.mod.
const ModulePath = "github.com/otelfailover/otelcol-failover"

// RepoRoot walks up from the working directory to the directory whose
// go.mod declares ModulePath (nested modules such as devservers/... and
// tools are passed by).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory: run from the otelcol-failover checkout", ModulePath)
		}
		dir = parent
	}
}

// declaresModule reports whether go.mod content declares this repository's
// module (ModulePath).
func declaresModule(gomod []byte) bool {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == ModulePath
		}
	}
	return false
}

// Sleep waits d or until ctx ends, whichever is first; it returns ctx's
// error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitFor polls cond until it holds or ctx ends.
func WaitFor(ctx context.Context, every time.Duration, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// Every process started is tracked so that KillAll can clean up after an
// interrupted demo or test: no process is left behind.
var (
	trackedMu sync.Mutex
	tracked   = map[int]*os.Process{}
)

func track(p *os.Process) {
	trackedMu.Lock()
	tracked[p.Pid] = p
	trackedMu.Unlock()
}

func untrack(p *os.Process) {
	trackedMu.Lock()
	delete(tracked, p.Pid)
	trackedMu.Unlock()
}

// KillAll kills every process this package started that is still running.
func KillAll() {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	for pid := range tracked {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
