// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parked fills the reference topics of a broker: 3 traces records on two
// partitions of the DLQ (two reasons, two members), 1 metrics record, 1
// poison traces record; the traces replay group committed one record.
func parked(t *testing.T, addr string) (t0 time.Time, bytes int64) {
	t.Helper()
	cl := newClient(t, addr)
	t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	refused := stamp{reason: "transient:connection_refused", member: "clickhouse/live", token: "tok-1", at: t0}
	for i, r := range []struct {
		p int32
		s stamp
	}{
		{0, refused},
		{0, stamp{reason: "transient:timeout", member: "clickhouse/live", token: "tok-2", at: t0.Add(time.Minute)}},
		{1, stamp{reason: "transient:connection_refused", member: "otlp_grpc/backup", token: "tok-3", at: t0.Add(2 * time.Minute)}},
	} {
		rec := produce(t, cl, "otlp_spans_dlq", r.p, spans(t, "checkout", 10+i, t0), r.s)
		bytes += recordBytes(rec)
	}
	produce(t, cl, "otlp_metrics_dlq", 1, gauge(t, "cart", 4, t0), refused)
	produce(t, cl, "otlp_spans_poison", 0, spans(t, "checkout", 2, t0),
		stamp{reason: "transient:timeout", member: "clickhouse/live", token: "tok-9", at: t0, poisonReason: "permanent:clickhouse_27", poisonAt: t0.Add(time.Hour)})
	commit(t, cl, "otelcol-failover-replay-traces", "otlp_spans_dlq", 0, 1)
	return t0, bytes
}

func TestStats(t *testing.T) {
	addr := startKafka(t)
	t0, spanBytes := parked(t, addr)
	env := map[string]string{"KAFKA_BROKERS": addr}

	stdout, stderr, code := cli(t, env, "stats", "--config", referenceConfig, "--json")
	require.Equal(t, 0, code, stderr)
	var got []topicStats
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	byTopic := map[string]topicStats{}
	for _, ts := range got {
		byTopic[ts.Topic] = ts
	}
	require.Len(t, byTopic, 6, "every DLQ and poison topic of the config")

	spansDLQ := byTopic["otlp_spans_dlq"]
	assert.Equal(t, "dlq", spansDLQ.Role)
	assert.Equal(t, int64(3), spansDLQ.Records)
	assert.Equal(t, spanBytes, spansDLQ.Bytes)
	require.Len(t, spansDLQ.Partitions, 2)
	p0, p1 := spansDLQ.Partitions[0], spansDLQ.Partitions[1]
	assert.Equal(t, int64(2), p0.Records)
	assert.Equal(t, int64(1), p1.Records)
	assert.Equal(t, map[string]int64{"otelcol-failover-replay-traces": 1}, p0.Lag, "one of two committed")
	assert.Equal(t, map[string]int64{"otelcol-failover-replay-traces": 1}, p1.Lag, "nothing committed: all of it")
	assert.Equal(t, map[string]int64{"otelcol-failover-replay-traces": 2}, spansDLQ.Lag)
	require.NotNil(t, p0.Oldest)
	assert.Equal(t, t0, *p0.Oldest)
	assert.Equal(t, t0.Add(time.Minute), *p0.Newest)
	assert.Equal(t, t0, *spansDLQ.Oldest)
	assert.Equal(t, t0.Add(2*time.Minute), *spansDLQ.Newest)
	assert.Equal(t, []reasonCount{
		{Reason: "transient:connection_refused", FailedMember: "clickhouse/live", Records: 1},
		{Reason: "transient:connection_refused", FailedMember: "otlp_grpc/backup", Records: 1},
		{Reason: "transient:timeout", FailedMember: "clickhouse/live", Records: 1},
	}, spansDLQ.Reasons)

	assert.Equal(t, int64(1), byTopic["otlp_metrics_dlq"].Records)
	assert.Equal(t, int64(0), byTopic["otlp_logs_dlq"].Records)
	assert.Equal(t, map[string]int64{"otelcol-failover-replay-logs": 0}, byTopic["otlp_logs_dlq"].Lag)
	poison := byTopic["otlp_spans_poison"]
	assert.Equal(t, "poison", poison.Role)
	assert.Empty(t, poison.Groups)
	assert.Empty(t, poison.Lag)
	assert.Equal(t, []reasonCount{{Reason: "transient:timeout", FailedMember: "clickhouse/live", PoisonReason: "permanent:clickhouse_27", Records: 1}}, poison.Reasons)

	// The table says the same.
	stdout, stderr, code = cli(t, env, "stats", "--config", referenceConfig)
	require.Equal(t, 0, code, stderr)
	t.Logf("\n%s", stdout)
	lines := strings.Split(stdout, "\n")
	assert.Regexp(t, `^TOPIC +ROLE +PARTITION +RECORDS +BYTES +REPLAY GROUP +LAG +OLDEST STAMP +NEWEST STAMP$`, lines[0])
	assert.Contains(t, lines, findLine(t, lines, `^otlp_spans_dlq +dlq +all +3 +\d+ +otelcol-failover-replay-traces +2 +2026-11-26T10:00:00.000Z +2026-11-26T10:02:00.000Z$`))
	assert.Contains(t, lines, findLine(t, lines, `^otlp_spans_dlq +transient:connection_refused +clickhouse/live +- +1$`))
	assert.Contains(t, lines, findLine(t, lines, `^otlp_spans_poison +transient:timeout +clickhouse/live +permanent:clickhouse_27 +1$`))
	assert.Contains(t, lines, findLine(t, lines, `^otlp_spans_poison +poison +all +1 +\d+ +- +- +`))

	// One topic.
	stdout, _, code = cli(t, env, "stats", "--config", referenceConfig, "--topic", "otlp_metrics_dlq", "--json")
	require.Equal(t, 0, code)
	got = nil
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Len(t, got, 1)
	assert.Equal(t, "otlp_metrics_dlq", got[0].Topic)
	assert.Equal(t, int64(1), got[0].Records)
}

// findLine returns the line matching pattern, failing the test without one.
func findLine(t *testing.T, lines []string, pattern string) string {
	t.Helper()
	for _, l := range lines {
		if regexp.MustCompile(pattern).MatchString(l) {
			return l
		}
	}
	t.Fatalf("no line matches %s in\n%s", pattern, strings.Join(lines, "\n"))
	return ""
}
