// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package chsession runs the statements of every front end of devclickhouse
// (the HTTP interface, the native protocol) on the embedded engine's one
// session: statements one at a time, each in its client's database and with
// its client's settings, none of which outlives the statement; inserts whose
// data the engine reads from a temporary file; ClickHouse exceptions with
// their codes.
package chsession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"time"
)

// Engine runs one statement and returns its output in the given format.
// Errors carry ClickHouse's error text ("Code: N. DB::Exception: ...").
type Engine interface {
	Query(query []byte, format string) ([]byte, error)
}

// Options configure a Session.
type Options struct {
	// TempDir holds the data of inserts while the engine reads it. Required.
	TempDir string
	// Logger receives errors and, with Verbose, every statement. Nil
	// discards.
	Logger  *log.Logger
	Verbose bool
}

// Session is the engine's one session, shared by every client.
type Session struct {
	eng     Engine
	opts    Options
	version string
	tz      string

	// baseline holds the settings the engine session started with where
	// they differ from ClickHouse's defaults: a request's settings are put
	// back to these values after it.
	baseline map[string]string
	// known holds the names of the engine's settings (aliases included).
	known map[string]bool

	// mu serialises statements together with the USE that selects their
	// database and the SETs that apply their settings.
	mu    sync.Mutex
	curDB string
}

// New returns the Session over eng. It asks the engine for its version, time
// zone and settings once.
func New(eng Engine, opts Options) (*Session, error) {
	if opts.TempDir == "" {
		return nil, errors.New("chsession: TempDir is required")
	}
	if opts.Logger == nil {
		opts.Logger = log.New(io.Discard, "", 0)
	}
	s := &Session{eng: eng, opts: opts, version: "unknown", tz: "UTC"}
	out, err := eng.Query([]byte("SELECT version(), timezone()"), "TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("chsession: engine does not answer: %w", err)
	}
	if f := strings.Split(strings.TrimSpace(string(out)), "\t"); len(f) == 2 {
		s.version, s.tz = f[0], f[1]
	}
	if s.baseline, err = loadBaseline(eng); err != nil {
		return nil, fmt.Errorf("chsession: cannot read the engine's settings: %w", err)
	}
	if s.known, err = loadSettingNames(eng); err != nil {
		return nil, fmt.Errorf("chsession: cannot read the engine's setting names: %w", err)
	}
	return s, nil
}

// BaselineQuery lists the settings the session starts with that differ from
// ClickHouse's defaults, and their aliases, so that restoring an alias
// restores the same value.
const BaselineQuery = "SELECT name, value FROM system.settings WHERE changed OR alias_for IN " +
	"(SELECT name FROM system.settings WHERE changed)"

// SettingNamesQuery lists the names of the engine's settings.
const SettingNamesQuery = "SELECT name FROM system.settings"

func loadBaseline(eng Engine) (map[string]string, error) {
	out, err := eng.Query([]byte(BaselineQuery), "JSONCompactEachRow")
	if err != nil {
		return nil, err
	}
	baseline := make(map[string]string)
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var row [2]string
		if err := json.Unmarshal(line, &row); err != nil {
			return nil, fmt.Errorf("row %q: %w", line, err)
		}
		baseline[row[0]] = row[1]
	}
	return baseline, nil
}

func loadSettingNames(eng Engine) (map[string]bool, error) {
	out, err := eng.Query([]byte(SettingNamesQuery), "TabSeparated")
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool)
	for _, name := range strings.Fields(string(out)) {
		known[name] = true
	}
	return known, nil
}

// Version is the engine's ClickHouse version (26.7.2.1).
func (s *Session) Version() string { return s.version }

// Timezone is the engine's time zone.
func (s *Session) Timezone() string { return s.tz }

// Logger is where errors go.
func (s *Session) Logger() *log.Logger { return s.opts.Logger }

// Verbose reports whether every statement is logged.
func (s *Session) Verbose() bool { return s.opts.Verbose }

// KnownSetting reports whether the engine has a setting of that name. With
// no list of names (an engine that does not tell), every name is known.
func (s *Session) KnownSetting(name string) bool {
	return len(s.known) == 0 || s.known[name]
}

// Run executes one statement in database db with the request's settings
// applied to the session for that statement only, and returns its output in
// format.
func (s *Session) Run(db string, stmt []byte, format string, settings []Setting) ([]byte, *Exception) {
	change, exc := newSessionChange(settings, s.baseline)
	if exc != nil {
		return nil, exc
	}
	out, err := s.run(db, stmt, format, change)
	if err != nil {
		return nil, AsException(err)
	}
	return out, nil
}

// run executes one statement in database db, with change (nil for none)
// applied to the session around it.
func (s *Session) run(db string, stmt []byte, format string, change *sessionChange) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Verbose {
		start := time.Now()
		defer func() {
			var set string
			if change != nil {
				set = " " + Truncate(change.apply, 300)
			}
			s.opts.Logger.Printf("query db=%s%s (%v): %s", db, set, time.Since(start).Round(time.Microsecond), Abbreviate(string(stmt), 200, 150))
		}()
	}
	if db != s.curDB {
		if _, err := s.eng.Query([]byte("USE "+QuoteIdent(db)), "TabSeparated"); err != nil {
			s.curDB = ""
			return nil, err
		}
		s.curDB = db
	}
	if change != nil {
		// Restored whatever happens next: after the statement, a failing or
		// panicking one included, and after a failing SET too. The engine
		// checks a SET whole before it applies any of it, so there is then
		// nothing to undo, but being sure costs one statement on an error
		// path only.
		defer s.restoreSession(change.restore)
		if _, err := s.eng.Query([]byte(change.apply), "TabSeparated"); err != nil {
			return nil, err
		}
	}
	out, err := s.eng.Query(stmt, format)
	if FirstKeyword(string(stmt)) == "USE" {
		// The statement changed the session's database itself.
		s.curDB = ""
	}
	return out, err
}

// restoreSession puts the settings of the session back after a statement.
// It fails only on settings that checkRestorable does not foresee; the
// session may then keep them, which is worth a line in the log.
func (s *Session) restoreSession(restore string) {
	if _, err := s.eng.Query([]byte(restore), "TabSeparated"); err != nil {
		s.opts.Logger.Printf("error: cannot restore the session's settings (%s): %v", Truncate(restore, 300), err)
	}
}
