// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package chdb is a small cgo binding to libchdb, the ClickHouse engine
// packaged as a shared library by the chDB project.
//
// The header and the library are fetched into devservers/.cache/chdb by
// `make -C devservers libchdb`; the binary finds the library through an rpath.
//
// chDB allows one connection per process and the binding serialises every
// call on it with a mutex.
package chdb

/*
#cgo CFLAGS: -I${SRCDIR}/../../../.cache/chdb/include
#cgo LDFLAGS: -L${SRCDIR}/../../../.cache/chdb/lib -lchdb -Wl,-rpath,${SRCDIR}/../../../.cache/chdb/lib

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "chdb.h"

// Exported by libchdb 26.x but absent from the chdb.h shipped with chdb-go
// v1.11.0, so declared here.
extern chdb_result *chdb_query_n(chdb_connection conn, const char *query, size_t query_len, const char *format, size_t format_len);
extern void chdb_set_signal_handlers_enabled(int enabled);

// Every catchable signal the Go runtime may have a handler for. chDB resets
// or replaces the handlers of some of them (SIGSEGV, SIGBUS, SIGFPE, ...) when
// it starts; the Go runtime needs its own handlers back, or a nil dereference
// in Go code kills the process instead of panicking.
static const int devch_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE,
	SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGCONT,
	SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF,
	SIGWINCH, SIGIO, SIGSYS,
#ifdef SIGPWR
	SIGPWR,
#endif
};
#define DEVCH_NSIG (sizeof(devch_signals) / sizeof(devch_signals[0]))

typedef struct {
	struct sigaction sa[DEVCH_NSIG];
} devch_sigsnap;

static void devch_save(devch_sigsnap *s) {
	for (size_t i = 0; i < DEVCH_NSIG; i++) {
		sigaction(devch_signals[i], NULL, &s->sa[i]);
	}
}

// Restores every disposition that changed since devch_save and returns how
// many did.
static int devch_restore(devch_sigsnap *s) {
	int changed = 0;
	for (size_t i = 0; i < DEVCH_NSIG; i++) {
		struct sigaction cur;
		sigaction(devch_signals[i], NULL, &cur);
		if (cur.sa_handler != s->sa[i].sa_handler || cur.sa_flags != s->sa[i].sa_flags) {
			sigaction(devch_signals[i], &s->sa[i], NULL);
			changed++;
		}
	}
	return changed;
}

typedef struct {
	chdb_connection *conn;
	int changed;
} devch_open_result;

static devch_open_result devch_open(int argc, char **argv) {
	devch_sigsnap snap;
	devch_open_result r;
	devch_save(&snap);
	// Opt out of chDB's crash handlers; the call resets several handlers to
	// SIG_DFL as a side effect, which devch_restore undoes.
	chdb_set_signal_handlers_enabled(0);
	r.conn = chdb_connect(argc, argv);
	r.changed = devch_restore(&snap);
	return r;
}

typedef struct {
	chdb_result *res;
	int changed;
} devch_query_result;

static devch_query_result devch_query(chdb_connection *conn, const char *q, size_t qlen, const char *f, size_t flen) {
	devch_sigsnap snap;
	devch_query_result r;
	devch_save(&snap);
	r.res = chdb_query_n(*conn, q, qlen, f, flen);
	r.changed = devch_restore(&snap);
	return r;
}

static void devch_close(chdb_connection *conn) {
	devch_sigsnap snap;
	devch_save(&snap);
	chdb_close_conn(conn);
	devch_restore(&snap);
}
*/
import "C"

import (
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Error is a failed query; Message is chDB's error text, which carries the
// ClickHouse exception code ("Code: 60. DB::Exception: ... (UNKNOWN_TABLE)").
type Error struct {
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrClosed is returned by Query after Close.
var ErrClosed = errors.New("chdb: connection closed")

// Conn is the process's one chDB connection. It is safe for concurrent use:
// calls are serialised.
type Conn struct {
	mu   sync.Mutex
	conn *C.chdb_connection
	// signalRepairs counts chDB calls after which a signal handler had to be
	// put back.
	signalRepairs atomic.Int64
}

var opened atomic.Bool

// Open starts the engine with its data in dir (created if missing).
// Only one connection may be opened per process.
func Open(dir string) (*Conn, error) {
	if !opened.CompareAndSwap(false, true) {
		return nil, errors.New("chdb: only one connection per process")
	}
	args := []string{"devclickhouse", "--path=" + dir}
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	defer func() {
		for _, p := range argv {
			C.free(unsafe.Pointer(p))
		}
	}()
	cargv := (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(argv[0]))))
	defer C.free(unsafe.Pointer(cargv))
	copy(unsafe.Slice(cargv, len(argv)), argv)

	r := C.devch_open(C.int(len(args)), cargv)
	if r.conn == nil {
		opened.Store(false)
		return nil, errors.New("chdb: chdb_connect failed (is the data directory writable and not used by another process?)")
	}
	c := &Conn{conn: r.conn}
	if r.changed > 0 {
		c.signalRepairs.Add(1)
	}
	return c, nil
}

// Query runs one statement and returns its output in the given format
// (for example "Native" or "TabSeparated"). The statement may carry inline
// data after an INSERT ... FORMAT clause: it is passed to the engine with its
// length, so it may contain any bytes.
func (c *Conn) Query(query []byte, format string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil, ErrClosed
	}
	if len(query) == 0 {
		return nil, &Error{Message: "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"}
	}
	cformat := C.CString(format)
	defer C.free(unsafe.Pointer(cformat))
	// The query bytes are Go memory holding no pointers and not kept by C
	// after the call, which cgo's pointer rules allow.
	r := C.devch_query(c.conn, (*C.char)(unsafe.Pointer(&query[0])), C.size_t(len(query)), cformat, C.size_t(len(format)))
	if r.changed > 0 {
		c.signalRepairs.Add(1)
	}
	if r.res == nil {
		return nil, &Error{Message: "Code: 1001. DB::Exception: chdb_query returned no result. (STD_EXCEPTION)"}
	}
	defer C.chdb_destroy_query_result(r.res)
	if msg := C.chdb_result_error(r.res); msg != nil {
		return nil, &Error{Message: C.GoString(msg)}
	}
	n := C.chdb_result_length(r.res)
	if n == 0 {
		return nil, nil
	}
	buf := C.chdb_result_buffer(r.res)
	out := make([]byte, int(n))
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	return out, nil
}

// SignalRepairs tells how many chDB calls changed a signal handler that then
// had to be put back (diagnostics only).
func (c *Conn) SignalRepairs() int64 { return c.signalRepairs.Load() }

// Close shuts the engine down, flushing its data. Further queries fail with
// ErrClosed.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return
	}
	C.devch_close(c.conn)
	c.conn = nil
}
