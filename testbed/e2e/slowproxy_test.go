// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lateAnswers is a test double in front of devclickhouse: it forwards every
// request at once, so ClickHouse runs it (and commits an insert) as usual,
// and holds an INSERT's answer back for delay, as a loaded ClickHouse whose
// answers come late does. A client that gave up in the meantime (the group's
// attempt_timeout) never learns that its insert was committed: the group
// parks the batch, and the replay writes it again. devclickhouse cannot fail
// this way by itself (SIGSTOP stops the insert too), hence the double.
// Other requests (pings, schema) are answered at once.
type lateAnswers struct {
	srv    *httptest.Server
	target atomic.Pointer[string] // devclickhouse's base URL
	delay  atomic.Int64           // time.Duration
	// lateCommits counts inserts ClickHouse committed whose client had
	// gone before the answer.
	lateCommits atomic.Int64
	inserts     atomic.Int64
}

// setTarget points the double at devclickhouse (before the collector
// starts).
func (p *lateAnswers) setTarget(url string) {
	u := strings.TrimSuffix(url, "/")
	p.target.Store(&u)
}

func newLateAnswers(t *testing.T, delay time.Duration) *lateAnswers {
	t.Helper()
	p := &lateAnswers{}
	p.delay.Store(int64(delay))
	client := &http.Client{Timeout: time.Minute}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		target := p.target.Load()
		if target == nil {
			http.Error(w, "no target yet", http.StatusServiceUnavailable)
			return
		}
		req, err := http.NewRequestWithContext( //nolint:gosec // G704: a test double forwarding to the devclickhouse the test started
			context.WithoutCancel(r.Context()), r.Method, *target+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req) //nolint:gosec // G704: as above
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if isInsert(r.URL.Query().Get("query")) {
			p.inserts.Add(1)
			select {
			case <-time.After(time.Duration(p.delay.Load())):
			case <-r.Context().Done():
				if resp.StatusCode == http.StatusOK {
					p.lateCommits.Add(1)
				}
				return
			}
		}
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func isInsert(query string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(query)), "INSERT")
}
