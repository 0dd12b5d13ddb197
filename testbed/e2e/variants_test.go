// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The variant configurations in testbed/e2e/testdata/ are the reference
// configuration plus the differences their header comments list, and
// nothing else: when the reference configuration changes, this test says
// which variant to regenerate, so the scenarios keep testing what ships.
func TestVariantConfigsFollowTheReference(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]func(cfg map[string]any){
		"persistent-queue.yaml": func(cfg map[string]any) {
			dig(cfg, "extensions")["file_storage/queue"] = map[string]any{
				"directory": "${env:QUEUE_DIR}", "create_directory": true,
			}
			g := dig(cfg, "exporters", "failover_group/ingest")
			g["sending_queue"] = map[string]any{
				"storage": "file_storage/queue",
				"batch":   map[string]any{"flush_timeout": "500ms"},
			}
			g["retry_on_failure"] = map[string]any{
				"enabled": true, "initial_interval": "1s", "max_interval": "5s", "max_elapsed_time": "0s",
			}
			svc := dig(cfg, "service")
			svc["extensions"] = append(svc["extensions"].([]any), "file_storage/queue")
			for _, sig := range []string{"traces", "metrics", "logs"} {
				dig(cfg, "service", "pipelines", sig+"/ingest")["processors"] = []any{"memory_limiter"}
			}
		},
		"poison-topic-missing.yaml": func(cfg map[string]any) {
			members := dig(cfg, "exporters", "failover_group/poison")["members"].([]any)
			kafka := members[0].(map[string]any)["kafka/poison"].(map[string]any)
			for sig, topic := range map[string]string{"traces": "missing_spans_poison", "metrics": "missing_metrics_poison", "logs": "missing_logs_poison"} {
				kafka[sig] = map[string]any{"topic": topic}
			}
			kafka["producer"].(map[string]any)["allow_auto_topic_creation"] = false
		},
		"late-answers.yaml": func(cfg map[string]any) {
			g := dig(cfg, "exporters", "failover_group/ingest")
			g["attempt_timeout"] = "1s"
			live := g["members"].([]any)[0].(map[string]any)["clickhouse/live"].(map[string]any)
			live["endpoint"] = "${env:LIVE_CLICKHOUSE_ENDPOINT}"
		},
		"miswired-replay.yaml": func(cfg map[string]any) {
			delete(dig(cfg, "exporters"), "failover_group/replay")
			dig(cfg, "exporters", "failover_group/ingest")["allow_in_replay_pipelines"] = true
			dig(cfg, "exporters", "failover_group/ingest")["sending_queue"] = map[string]any{"enabled": false}
			for _, sig := range []string{"traces", "metrics", "logs"} {
				dig(cfg, "connectors", "dlq_routing/"+sig)["replay"] = map[string]any{"hold_while_failing_over": false}
			}
			for _, sig := range []string{"traces", "metrics", "logs"} {
				dig(cfg, "service", "pipelines", sig+"/replay")["exporters"] = []any{"failover_group/ingest"}
			}
		},
	}
	// The constants the scenarios take from the reference configuration.
	ref := loadYAML(t, filepath.Join(root, "testdata", "otelcol-failover.yaml"))
	if got := dig(ref, "exporters", "failover_group/ingest")["attempt_timeout"]; got != attemptTimeout.String() {
		t.Errorf("failover_group/ingest attempt_timeout is %v in the reference configuration, the scenarios assume %v (attemptTimeout)", got, attemptTimeout)
	}
	dlq := dig(ref, "exporters", "failover_group/ingest")["members"].([]any)[1].(map[string]any)["kafka/dlq"].(map[string]any)
	limit := dig(dlq, "producer")["max_message_bytes"]
	if limit != kafkaRecordLimit {
		t.Errorf("kafka/dlq producer::max_message_bytes is %v in the reference configuration, the scenarios assume %d (kafkaRecordLimit)", limit, kafkaRecordLimit)
	}
	if limit, ok := limit.(int); !ok || limit > stack.MessageMaxBytes {
		t.Errorf("kafka/dlq producer::max_message_bytes (%v) is over devkafka's message.max.bytes (%d, stack.MessageMaxBytes): parked records would be refused", limit, stack.MessageMaxBytes)
	}
	for topic, group := range replayGroups {
		found := false
		for id, r := range dig(ref, "receivers") {
			rm, _ := r.(map[string]any)
			if rm["group_id"] == group && strings.Contains(fmt.Sprint(rm), topic) && slices.Contains(replayReceivers, id) {
				found = true
			}
		}
		if !found {
			t.Errorf("no replay receiver of %v with group_id %s reads %s in the reference configuration", replayReceivers, group, topic)
		}
	}

	for name, patch := range variants {
		t.Run(name, func(t *testing.T) {
			want := loadYAML(t, filepath.Join(root, "testdata", "otelcol-failover.yaml"))
			patch(want)
			got := loadYAML(t, filepath.Join(root, "testbed", "e2e", "testdata", name))
			if !reflect.DeepEqual(got, want) {
				wantText, _ := yaml.Marshal(want)
				gotText, _ := yaml.Marshal(got)
				t.Fatalf("testbed/e2e/testdata/%s is not the reference configuration plus its listed differences; regenerate it.\nwant:\n%s\ngot:\n%s",
					name, wantText, gotText)
			}
		})
	}
}

func loadYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// dig walks nested maps, failing the test (by panic) if a key is missing.
func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			panic("no map at key " + k)
		}
		m = next
	}
	return m
}
