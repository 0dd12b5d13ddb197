// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The monitoring files shipped in deploy/monitoring.
const (
	alertsFile    = "deploy/monitoring/alerts.yaml"
	alertsTest    = "deploy/monitoring/alerts_test.yaml"
	dashboardFile = "deploy/monitoring/otelcol-failover-dashboard.json"
)

// monitoringTimeScale compresses the alert rules' time for the end-to-end
// tests: every `for:`, range window and offset of deploy/monitoring/
// alerts.yaml is divided by 60 in a copy loaded by the test's Prometheus
// (`for: 5m` becomes 5s, `[10m]` 10s), windows never below
// monitoringMinWindow (three scrapes at the test's 1s interval). The
// shipped file keeps its production durations, which alerts_test.yaml
// proves with promtool.
const (
	monitoringTimeScale = 60
	monitoringMinWindow = 3 * time.Second
)

// requirePrometheus fails the test at once, before the stack starts, when
// the prometheus server is not installed (`make deps` installs it).
func requirePrometheus(t *testing.T) {
	t.Helper()
	if _, err := stack.PrometheusBinary(); err != nil {
		t.Fatal(err)
	}
}

// startPrometheus starts Debian's prometheus scraping the collector's
// metrics endpoint every second and evaluating the shipped alert rules,
// time-compressed (monitoringTimeScale), every second; it waits until the
// collector is scraped and every rule is loaded.
func (e *env) startPrometheus() *stack.Prometheus {
	e.t.Helper()
	rules, err := stack.ReadRuleFile(filepath.Join(e.root, alertsFile))
	if err != nil {
		e.t.Fatal(err)
	}
	scaled, err := stack.ScaleRuleDurations(rules, monitoringTimeScale, monitoringMinWindow)
	if err != nil {
		e.t.Fatal(err)
	}
	scaledPath := filepath.Join(e.dir, "alerts-scaled.yaml")
	if err = stack.WriteRuleFile(scaledPath, scaled); err != nil {
		e.t.Fatal(err)
	}
	prom, err := stack.NewPrometheus(e.dir, stack.PrometheusOptions{
		Targets:   []string{fmt.Sprintf("127.0.0.1:%d", e.col.MetricsPort)},
		RuleFiles: []string{scaledPath},
		Interval:  time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = prom.Stop(10 * time.Second)
		if e.t.Failed() {
			logTail(e.t, "prometheus.log", prom.LogPath, 10000)
		}
	})
	if err = prom.StartAndWait(30 * time.Second); err != nil {
		e.t.Fatal(err)
	}
	want := 0
	for _, g := range rules.Groups {
		want += len(g.Rules)
	}
	e.waitUntil("prometheus to scrape the collector and load every rule", 30*time.Second, func(ctx context.Context) (bool, error) {
		up, qerr := prom.TargetsUp(ctx, 1)
		if qerr != nil || !up {
			return false, qerr
		}
		loaded, qerr := prom.Rules(ctx)
		return len(loaded) == want, qerr
	})
	return prom
}

// alertWatch polls Prometheus's rules every 200 ms in the background and
// keeps, per alerting rule, each change of its state with the time it was
// seen: the tests wait on it and report the timeline.
type alertWatch struct {
	t    *testing.T
	prom *stack.Prometheus
	mu   sync.Mutex
	// changes per alert name, in order; the first is the state at start.
	changes map[string][]alertChange
	// active holds the labels of each pending or firing alert of a rule,
	// as last seen.
	active map[string][]stack.Alert
	// errs are rule evaluation errors seen (health "err").
	errs map[string]string
	stop chan struct{}
	done chan struct{}
}

type alertChange struct {
	state string
	at    time.Time
}

