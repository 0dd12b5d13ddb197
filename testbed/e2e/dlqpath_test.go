// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The DLQ path never drops what it is handed: requests larger than a Kafka
// record, the answer a client gets when no member took its data, and bad
// data mixed with good. Reference configuration, real OTLP clients (HTTP and
// gRPC), the real binary, devkafka and devclickhouse.

// kafkaRecordLimit is the reference configuration's kafka/dlq
// producer::max_message_bytes (8 MiB; checked in variants_test.go).
const kafkaRecordLimit = 8 << 20

// During a ClickHouse outage, OTLP requests of 1 MB (one record), of just
// over a record (9 MB) and of 19 MB (just under the OTLP/HTTP receiver's
// 20 MiB body limit), over OTLP/HTTP and OTLP/gRPC, of every signal, are all
// accepted: the group parks each in records that fit
// producer::max_message_bytes, and every item reaches ClickHouse after the
// replay.
func TestLargeRequestsAreParkedAndReplayed(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.warmUp()
	e.waitReplayConsumers()
	e.stopClickHouse()

	sizes := []int{1_000_000, 9_000_000, 19_000_000}
	// Items of ~2 KB: the ingest group's batches (up to 10,000 items) are
	// then larger than a record, so the group itself cuts them by size.
	const attrs = 40
	// The same item count for every signal, each request at least size
	// bytes: items of the signal whose items encode smallest set the count.
	perItem := 0
	for _, s := range loadgen.AllSignals {
		b := encodedBytes(batchOf(s, e.run, 1000, attrs, 0)) / 1000
		if perItem == 0 || b < perItem {
			perItem = b
		}
	}
	sent := map[loadgen.Signal]uint64{}
	for _, s := range loadgen.AllSignals {
		for _, size := range sizes {
			for _, proto := range []string{"http", "grpc"} {
				n := size/perItem + 1
				data := batchOf(s, e.run, n, attrs, sent[s])
				var a answer
				if proto == "http" {
					a = e.exportHTTP(t, s, data)
				} else {
					a = e.exportGRPC(t, data)
				}
				if !a.ok() {
					t.Fatalf("%s, %d-byte request (%d items) over %s during the outage: %v", s, encodedBytes(data), n, proto, a)
				}
				t.Logf("%s: %d-byte request (%d items) over %s accepted", s, encodedBytes(data), n, proto)
				sent[s] += uint64(n)
			}
		}
	}

	// Parked in records that each fit one Kafka record.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for _, topic := range stack.DLQTopics {
		recs, err := e.kafka.ReadAll(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		largest := 0
		for _, r := range recs {
			size := len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				size += len(h.Key) + len(h.Value)
			}
			largest = max(largest, size)
		}
		t.Logf("%s: %d records, the largest %d bytes", topic, len(recs), largest)
		if largest > kafkaRecordLimit {
			t.Errorf("%s: a record of %d bytes, over producer::max_message_bytes (%d)", topic, largest, kafkaRecordLimit)
		}
		if largest < kafkaRecordLimit/2 {
			t.Errorf("%s: the largest record holds %d bytes: batches were not cut by size up to producer::max_message_bytes (%d)", topic, largest, kafkaRecordLimit)
		}
	}

	e.startClickHouse()
	dups := e.requireAllOf(e.run, int64(sent[loadgen.Traces]), 3*time.Minute)
	if sum(dups) != 0 {
		t.Errorf("%d duplicate rows after the replay of the parts (%v)", sum(dups), dups)
	}
	e.waitDrained(60 * time.Second)
}

// What an OTLP client is told when no member took its data: retryable (HTTP
// 503, gRPC Unavailable) while members are down; not retryable (HTTP 400,
// gRPC InvalidArgument) only when every member that was tried refused the
// data as bad. The text names each member and the class of its miss, and
// never an address, a broker or a user name.
func TestClientAnswerWhenNoMemberTookTheData(t *testing.T) {
	forbidden := func(t *testing.T, e *env, a answer) {
		t.Helper()
		for _, leak := range []string{e.kafka.Addr, e.ch.Addr, "127.0.0.1", "http://", "default@"} {
			if strings.Contains(a.message, leak) {
				t.Errorf("the client's error text carries %q: %v", leak, a)
			}
		}
	}
	t.Run("members down", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.warmUp()
		e.stopBoth()
		for _, s := range loadgen.AllSignals {
			data := batchOf(s, e.run, 10, 0, 0)
			h, g := e.exportHTTP(t, s, data), e.exportGRPC(t, data)
			t.Logf("%s: %v; %v", s, h, g)
			if h.http != http.StatusServiceUnavailable {
				t.Errorf("%s over HTTP: %v, want 503 (retry later)", s, h)
			}
			if g.code != codes.Unavailable {
				t.Errorf("%s over gRPC: %v, want Unavailable", s, g)
			}
			for _, a := range []answer{h, g} {
				if !strings.Contains(a.message, "members[0] clickhouse/live: ") || !strings.Contains(a.message, "members[1] kafka/dlq: ") {
					t.Errorf("the error does not name each member: %v", a)
				}
				forbidden(t, e, a)
			}
		}
		if !strings.Contains(e.collectorLog(), "No member accepted the data") {
			t.Errorf("the collector did not log that no member took the data")
		}
	})
	t.Run("bad data", func(t *testing.T) {
		t.Parallel()
		// on_permanent_error: return, so that the batch ClickHouse refuses
		// as bad is returned instead of parked.
		e := newEnv(t, envOptions{collectorArgs: []string{"--set=exporters::failover_group/ingest::on_permanent_error=return"}})
		e.warmUp()
		e.addPoisonConstraints(t)
		for _, s := range loadgen.AllSignals {
			data := batchOf(s, e.run, 10, 0, 0)
			markPoison(data, 0)
			h, g := e.exportHTTP(t, s, data), e.exportGRPC(t, data)
			t.Logf("%s: %v; %v", s, h, g)
			if h.http != http.StatusBadRequest {
				t.Errorf("%s over HTTP: %v, want 400 (do not retry)", s, h)
			}
			if g.code != codes.InvalidArgument {
				t.Errorf("%s over gRPC: %v, want InvalidArgument", s, g)
			}
			for _, a := range []answer{h, g} {
				if !strings.Contains(a.message, "members[0] clickhouse/live: permanent:clickhouse_469") {
					t.Errorf("the error does not say ClickHouse refused the data: %v", a)
				}
				forbidden(t, e, a)
			}
		}
	})
}

