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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
		for b := 0; b < goodBatches; b++ {
			add(topic, mustMarshal(t, s, goodBatch(s, e.run, perBatch, uint64(b*perBatch))))
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
	for _, line := range strings.Split(log, "\n") {
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
	if _, err := time.Parse(time.RFC3339Nano, headers[dlqmeta.KeyPoisonTime]); err != nil {
		t.Errorf("poison record header %s: %v", dlqmeta.KeyPoisonTime, err)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// goodBatch is a loadgen batch of signal s with the ids first, first+1, ...
func goodBatch(s loadgen.Signal, run string, size int, first uint64) any {
	switch s {
	case loadgen.Traces:
		td := loadgen.NewTraces(run, size)
		loadgen.SetTraceIDs(td, first)
		return td
	case loadgen.Metrics:
		md := loadgen.NewGauge(run, size)
		loadgen.SetGaugeIDs(md, first)
		return md
	default:
		ld := loadgen.NewLogs(run, size)
		loadgen.SetLogIDs(ld, first)
		return ld
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
