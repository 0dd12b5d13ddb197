// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// Replay while ClickHouse fails again, reference configuration: the replay
// consumers keep failing on the parked records, and the replay path writes
// nothing back to Kafka (the DLQ end offsets do not move once ingest
// stopped) and commits nothing; once ClickHouse is back the DLQ drains.
func TestReplayNeverWritesBackToKafka(t *testing.T) {
	e := newEnv(t, envOptions{})
	replayWhileDown(t, e, func() {
		t.Logf("replay group attempts on clickhouse/replay: %v failed, %v skipped (unavailable), %v skipped (breaker open)",
			e.metric("otelcol_failover_group_attempts", "member="+replayMember, "outcome=transient_error"),
			e.metric("otelcol_failover_group_skipped", "member="+replayMember, "reason=unavailable"),
			e.metric("otelcol_failover_group_skipped", "member="+replayMember, "reason=breaker_open"))
	})
}

// The loop guard under mis-wiring: the replay pipelines export to
// failover_group/ingest, whose second member is kafka/dlq. With ClickHouse
// down the group must refuse replayed data for its DLQ member (it fails, so
// the receiver keeps the record and retries later) instead of writing it
// back to the topic it came from; once ClickHouse is back everything lands.
func TestLoopGuardUnderMisWiring(t *testing.T) {
	e := newEnv(t, envOptions{config: "testbed/e2e/testdata/miswired-replay.yaml"})
	replayWhileDown(t, e, func() {
		n := e.metric("otelcol_failover_group_skipped", "member="+dlqMember, "reason=loop_guard")
		t.Logf("replayed batches kept from kafka/dlq by the loop guard: %v", n)
		if n == 0 {
			t.Errorf("the replay went through failover_group/ingest but its loop guard never kept a batch from kafka/dlq")
		}
	})
}

// replayWhileDown parks a load in the DLQ with ClickHouse down, then keeps
// ClickHouse down while the replay consumers retry (three failed attempts
// per signal, one of them after ingest stopped) and checks that nothing was
// written to the DLQ topics and nothing committed meanwhile. Then ClickHouse comes back and everything must land and the DLQ
// drain, still without a record written by the replay.
func replayWhileDown(t *testing.T, e *env, whileDown func()) {
	ctx := t.Context()
	const batches, size = 10, 50
	e.warmUp()
	e.waitReplayConsumers()
	e.stopClickHouse()

	// Paced, so that the batch processor makes several DLQ records per
	// signal, spread over the partitions.
	r := e.load(ctx, batches, size, 10)
	requireAccepted(t, r, batches)
	sent := float64(batches * size * len(loadgen.AllSignals))
	delivered := func() float64 { return e.metric("otelcol_failover_group_delivered_items", "member="+dlqMember) }
	e.waitUntil("every accepted item parked by kafka/dlq", 30*time.Second, func(context.Context) (bool, error) {
		return delivered() >= sent, nil
	})
	parked := e.mustDLQOffsets()
	parkedItems := delivered()
	t.Logf("ingest done, ClickHouse down: %v (%v items)", parked, parkedItems)

	// The replay path runs while ClickHouse stays down: each replay receiver
	// retries a parked record with backoff, logging each failed attempt.
	backoffs := func() map[string]int {
		n := map[string]int{}
		for line := range strings.SplitSeq(e.collectorLog(), "\n") {
			if !strings.Contains(line, "Backing off due to error from the next consumer") {
				continue
			}
			for _, r := range replayReceivers {
				if strings.Contains(line, `"otelcol.component.id": "`+r+`"`) {
					n[r]++
				}
			}
		}
		return n
	}
	// Every signal's replay must have failed at least three times in all,
	// and at least once after ingest stopped (each a chance to write back).
	before := backoffs()
	held := e.waitUntil("three failed replay attempts per signal, one after ingest stopped", 45*time.Second, func(context.Context) (bool, error) {
		now := backoffs()
		for _, r := range replayReceivers {
			if now[r] < 3 || now[r] == before[r] {
				return false, fmt.Errorf("%s: %d failed attempts, %d since ingest stopped", r, now[r], now[r]-before[r])
			}
		}
		return true, nil
	})
	refused := func(s loadgen.Signal) float64 {
		return e.metric("otelcol_dlq_routing_routed_items", "otelcol_signal="+string(s), "route=replay", "outcome=transient_error")
	}
	whileDown()
	during := e.mustDLQOffsets()
	t.Logf("after %v of replay with ClickHouse down (items refused: traces %v, metrics %v, logs %v): %v",
		held.Round(time.Millisecond), refused(loadgen.Traces), refused(loadgen.Metrics), refused(loadgen.Logs), during)
	for _, topic := range stack.DLQTopics {
		if during.end[topic] != parked.end[topic] {
			t.Errorf("%s: %d records after ingest stopped, %d while only the replay ran: the replay wrote to the DLQ",
				topic, parked.end[topic], during.end[topic])
		}
		if during.committed[topic] != parked.committed[topic] {
			t.Errorf("%s: committed offsets moved from %d to %d while ClickHouse was down: the replay acknowledged data it could not write",
				topic, parked.committed[topic], during.committed[topic])
		}
	}
	if d := delivered(); d != parkedItems {
		t.Errorf("kafka/dlq delivered %v items while only the replay ran", d-parkedItems)
	}
	if t.Failed() {
		t.FailNow()
	}

	e.startClickHouse()
	back := time.Now()
	dups := e.requireAllOf(e.run, batches*size, 90*time.Second)
	drained := e.waitDrained(60 * time.Second)
	t.Logf("drained %v after ClickHouse came back: %v; duplicate rows %d (%s)",
		time.Since(back).Round(time.Millisecond), drained, sum(dups), fmt.Sprint(dups))
	for _, topic := range stack.DLQTopics {
		if drained.end[topic] != parked.end[topic] {
			t.Errorf("%s: %d records after ingest stopped, %d after the replay: the replay wrote to the DLQ",
				topic, parked.end[topic], drained.end[topic])
		}
	}
}
