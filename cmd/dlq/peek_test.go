// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

func TestPeekJSON(t *testing.T) {
	addr := startKafka(t)
	t0, _ := parked(t, addr)
	env := map[string]string{"KAFKA_BROKERS": addr}

	stdout, stderr, code := cli(t, env, "peek", "--config", referenceConfig, "-n", "2", "--json")
	require.Equal(t, 0, code, stderr)
	var got []recordSummary
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	// In the config's order (DLQ topics by name, then poison topics): the
	// metrics record, two of the three traces records (partition 0 first,
	// oldest first) and the poison record.
	require.Len(t, got, 4, stdout)
	first := got[1]
	assert.Equal(t, "otlp_spans_dlq", first.Topic)
	assert.Equal(t, int32(0), first.Partition)
	assert.Equal(t, int64(0), first.Offset)
	assert.Equal(t, "traces", first.Signal)
	assert.Equal(t, "spans", first.ItemKind)
	assert.Equal(t, 10, first.Items)
	assert.Equal(t, 1, first.Resources)
	assert.Equal(t, []string{"checkout"}, first.Services)
	require.NotNil(t, first.First)
	assert.Equal(t, t0, *first.First)
	assert.Equal(t, t0.Add(10*time.Millisecond), *first.Last, "the last span's end")
	assert.Equal(t, map[string]string{
		dlqmeta.KeyGroup:        "failover_group/ingest",
		dlqmeta.KeyFailedMember: "clickhouse/live",
		dlqmeta.KeyReason:       "transient:connection_refused",
		dlqmeta.KeyTime:         "2026-11-26T10:00:00Z",
		dlqmeta.KeyDedupToken:   "tok-1",
	}, first.Headers)
	assert.Empty(t, first.DecodeError)
	second := got[2]
	assert.Equal(t, int64(1), second.Offset, "the partition's next record")
	assert.Equal(t, 11, second.Items)

	metrics := got[0]
	assert.Equal(t, "otlp_metrics_dlq", metrics.Topic)
	assert.Equal(t, "data points", metrics.ItemKind)
	assert.Equal(t, 4, metrics.Items)
	assert.Equal(t, []string{"cart"}, metrics.Services)
	assert.Equal(t, t0.Add(3*time.Second), *metrics.Last)

	assert.Equal(t, "otlp_spans_poison", got[3].Topic)
	assert.Equal(t, "poison", got[3].Role)
	assert.Equal(t, "permanent:clickhouse_27", got[3].Headers[dlqmeta.KeyPoisonReason])
}

// Text for people, and the other decoders: OTLP/JSON, and a record that is
// not OTLP at all.
func TestPeekText(t *testing.T) {
	addr := startKafka(t, kfake.SeedTopics(1, "otlp_json_logs"))
	cl := newClient(t, addr)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	produce(t, cl, "otlp_json_logs", 0, logsJSON(t, t0, "web", "api"), stamp{reason: "transient:breaker_open", member: "clickhouse/live", token: "tok-j", at: t0})
	produce(t, cl, "otlp_json_logs", 0, []byte("not json"), stamp{reason: "transient:timeout", member: "clickhouse/live", at: t0})
	p := writeConfig(t, `
exporters:
  failover_group:
    members:
      - kafka:
          brokers: ["${env:KAFKA_BROKERS}"]
          logs: {topic: otlp_json_logs, encoding: otlp_json}
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [failover_group]}
`)
	stdout, stderr, code := cli(t, map[string]string{"KAFKA_BROKERS": addr}, "peek", "--config", p)
	require.Equal(t, 0, code, stderr)
	t.Logf("\n%s", stdout)
	records := strings.Split(strings.TrimSpace(stdout), "\n\n")
	require.Len(t, records, 2)
	assert.Regexp(t, `^otlp_json_logs partition 0 offset 0 \(dlq, \d+ bytes, written 20\d\d-`, records[0])
	for _, want := range []string{
		"\n  logs: 2 log records in 2 resources\n",
		"\n  services: api, web\n",
		"\n  time range: 2026-11-26T10:00:00Z to 2026-11-26T10:00:00Z\n",
		"\n  otelcol-failover-group: failover_group/ingest\n  otelcol-failover-failed-member: clickhouse/live\n" +
			"  otelcol-failover-reason: transient:breaker_open\n  otelcol-failover-time: 2026-11-26T10:00:00Z\n  otelcol-failover-dedup-token: tok-j",
	} {
		assert.Contains(t, records[0], want)
	}
	assert.Contains(t, records[1], "offset 1")
	assert.Contains(t, records[1], "cannot decode: not OTLP logs (otlp_json)")
	assert.Contains(t, records[1], "otelcol-failover-reason: transient:timeout")
}

// peek names the topics it knows when asked for another.
func TestPeekUnknownTopic(t *testing.T) {
	addr := startKafka(t)
	_, stderr, code := cli(t, map[string]string{"KAFKA_BROKERS": addr}, "peek", "--config", referenceConfig, "--topic", "otlp_spans")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `topic "otlp_spans" is not a DLQ or poison topic of ../../testdata/otelcol-failover.yaml`)
	assert.Contains(t, stderr, "otlp_spans_dlq")
}
