// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// validate runs `bin/otelcol-failover validate --config file` in a process
// group of its own, bounded by a timeout, and checks that it exited by
// itself and left no process behind. It returns the exit code and the
// combined output.
func validate(t *testing.T, root, file string) (int, string) {
	t.Helper()
	const timeout = 60 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "otelcol-failover"), "validate", "--config", file)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("validate did not exit within %v and was killed; output:\n%s", timeout, out.String())
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
		t.Fatalf("validate did not exit by itself (%v); output:\n%s", cmd.ProcessState, out.String())
	}
	// Nothing of its process group may survive it.
	if kerr := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(kerr, syscall.ESRCH) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("validate left processes behind in its process group %d (kill 0: %v)", cmd.Process.Pid, kerr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("validate: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Every file in testdata/invalid/ is a configuration that `validate` must
// refuse: non-zero exit status, and an error containing the substring on the
// file's first line (`# want: <substring>`), which names the key at fault.
func TestInvalidConfigsAreRefused(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err = os.Stat(filepath.Join(root, "bin", "otelcol-failover")); err != nil {
		t.Fatal("bin/otelcol-failover not found: run `make build`")
	}
	files, err := filepath.Glob(filepath.Join(root, "testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("%d files in testdata/invalid/, expected the whole set", len(files))
	}

	// The control: the same binary accepts the reference configuration, so
	// a refusal below is about the file, not the tool.
	if code, out := validate(t, root, filepath.Join(root, "testdata", "otelcol-failover.yaml")); code != 0 {
		t.Fatalf("the reference configuration is refused (exit %d):\n%s", code, out)
	}

	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			t.Parallel()
			want := wantLine(t, file)
			code, out := validate(t, root, file)
			if code == 0 {
				t.Fatalf("validate accepted %s (exit 0); want an error containing %q; output:\n%s", file, want, out)
			}
			if !strings.Contains(out, want) {
				t.Fatalf("validate exit %d, output does not contain %q:\n%s", code, want, out)
			}
			t.Logf("exit %d: %s", code, lineWith(out, want))
		})
	}
}

func wantLine(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		t.Fatalf("%s is empty", file)
	}
	want, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok || strings.TrimSpace(want) == "" {
		t.Fatalf("%s: the first line must be `# want: <substring of the expected error>`, got %q", file, sc.Text())
	}
	return strings.TrimSpace(want)
}

// lineWith is the output line holding want, for the log.
func lineWith(out, want string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, want) {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(out)
}
