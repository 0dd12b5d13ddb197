// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package distribution holds the checks of the built collector distribution:
// `make build` must produce bin/otelcol-failover with every component the
// product needs, and the reference configuration must validate with it.
package distribution

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// collector returns the path of the built binary; a missing binary is a
// failure with the command that builds it, never a skip.
func collector(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "otelcol-failover")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: run `make build` (make test builds it first): %v", bin, err)
	}
	return bin
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, collector(t), args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestComponentsListed(t *testing.T) {
	out, err := run(t, "components")
	if err != nil {
		t.Fatalf("components: %v\n%s", err, out)
	}
	var listing struct {
		BuildInfo struct {
			Command string `yaml:"command"`
			Version string `yaml:"version"`
		} `yaml:"buildinfo"`
		Receivers  []struct{ Name string } `yaml:"receivers"`
		Processors []struct{ Name string } `yaml:"processors"`
		Exporters  []struct{ Name string } `yaml:"exporters"`
		Connectors []struct{ Name string } `yaml:"connectors"`
		Extensions []struct{ Name string } `yaml:"extensions"`
		Providers  []struct {
			Scheme string `yaml:"scheme"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(out), &listing); err != nil {
		t.Fatalf("cannot parse `components` output: %v\n%s", err, out)
	}
	if listing.BuildInfo.Command != "otelcol-failover" {
		t.Errorf("binary name = %q, want otelcol-failover", listing.BuildInfo.Command)
	}
	names := func(list []struct{ Name string }) map[string]bool {
		m := map[string]bool{}
		for _, c := range list {
			m[c.Name] = true
		}
		return m
	}
	want := map[string]struct {
		have map[string]bool
		need []string
	}{
		"receivers":  {names(listing.Receivers), []string{"otlp", "kafka"}},
		"processors": {names(listing.Processors), []string{"batch", "memory_limiter"}},
		"exporters":  {names(listing.Exporters), []string{"failover_group", "clickhouse", "kafka", "otlp_grpc", "otlp_http", "debug", "file"}},
		"connectors": {names(listing.Connectors), []string{"dlq_routing"}},
		"extensions": {names(listing.Extensions), []string{"file_storage", "health_check", "healthcheckv2", "pprof", "zpages"}},
	}
	for kind, w := range want {
		for _, n := range w.need {
			if !w.have[n] {
				t.Errorf("%s: %q missing from `otelcol-failover components`", kind, n)
			}
		}
	}
	schemes := map[string]bool{}
	for _, p := range listing.Providers {
		schemes[p.Scheme] = true
	}
	for _, s := range []string{"env", "file", "yaml"} {
		if !schemes[s] {
			t.Errorf("config provider %q missing", s)
		}
	}
}

// The version names the commit that built the binary.
func TestVersionNamesCommit(t *testing.T) {
	out, err := run(t, "--version")
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", repoRoot(t), "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v (the version check needs the git checkout the binary was built from)", err)
	}
	if sha := strings.TrimSpace(string(head)); !strings.Contains(out, sha) {
		t.Errorf("version %q does not name the commit %s; rebuild with `make build`", strings.TrimSpace(out), sha)
	}
}

// The reference configuration of the README (traces, metrics and logs through
// failover_group and dlq_routing) is a valid configuration for the binary.
func TestReferenceConfigValidates(t *testing.T) {
	out, err := run(t, "validate", "--config", filepath.Join("testdata", "otelcol-failover.yaml"))
	if err != nil {
		t.Fatalf("validate testdata/otelcol-failover.yaml: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "otelcol-failover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"traces/ingest", "metrics/ingest", "logs/ingest", "traces/replay", "metrics/replay", "logs/replay"} {
		if !strings.Contains(string(cfg), p+":") {
			t.Errorf("reference configuration lacks pipeline %s", p)
		}
	}
}

// The README shows the reference configuration verbatim; keep them in step.
func TestReadmeEmbedsReferenceConfig(t *testing.T) {
	root := repoRoot(t)
	cfg, err := os.ReadFile(filepath.Join(root, "testdata", "otelcol-failover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- reference-config:begin -->\n```yaml\n", "```\n<!-- reference-config:end -->"
	b, e := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if b < 0 || e < b {
		t.Fatalf("README.md lacks the reference-config markers %q ... %q", begin, end)
	}
	if got := string(readme)[b+len(begin) : e]; got != string(cfg) {
		t.Errorf("README.md's reference configuration differs from testdata/otelcol-failover.yaml; copy the file into the README block")
	}
}
