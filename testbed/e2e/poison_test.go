// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// Poison in the DLQ topics, reference configuration. On one partition of
// each DLQ topic, in this order: a record that is not OTLP at all, (traces
// only) a record that decodes but that ClickHouse rejects permanently (a
// CHECK constraint), then valid records. The kafka receiver skips the first
// with a log line; dlq_routing sends the second to the poison pipeline
// (failover_group/poison: the poison topic); neither blocks the partition: the valid records behind them
// are replayed into ClickHouse and every offset is committed.
func TestPoisonInDLQDoesNotBlockItsPartition(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.warmUp() // the schema exists
	e.waitReplayConsumers()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	poisonService := e.run + "-poison"
	if _, err := e.ch.Query(ctx, fmt.Sprintf(
		"ALTER TABLE otel.otel_traces ADD CONSTRAINT no_poison CHECK ServiceName != '%s'", poisonService)); err != nil {
		t.Fatal(err)
	}

	garbage := []byte("this is not OTLP {\x00\xff}")
	if _, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(garbage); err == nil {
		t.Fatal("the garbage record decodes as OTLP traces: pick other bytes")
	}
	const perBatch, goodBatches = 10, 2
	const partition = 1
	var recs []*kgo.Record
	add := func(topic string, value []byte) {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: value})
	}
	for _, s := range loadgen.AllSignals {
		topic := dlqTopic(s)
		add(topic, garbage)
		if s == loadgen.Traces {
			poison := loadgen.NewTraces(poisonService, 5)
			add(topic, mustMarshal(t, s, poison))
		}
		for b := range goodBatches {
			add(topic, mustMarshal(t, s, batchOf(s, e.run, perBatch, 0, uint64(b*perBatch))))
		}
	}
	if err := e.kafka.ProduceRecords(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d records on partition %d of the DLQ topics: per topic a non-OTLP record, then (traces) a poison batch, then %d valid batches",
		len(recs), partition, goodBatches)

	dups := e.requireAllOf(e.run, goodBatches*perBatch, 60*time.Second)
	drained := e.waitDrained(30 * time.Second)
	t.Logf("every record committed: %v; duplicate rows %d", drained, sum(dups))

	// The non-OTLP records: skipped by each receiver, with a log line.
	log := e.collectorLog()
	for _, want := range []string{"failed to unmarshal message", "failed to consume message, skipping due to message_marking config"} {
		if n := strings.Count(log, want); n < len(loadgen.AllSignals) {
			t.Errorf("collector log has %q %d times, want one per DLQ topic (%d)", want, n, len(loadgen.AllSignals))
		}
	}
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "skipping due to message_marking config") {
			t.Logf("receiver log: %s", logSummary(line))
			break
		}
	}

	// The poison batch: in the traces poison topic, with the DLQ stamp it
	// came with and why the replay refused it; not in ClickHouse.
	if !strings.Contains(log, "replay pipelines rejected replayed data permanently: sent it to the poison pipelines") {
		t.Errorf("collector log has no line of dlq_routing sending the rejected batch to the poison pipelines")
	}
	poison := e.poisonRecords(t, stack.PoisonTopics[0], 1)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(poison[0].Value)
	if err != nil {
		t.Fatalf("poison record is not OTLP traces: %v", err)
	}
	if n := td.SpanCount(); n != 5 {
		t.Errorf("poison record holds %d spans, want the 5 of the poison batch", n)
	}
	headers := recordHeaders(poison[0])
	if got := headers[dlqmeta.KeyPoisonReason]; got != "permanent:clickhouse_469" {
		t.Errorf("poison record header %s = %q, want permanent:clickhouse_469 (the CHECK constraint)", dlqmeta.KeyPoisonReason, got)
	}
	if _, err = time.Parse(time.RFC3339Nano, headers[dlqmeta.KeyPoisonTime]); err != nil {
		t.Errorf("poison record header %s: %v", dlqmeta.KeyPoisonTime, err)
	}
	qctx, qcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer qcancel()
	rows, err := e.ch.QueryInts(qctx, fmt.Sprintf("SELECT count() FROM otel.otel_traces WHERE ServiceName = '%s'", poisonService))
	if err != nil || len(rows) != 1 || rows[0] != 0 {
		t.Errorf("poison rows in ClickHouse: %v (%v), want 0", rows, err)
	}
	poisoned := e.metric("otelcol_dlq_routing_routed_items", "route=poison", "outcome=accepted", "otelcol_signal=traces")
	if poisoned != 5 {
		t.Errorf("dlq_routing poisoned %v spans, want 5", poisoned)
	}
	t.Logf("poison: %v spans in %s (headers %v), 0 in ClickHouse", poisoned, stack.PoisonTopics[0], headers)
}

// poisonRecords waits until topic holds want records and returns them.
func (e *env) poisonRecords(t *testing.T, topic string, want int) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	e.waitUntil(fmt.Sprintf("%d records in %s", want, topic), 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := e.kafka.EndOffsets(ctx, topic)
		if err != nil || n < int64(want) {
			return false, err
		}
		recs, err = e.kafka.ReadAll(ctx, topic)
		return err == nil, err
	})
	if len(recs) != want {
		t.Fatalf("%s holds %d records, want %d", topic, len(recs), want)
	}
	return recs
}