// Bad items are isolated, not their batch: replayed records of 100 items
// with one bad item each put 99 items of each into ClickHouse and only the
// bad one into the poison topic; and a live batch with one bad item puts the
// others into ClickHouse at once and parks only that one, which ends in the
// poison topic after its replay.
func TestOnlyRefusedItemsArePoisoned(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.warmUp()
	e.waitReplayConsumers()
	e.addPoisonConstraints(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	const records, perRecord = 20, 100
	var recs []*kgo.Record
	for _, s := range loadgen.AllSignals {
		for i := range records {
			data := batchOf(s, e.run, perRecord, 0, uint64(i*perRecord))
			markPoison(data, i%perRecord)
			recs = append(recs, &kgo.Record{Topic: dlqTopic(s), Partition: int32(i % 4), Value: mustMarshal(t, s, data)})
		}
	}
	if err := e.kafka.ProduceRecords(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	// And a live batch with one bad item, per signal, ClickHouse up.
	const liveFirst = records * perRecord
	for _, s := range loadgen.AllSignals {
		data := batchOf(s, e.run, perRecord, 0, liveFirst)
		markPoison(data, 7)
		if a := e.exportHTTP(t, s, data); !a.ok() {
			t.Fatalf("%s: live batch with one bad item: %v", s, a)
		}
	}

	good := int64(records*(perRecord-1) + perRecord - 1)
	if dups := e.requireAllOf(e.run, good, 2*time.Minute); sum(dups) != 0 {
		t.Errorf("%d duplicate rows: isolation wrote good items twice (%v)", sum(dups), dups)
	}
	e.waitDrained(60 * time.Second)
	for i, s := range loadgen.AllSignals {
		topic := stack.PoisonTopics[i]
		var poisoned, bad int
		e.waitUntil(fmt.Sprintf("%d poisoned items in %s", records+1, topic), 60*time.Second, func(ctx context.Context) (bool, error) {
			recs, err := e.kafka.ReadAll(ctx, topic)
			if err != nil {
				return false, err
			}
			poisoned, bad = 0, 0
			for _, r := range recs {
				n, b := countItems(t, s, r.Value)
				poisoned, bad = poisoned+n, bad+b
				if reason := recordHeaders(r)[dlqmeta.KeyPoisonReason]; reason != "permanent:clickhouse_469" {
					return false, fmt.Errorf("poison record with reason %q", reason)
				}
			}
			return poisoned > records, nil
		})
		if poisoned != records+1 || bad != poisoned {
			t.Errorf("%s: %d items poisoned, %d of them bad; want only the %d bad ones", topic, poisoned, bad, records+1)
		}
	}
}

// poisonMark is the value that the poison constraints refuse.
const poisonMark = "poison-item"

// addPoisonConstraints makes ClickHouse refuse (code 469) the items that
// markPoison marks, in every signal's table.
func (e *env) addPoisonConstraints(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"ALTER TABLE otel.otel_traces ADD CONSTRAINT no_poison CHECK SpanName != '" + poisonMark + "'",
		"ALTER TABLE otel.otel_logs ADD CONSTRAINT no_poison CHECK Body != '" + poisonMark + "'",
		"ALTER TABLE otel.otel_metrics_gauge ADD CONSTRAINT no_poison CHECK Value >= 0",
	} {
		if _, err := e.ch.Query(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// markPoison makes item i of a loadgen batch one that ClickHouse refuses.
func markPoison(data any, i int) {
	switch d := data.(type) {
	case ptrace.Traces:
		d.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i).SetName(poisonMark)
	case plog.Logs:
		d.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(i).Body().SetStr(poisonMark)
	case pmetric.Metrics:
		d.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(i).SetIntValue(-1)
	}
}

// countItems decodes a record of signal s: its items and how many of them
// are marked poison.
func countItems(t *testing.T, s loadgen.Signal, value []byte) (items, poison int) {
	t.Helper()
	switch s {
	case loadgen.Traces:
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(value)
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					items++
					if sp.Name() == poisonMark {
						poison++
					}
				}
			}
		}
	case loadgen.Logs:
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(value)
		if err != nil {
			t.Fatal(err)
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					items++
					if lr.Body().AsString() == poisonMark {
						poison++
					}
				}
			}
		}
	default:
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(value)
		if err != nil {
			t.Fatal(err)
		}
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						items++
						if dp.IntValue() < 0 {
							poison++
						}
					}
				}
			}
		}
	}
	return items, poison
}
