// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The shipped rules pass `promtool check rules`, and their unit tests with
// synthetic series (alerts_test.yaml: each alert fires after its
// production `for:`, not before, not on a blip, and resolves) pass
// `promtool test rules`. `make lint` runs both too; this test fails, rather
// than skips, where promtool is missing.
func TestMonitoringRulesPassPromtool(t *testing.T) {
	promtool, err := stack.PromtoolBinary()
	if err != nil {
		t.Fatal(err)
	}
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertsFile)}, {"test", "rules", filepath.Base(alertsTest)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(root, filepath.Dir(alertsFile))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s: %s", strings.Join(args, " "), strings.Join(strings.Fields(string(out)), " "))
	}
}

// noFor are the alerts that fire at the first evaluation, and why.
var noFor = map[string]string{
	"OtelcolFailoverPoisonArriving": "each poisoned item is a fact already (ClickHouse refused it permanently): nothing to smooth",
}

// Every alert says what is happening and what to do, has a severity and a
// `for:` (or a reason in noFor), and is proven to fire by a promtool unit
// test; every dashboard panel has a query on the Prometheus data source
// variable; the README's monitoring section names every alert and panel.
func TestMonitoringFilesAreComplete(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := stack.ReadRuleFile(filepath.Join(root, alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	fired := alertsFiredInUnitTests(t, filepath.Join(root, alertsTest))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := markdownSection(string(readme), "## Monitoring: dashboard and alerts")
	if section == "" {
		t.Error(`README.md has no section "## Monitoring: dashboard and alerts"`)
	}

	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			names[r.Alert] = true
			if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if len(strings.Fields(r.Annotations[a])) < 5 {
					t.Errorf("alert %s: annotation %s %q says too little", r.Alert, a, r.Annotations[a])
				}
			}
			if r.For == "" && noFor[r.Alert] == "" {
				t.Errorf("alert %s has no for: (fires on one evaluation)", r.Alert)
			}
			if !fired[r.Alert] {
				t.Errorf("alert %s: no promtool unit test in %s expects it to fire", r.Alert, alertsTest)
			}
			if !strings.Contains(section, r.Alert) {
				t.Errorf("README monitoring section does not list alert %s", r.Alert)
			}
		}
	}
	for _, want := range []string{"OtelcolFailoverParking", "OtelcolFailoverDataRefused", "OtelcolFailoverStandbyUnhealthy", "OtelcolFailoverDLQNotDraining", "OtelcolFailoverPoisonArriving"} {
		if !names[want] {
			t.Errorf("alert %s is missing", want)
		}
	}

	d := readDashboard(t, root)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	ids := map[int]bool{}
	metric := regexp.MustCompile(`\b(otelcol_[a-z_]+)`)
	for _, p := range d.graphPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q: data source %v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		for _, q := range p.Targets {
			if !metric.MatchString(q.Expr) {
				t.Errorf("panel %q query %s reads no otelcol_ metric: %s", p.Title, q.RefID, q.Expr)
			}
		}
		if !strings.Contains(section, p.Title) {
			t.Errorf("README monitoring section does not list panel %q", p.Title)
		}
	}
	if len(ids) < 10 {
		t.Errorf("dashboard has %d panels", len(ids))
	}
	// Every query substitutes cleanly (variables exist, defaults are All).
	for _, q := range d.queries(t) {
		if strings.Contains(q.expr, "$") {
			t.Errorf("panel %q: unsubstituted variable in %s", q.panel, q.expr)
		}
	}
}

// alertsFiredInUnitTests are the alerts that some promtool unit test
// expects to fire (a non-empty exp_alerts).
func alertsFiredInUnitTests(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err = yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	fired := map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	return fired
}

// markdownSection is the text under heading up to the next heading of the
// same level ("" when absent).
func markdownSection(doc, heading string) string {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if i := strings.Index(rest, "\n"+level); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