func recordHeaders(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

func dlqTopic(s loadgen.Signal) string {
	switch s {
	case loadgen.Traces:
		return stack.DLQTopics[0]
	case loadgen.Metrics:
		return stack.DLQTopics[1]
	default:
		return stack.DLQTopics[2]
	}
}

// mustMarshal encodes data as the kafka receiver expects by default
// (otlp_proto: the OTLP protobuf of the signal's data).
func mustMarshal(t *testing.T, s loadgen.Signal, data any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch d := data.(type) {
	case ptrace.Traces:
		b, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(d)
	case pmetric.Metrics:
		b, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(d)
	case plog.Logs:
		b, err = (&plog.ProtoMarshaler{}).MarshalLogs(d)
	default:
		t.Fatalf("%s: cannot marshal %T", s, data)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logSummary shortens a collector log line (zap console encoding: time,
// level, caller, message, JSON fields) to its message, component, error and
// offset.
func logSummary(line string) string {
	parts := strings.SplitN(line, "\t", 5)
	if len(parts) < 5 {
		return line
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(parts[4]), &fields); err != nil {
		return line
	}
	return fmt.Sprintf("%s %q component=%v error=%q offset=%v",
		parts[1], parts[3], fields["otelcol.component.id"], fields["error"], fields["offset"])
}

// When the poison destination fails, replayed data that ClickHouse refuses
// as bad is not lost: its record stays uncommitted, its partition stops
// replaying, and the stall is loud (the dlq_routing_poison_stalled gauge,
// one ERROR line, not one per retry). When the poison topic exists again,
// the record is poisoned and committed, and the stall's end is logged.
func TestPoisonStallIsLoudAndLosesNothing(t *testing.T) {
	e := newEnv(t, envOptions{config: "testbed/e2e/testdata/poison-topic-missing.yaml"})
	e.warmUp()
	e.waitReplayConsumers()
	e.addPoisonConstraints(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// On one partition of the traces DLQ: a batch with one bad span, then
	// a good batch behind it.
	const partition, perBatch = 2, 10
	bad := batchOf(loadgen.Traces, e.run, perBatch, 0, 0)
	markPoison(bad, 3)
	good := batchOf(loadgen.Traces, e.run, perBatch, 0, perBatch)
	topic := stack.DLQTopics[0]
	if err := e.kafka.ProduceRecords(ctx,
		&kgo.Record{Topic: topic, Partition: partition, Value: mustMarshal(t, loadgen.Traces, bad)},
		&kgo.Record{Topic: topic, Partition: partition, Value: mustMarshal(t, loadgen.Traces, good)},
	); err != nil {
		t.Fatal(err)
	}
	stalled := func() float64 { return e.metric("otelcol_dlq_routing_poison_stalled", "otelcol_signal=traces") }
	e.waitUntil("dlq_routing to report the poison stall", 60*time.Second, func(context.Context) (bool, error) {
		return stalled() == 1, nil
	})
	// The replay keeps retrying the record; nothing behind it is committed.
	retries := func() int { return strings.Count(e.collectorLog(), "Backing off due to error from the next consumer") }
	before := retries()
	e.waitUntil("three more retries of the stalled record", 60*time.Second, func(context.Context) (bool, error) {
		return retries() >= before+3, nil
	})
	if c := e.committedOn(t, topic, partition); c != 0 {
		t.Fatalf("partition %d of %s committed up to %d while its poison could not be kept", partition, topic, c)
	}
	if n := strings.Count(e.collectorLog(), "cannot be kept"); n != 1 {
		t.Errorf("the stall was logged %d times, want once", n)
	}
	// 9 good spans of the bad batch are in ClickHouse already (isolation),
	// but not the batch behind it.
	if _, distinct, err := e.countsOf(ctx, loadgen.Traces, e.run); err != nil || distinct != perBatch-1 {
		t.Errorf("traces of the run in ClickHouse: %d (%v), want the %d good spans of the first batch only", distinct, err, perBatch-1)
	}

	// The poison topic appears: the record is poisoned and committed, the
	// batch behind it replayed.
	if err := e.kafka.CreateTopics(ctx, "missing_spans_poison"); err != nil {
		t.Fatal(err)
	}
	dups := e.requireAllOfSignals(e.run, 2*perBatch-1, 90*time.Second, loadgen.Traces)
	if dups[loadgen.Traces] != 0 {
		t.Errorf("%d duplicate rows: the retries of the stalled record wrote what the replay had taken again", dups[loadgen.Traces])
	}
	e.waitUntil("the stall to end", 60*time.Second, func(context.Context) (bool, error) {
		return stalled() == 0 && e.committedOn(t, topic, partition) == 2, nil
	})
	recs := e.poisonRecords(t, "missing_spans_poison", 1)
	if n, b := countItems(t, loadgen.Traces, recs[0].Value); n != 1 || b != 1 {
		t.Errorf("poison record holds %d spans (%d bad), want the one bad span", n, b)
	}
	if !strings.Contains(e.collectorLog(), "the stalled partition replays again") {
		t.Errorf("the end of the stall was not logged")
	}
}

// committedOn is the replay consumer group's committed offset of one
// partition of a DLQ topic (0 when nothing is committed).
func (e *env) committedOn(t *testing.T, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := e.kafka.CommittedPartition(ctx, replayGroups[topic], topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
