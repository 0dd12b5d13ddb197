// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// FuzzDecodeMembers feeds arbitrary YAML as the `members` value of a group,
// through the collector's own YAML path (confmap.NewRetrievedFromYAML), then
// Unmarshal and Validate. It must never panic; every error must name the
// members key; a config that passes must marshal back (print-config).
//
// Run: go test -fuzz FuzzDecodeMembers -fuzztime 30s ./failovergroupexporter/
func FuzzDecodeMembers(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	members := &testMembers{}
	factory := NewFactoryWithMembers(members.factory(testMemberType))
	f.Fuzz(func(t *testing.T, doc string) {
		ret, err := confmap.NewRetrievedFromYAML([]byte(doc))
		if err != nil {
			return
		}
		raw, err := ret.AsRaw()
		if err != nil {
			return
		}
		conf := confmap.NewFromStringMap(map[string]any{"members": raw})
		cfg := factory.CreateDefaultConfig().(*Config)
		err = conf.Unmarshal(cfg)
		if err == nil {
			err = confmap.Validate(cfg)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "members") {
				t.Fatalf("error does not name the members key: %v\ninput: %q", err, doc)
			}
			return
		}
		if len(cfg.Members) == 0 {
			t.Fatalf("a valid config has members; input: %q", doc)
		}
		if err := confmap.New().Marshal(cfg); err != nil {
			t.Fatalf("valid config does not marshal: %v\ninput: %q", err, doc)
		}
	})
}

// fuzzSeeds: the members value of every group in testdata (valid and
// invalid) plus a few hand-written shapes.
func fuzzSeeds(tb testing.TB) []string {
	seeds := []string{
		"[{debug: {}}]",
		"- clickhouse/live: {endpoint: 'http://127.0.0.1:8123'}\n- kafka/dlq: {brokers: [a:9092]}",
		"- testmember/a: {mutates: true}\n- testmember/b:",
		"- otlp: {endpoint: 'h:4317'}\n- otlphttp/x: {endpoint: 'http://h'}",
		"- clickhouse/live: {endpoint: 'http://h:8123', sending_queue: {enabled: true}}",
		"- clickhouse/live: {endpoint: 'http://h:8123', sending_queue: {wait_for_result: true}}",
		"- clickhouse/live: {endpoint: 'http://h:8123', sending_queue: 7}",
		"- kafka: {include_metadata_keys: [a, 1, null]}",
		"- debug/a: {}\n- debug/a: {}",
		"- failover_group: {members: [{debug: {}}]}",
		"- '/x': {}",
		"- 'debug/a/b': {}",
		"- 'DEBUG': {}",
		"- '': {}",
		"- debug: [1, 2]",
		"{debug: {}}",
		"debug",
		"[[debug]]",
		"~",
		"[]",
		"[null]",
	}
	for _, file := range []string{"config.yaml", "invalid.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			tb.Fatal(err)
		}
		var groups map[string]map[string]any
		if err := yaml.Unmarshal(b, &groups); err != nil {
			tb.Fatal(err)
		}
		for _, g := range groups {
			if m, ok := g["members"]; ok {
				out, err := yaml.Marshal(m)
				if err != nil {
					tb.Fatal(err)
				}
				seeds = append(seeds, string(out))
			}
		}
	}
	return seeds
}
