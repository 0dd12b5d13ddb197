// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParsePromDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond,
		"2d": 48 * time.Hour, "1w": 7 * 24 * time.Hour, "0s": 0, "1m30s": 90 * time.Second,
	} {
		got, err := ParsePromDuration(in)
		if err != nil || got != want {
			t.Errorf("ParsePromDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "m", "5x", "1.5m", "-5m", "5m "} {
		if d, err := ParsePromDuration(bad); err == nil {
			t.Errorf("ParsePromDuration(%q) = %v, want an error", bad, d)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 3 * time.Second: "3s", 1500 * time.Millisecond: "1500ms", 2 * time.Minute: "2m", time.Hour: "1h",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestScaleRuleDurations(t *testing.T) {
	in := &RuleFile{Groups: []RuleGroup{{Name: "g", Rules: []RuleSpec{
		{
			Alert:  "A",
			Expr:   `sum(rate(x{le=~"[0-9]+"}[10m])) > 0 or max_over_time(y[30m:1m]) > 0 unless z offset 10m`,
			For:    "15m",
			Labels: map[string]string{"severity": "warning"}, Annotations: map[string]string{"summary": "for: 15m [10m]"},
		},
		{Alert: "B", Expr: "rate(x[2m]) > 0 and rate(y[90s]) > 0 and z[1m:]", For: "1m30s"},
		{Record: "r", Expr: "sum(x)"},
	}}}}
	out, err := ScaleRuleDurations(in, 60, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a, b, r := out.Groups[0].Rules[0], out.Groups[0].Rules[1], out.Groups[0].Rules[2]
	if want := `sum(rate(x{le=~"[0-9]+"}[10s])) > 0 or max_over_time(y[30s:1s]) > 0 unless z offset 10s`; a.Expr != want {
		t.Errorf("A expr:\n got %s\nwant %s", a.Expr, want)
	}
	if a.For != "15s" || a.Labels["severity"] != "warning" || a.Annotations["summary"] != "for: 15m [10m]" {
		t.Errorf("A: for %q, labels %v, annotations %v: only durations may change, and not in annotations", a.For, a.Labels, a.Annotations)
	}
	// Windows are floored at minWindow; for: is not.
	if want := "rate(x[3s]) > 0 and rate(y[3s]) > 0 and z[3s:]"; b.Expr != want || b.For != "1500ms" {
		t.Errorf("B: expr %s for %s; want %s for 1500ms", b.Expr, b.For, want)
	}
	if r.Expr != "sum(x)" || r.For != "" {
		t.Errorf("recording rule changed: %+v", r)
	}
	if in.Groups[0].Rules[0].For != "15m" {
		t.Error("the input was modified")
	}
	if _, err := ScaleRuleDurations(&RuleFile{Groups: []RuleGroup{{Rules: []RuleSpec{{Alert: "C", Expr: "x[5q]"}}}}}, 60, time.Second); err == nil {
		t.Error("a window that is not a duration was accepted")
	}
}

// The shipped rules, time-compressed as the end-to-end tests load them,
// are still valid rules (promtool check rules), and ReadRuleFile knows
// every field they use.
func TestScaledShippedRulesAreValid(t *testing.T) {
	promtool, err := PromtoolBinary()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ReadRuleFile(filepath.Join(root, "deploy", "monitoring", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	scaled, err := ScaleRuleDurations(rules, 60, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "scaled.yaml")
	if err = WriteRuleFile(path, scaled); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the scaled rules: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(path)
	for _, long := range []string{"[10m]", "[30m]", "for: 5m", "for: 15m", "offset 10m"} {
		if strings.Contains(string(b), long) {
			t.Errorf("scaled rules still hold %q", long)
		}
	}
}

// A real Prometheus scrapes a fake /metrics endpoint every second,
// evaluates an alert rule every second, and the API helpers see the alert
// go pending, firing and back to inactive as the metric changes.
func TestPrometheusScrapesAndAlerts(t *testing.T) {
	if _, err := PrometheusBinary(); err != nil {
		t.Fatal(err)
	}
	var value atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "# TYPE test_gauge gauge\ntest_gauge{member=\"a\"} %d\n", value.Load())
	}))
	defer srv.Close()

	dir := t.TempDir()
	rules := &RuleFile{Groups: []RuleGroup{{Name: "test", Rules: []RuleSpec{{
		Alert: "TestGaugeHigh", Expr: "max by (member) (test_gauge) > 0", For: "2s",
		Labels: map[string]string{"severity": "warning"}, Annotations: map[string]string{"summary": "gauge of {{ $labels.member }} is {{ $value }}"},
	}}}}}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := WriteRuleFile(rulesPath, rules); err != nil {
		t.Fatal(err)
	}
	prom, err := NewPrometheus(dir, PrometheusOptions{Targets: []string{strings.TrimPrefix(srv.URL, "http://")}, RuleFiles: []string{rulesPath}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if serr := prom.Stop(10 * time.Second); serr != nil {
			t.Error(serr)
		}
		if t.Failed() {
			b, _ := os.ReadFile(prom.LogPath)
			t.Logf("prometheus log:\n%s", b)
		}
	})
	if err = prom.StartAndWait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prom.ConfigPath)
	if err != nil || !strings.Contains(string(b), "scrape_interval: 1s") || !strings.Contains(string(b), "evaluation_interval: 1s") {
		t.Fatalf("prometheus.yml: %v\n%s", err, b)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	wait := func(what string, cond func() (bool, error)) {
		t.Helper()
		if werr := WaitFor(ctx, 100*time.Millisecond, cond); werr != nil {
			t.Fatalf("waiting for %s: %v", what, werr)
		}
	}
	wait("the target to be up", func() (bool, error) { return prom.TargetsUp(ctx, 1) })
	state := func(want string) func() (bool, error) {
		return func() (bool, error) {
			s, serr := prom.AlertState(ctx, "TestGaugeHigh")
			return s == want, serr
		}
	}
	wait("the alert to be inactive", state("inactive"))

	value.Store(7)
	wait("the alert to be pending", state("pending"))
	wait("the alert to fire", state("firing"))
	all, err := prom.Rules(ctx)
	if err != nil || len(all) != 1 || len(all[0].Alerts) != 1 {
		t.Fatalf("rules: %+v, %v", all, err)
	}
	if a := all[0].Alerts[0]; a.Labels["member"] != "a" || a.Labels["severity"] != "warning" || a.Annotations["summary"] != "gauge of a is 7" {
		t.Errorf("alert: %+v", a)
	}
	s, err := prom.Query(ctx, `sum(test_gauge) * 2`)
	if err != nil || len(s) != 1 || s[0].Value != 14 {
		t.Errorf("vector query: %v, %v", s, err)
	}
	if s, err = prom.Query(ctx, `scalar(sum(test_gauge))`); err != nil || len(s) != 1 || s[0].Value != 7 {
		t.Errorf("scalar query: %v, %v", s, err)
	}
	if _, err = prom.Query(ctx, `test_gauge[1m]`); err == nil {
		t.Error("a range vector answer was not refused")
	}
	if _, err = prom.Query(ctx, `sum(`); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("a bad query: %v, want Prometheus's bad_data error", err)
	}

	value.Store(0)
	wait("the alert to resolve", state("inactive"))
	if _, err = prom.AlertState(ctx, "NoSuchAlert"); err == nil {
		t.Error("an unknown alert has a state")
	}
}