func watchAlerts(t *testing.T, prom *stack.Prometheus) *alertWatch {
	t.Helper()
	w := &alertWatch{
		t: t, prom: prom,
		changes: map[string][]alertChange{}, active: map[string][]stack.Alert{}, errs: map[string]string{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go w.run()
	t.Cleanup(w.close)
	return w
}

func (w *alertWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rules, err := w.prom.Rules(ctx)
		cancel()
		now := time.Now()
		if err == nil {
			w.mu.Lock()
			for i := range rules {
				r := &rules[i]
				if r.Type != "alerting" {
					continue
				}
				if r.Health == "err" {
					w.errs[r.Name] = r.LastError
				}
				ch := w.changes[r.Name]
				if len(ch) == 0 || ch[len(ch)-1].state != r.State {
					w.changes[r.Name] = append(ch, alertChange{state: r.State, at: now})
				}
				w.active[r.Name] = r.Alerts
			}
			w.mu.Unlock()
		}
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

func (w *alertWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// state is the last seen state of alert name ("" before the first poll).
func (w *alertWatch) state(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := w.changes[name]
	if len(ch) == 0 {
		return ""
	}
	return ch[len(ch)-1].state
}

// firstSince is when alert name was first seen in state at or after since
// (zero if not yet).
func (w *alertWatch) firstSince(name, state string, since time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes[name] {
		if c.state == state && !c.at.Before(since) {
			return c.at
		}
	}
	return time.Time{}
}

// waitState waits until alert name is in state (an alert that went
// through it between two polls is not seen: wait for states that last).
// It returns when it was first seen so.
func (w *alertWatch) waitState(name, state string, timeout time.Duration) time.Time {
	w.t.Helper()
	var seen time.Time
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := stack.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if msg, ok := w.errs[name]; ok {
			return false, fmt.Errorf("rule %s fails to evaluate: %s", name, msg)
		}
		ch := w.changes[name]
		if len(ch) > 0 && ch[len(ch)-1].state == state {
			seen = ch[len(ch)-1].at
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		w.t.Fatalf("alert %s not %s within %v (now %q): %v; timeline: %s", name, state, timeout, w.state(name), err, w.timeline(name, time.Time{}))
	}
	return seen
}

// waitFiring waits until alert name has a firing alert whose labels
// include want.
func (w *alertWatch) waitFiring(name string, want map[string]string, timeout time.Duration) stack.Alert {
	w.t.Helper()
	var found stack.Alert
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := stack.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.active[name] {
			if a.State == "firing" && labelsInclude(a.Labels, want) {
				found = a
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		w.mu.Lock()
		active := w.active[name]
		w.mu.Unlock()
		w.t.Fatalf("no firing alert %s with labels %v within %v: %v; active: %+v", name, want, timeout, err, active)
	}
	return found
}

func labelsInclude(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// requireNot fails the test if alert name was pending or firing at any
// time since since.
func (w *alertWatch) requireNot(name string, since time.Time) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	// The state at since (the last change before it), then every change.
	var states []alertChange
	for _, c := range w.changes[name] {
		if c.at.Before(since) {
			states = []alertChange{c}
			continue
		}
		states = append(states, c)
	}
	for _, c := range states {
		if c.state == "pending" || c.state == "firing" {
			w.t.Errorf("alert %s was %s at %s, and should not have been since %s", name, c.state,
				c.at.Format("15:04:05.000"), since.Format("15:04:05.000"))
		}
	}
}

// timeline renders the state changes of alert name relative to t0 (the
// wall clock when t0 is zero).
func (w *alertWatch) timeline(name string, t0 time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for _, c := range w.changes[name] {
		if t0.IsZero() {
			parts = append(parts, fmt.Sprintf("%s at %s", c.state, c.at.Format("15:04:05.000")))
		} else {
			parts = append(parts, fmt.Sprintf("%s at %+.1fs", c.state, c.at.Sub(t0).Seconds()))
		}
	}
	return strings.Join(parts, ", ")
}

// dashboard is the part of the Grafana dashboard JSON the tests read.
type dashboard struct {
	Title      string           `json:"title"`
	UID        string           `json:"uid"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []dashboardVariable `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource map[string]any   `json:"datasource"`
	Targets    []dashboardQuery `json:"targets"`
	Panels     []dashboardPanel `json:"panels"` // a collapsed row's panels
}

type dashboardQuery struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

type dashboardVariable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

func readDashboard(t *testing.T, root string) *dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err = json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// graphPanels are the dashboard's panels that show data (rows left out,
// a collapsed row's panels included).
func (d *dashboard) graphPanels() []dashboardPanel {
	var out []dashboardPanel
	for _, p := range d.Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// panelQuery is one panel target's expression as Grafana sends it to
// Prometheus.
type panelQuery struct {
	panel, refID, expr string
}

// rateInterval stands for Grafana's $__rate_interval: with its default
// scrape interval of 15s, Grafana makes it at least 4 × 15s.
const rateInterval = "1m"

// queries substitutes the dashboard's variables the way Grafana does with
// each variable at its default: "All" is the variable's allValue (".*",
// used with =~ matchers), a textbox its text; $__rate_interval becomes
// rateInterval.
func (d *dashboard) queries(t *testing.T) []panelQuery {
	t.Helper()
	values := map[string]string{"__rate_interval": rateInterval}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			continue
		case "textbox":
			values[v.Name] = fmt.Sprint(v.Current.Value)
		default:
			cur := fmt.Sprint(v.Current.Value)
			if !v.IncludeAll || !strings.Contains(cur, "$__all") {
				t.Fatalf("dashboard variable %s: default %q, want All", v.Name, cur)
			}
			all := v.AllValue
			if all == "" {
				t.Fatalf("dashboard variable %s has no allValue: with All, Grafana would list every value", v.Name)
			}
			values[v.Name] = all
		}
	}
	ref := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	var out []panelQuery
	for _, p := range d.graphPanels() {
		for _, q := range p.Targets {
			expr := ref.ReplaceAllStringFunc(q.Expr, func(s string) string {
				m := ref.FindStringSubmatch(s)
				name := m[1] + m[2]
				v, ok := values[name]
				if !ok {
					t.Fatalf("panel %q: expression uses $%s, which is not a dashboard variable: %s", p.Title, name, q.Expr)
				}
				return v
			})
			out = append(out, panelQuery{panel: p.Title, refID: q.RefID, expr: expr})
		}
	}
	return out
}

// requirePanelsHaveData evaluates every panel query until each has
// returned a sample that is a number (NaN is a panel with nothing to
// draw), and fails for those that did not within timeout (a counter
// scraped once has no rate yet: a query may need a second scrape). It
// returns, per panel query, the number of series it returned.
func requirePanelsHaveData(t *testing.T, prom *stack.Prometheus, d *dashboard, timeout time.Duration) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	queries := d.queries(t)
	series := map[string]int{}
	missing := map[string]string{}
	_ = stack.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		clear(missing)
		for _, q := range queries {
			key := q.panel + " " + q.refID
			if _, ok := series[key]; ok {
				continue
			}
			samples, err := prom.Query(ctx, q.expr)
			if err != nil {
				missing[key] = fmt.Sprintf("%v: %s", err, q.expr)
				continue
			}
			numbers := slices.DeleteFunc(slices.Clone(samples), func(s stack.Sample) bool { return math.IsNaN(s.Value) })
			if len(numbers) == 0 {
				missing[key] = fmt.Sprintf("no data (%d samples, all NaN): %s", len(samples), q.expr)
				continue
			}
			series[key] = len(numbers)
		}
		return len(missing) == 0, nil
	})
	for key, why := range missing {
		t.Errorf("panel query %q returned no data within %v: %s", key, timeout, why)
	}
	return series
}

// alertNames are the alerting rules of the shipped rule file, in order.
func alertNames(t *testing.T, root string) []string {
	t.Helper()
	f, err := stack.ReadRuleFile(filepath.Join(root, alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}
