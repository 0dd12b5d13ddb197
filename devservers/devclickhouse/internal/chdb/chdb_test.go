// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chdb

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// conn is the process's one connection, shared by every test.
var conn *Conn

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chdb-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conn, err = Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	conn.Close()
	if _, err := conn.Query([]byte("SELECT 1"), "TabSeparated"); !errors.Is(err, ErrClosed) {
		fmt.Fprintf(os.Stderr, "query after Close: %v, want ErrClosed\n", err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func TestSecondOpenRefused(t *testing.T) {
	if c, err := Open(t.TempDir()); err == nil {
		c.Close()
		t.Fatal("second Open succeeded")
	}
}

func TestQuery(t *testing.T) {
	out, err := conn.Query([]byte("SELECT 1 + 1, 'a\\tb'"), "TabSeparated")
	if err != nil || string(out) != "2\ta\\tb\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestErrorCarriesCode(t *testing.T) {
	_, err := conn.Query([]byte("SELECT * FROM no_such_table"), "TabSeparated")
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Message, "Code: 60. DB::Exception: ") {
		t.Fatalf("%v", err)
	}
	if _, err := conn.Query(nil, "TabSeparated"); err == nil {
		t.Fatal("empty query: no error")
	}
}

// chDB installs crash handlers for SIGSEGV and others unless told not to;
// the binding must leave Go's in place, or a nil dereference hangs or kills
// the process instead of panicking (devclickhouse recovers panics per
// request).
func TestGoStillOwnsSIGSEGV(t *testing.T) {
	if _, err := conn.Query([]byte("SELECT 1"), "TabSeparated"); err != nil {
		t.Fatal(err)
	}
	recovered := func() (r any) {
		defer func() { r = recover() }()
		var p *struct{ x int }
		p.x = 1
		return nil
	}()
	if recovered == nil {
		t.Fatal("nil dereference did not panic")
	}
}

func TestConcurrentQueries(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				out, err := conn.Query([]byte("SELECT 7"), "TabSeparated")
				if err != nil || string(out) != "7\n" {
					t.Errorf("worker %d: %q %v", i, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
