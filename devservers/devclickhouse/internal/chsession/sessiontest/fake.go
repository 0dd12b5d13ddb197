// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package sessiontest has a fake engine for the tests of devclickhouse's
// front ends: it records statements and answers from a function.
package sessiontest

import (
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// Engine is a chsession.Engine that records the statements it runs and the
// files they read, and answers with Answer.
type Engine struct {
	mu      sync.Mutex
	queries []string
	files   []string
	// Answer answers every statement but chsession's own start-up queries;
	// nil answers nothing.
	Answer func(q, format string) ([]byte, error)
	// Baseline answers chsession.BaselineQuery (JSONCompactEachRow rows).
	Baseline string
}

var fileRe = regexp.MustCompile(`(?:file\(|INFILE )'([^']+)'`)

// Query implements chsession.Engine.
func (f *Engine) Query(q []byte, format string) ([]byte, error) {
	f.mu.Lock()
	f.queries = append(f.queries, string(q))
	if m := fileRe.FindStringSubmatch(string(q)); m != nil {
		b, _ := os.ReadFile(m[1])
		f.files = append(f.files, string(b))
	}
	answer := f.Answer
	f.mu.Unlock()
	switch {
	case strings.HasPrefix(string(q), "SELECT version()"):
		return []byte("26.7.2.1\tEtc/UTC\n"), nil
	case string(q) == chsession.BaselineQuery:
		return []byte(f.Baseline), nil
	case string(q) == chsession.SettingNamesQuery:
		return nil, nil
	}
	if answer != nil {
		return answer(string(q), format)
	}
	return nil, nil
}

// SetAnswer replaces Answer while the engine may be in use.
func (f *Engine) SetAnswer(answer func(q, format string) ([]byte, error)) {
	f.mu.Lock()
	f.Answer = answer
	f.mu.Unlock()
}

// Statements returns the statements run since the last call, leaving out
// chsession's start-up queries.
func (f *Engine) Statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		if !strings.HasPrefix(q, "SELECT version()") && q != chsession.BaselineQuery && q != chsession.SettingNamesQuery {
			out = append(out, q)
		}
	}
	f.queries = nil
	return out
}

// Files returns the contents of the files the statements read, in order.
func (f *Engine) Files() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.files...)
}

// NewSession returns a chsession.Session over f with its temporary files in
// dir.
func NewSession(f *Engine, dir string) (*chsession.Session, error) {
	return chsession.New(f, chsession.Options{TempDir: dir})
}
