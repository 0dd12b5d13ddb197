// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// ClickHouse hung (SIGSTOP: its socket accepts connections, nothing answers)
// in the middle of a load: the ingest group gives up on it after
// attempt_timeout and parks the data in the DLQ while ClickHouse is still
// hung, and after SIGCONT everything reaches ClickHouse, exactly once; over
// HTTP and over the native protocol (the ways each shows a hang are in
// protocols_test.go), every DLQ record with a transient reason.
func TestHungClickHouseFailsOverWithinAttemptTimeout(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		e := newEnv(t, envOptions{protocol: protocol})
		e.waitLiveStarted()
		// Cancelled at the end of the test, so a failed test leaves no load
		// running against a port that another test may get next.
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		// The pause is bounded by a window several times attempt_timeout: a
		// group without a deadline of its own would still be waiting at its end.
		const pauseWindow = 4 * attemptTimeout
		const batches, size = 50, 50

		done := make(chan *loadgen.Result, 1)
		go func() { done <- e.load(ctx, batches, size, 15) }() // ~10 s

		e.waitUntil("the first spans in ClickHouse", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, distinct, err := e.counts(ctx, loadgen.Traces)
			return distinct > 0, err
		})
		if n := sum(e.dlqRecords(ctx)); n != 0 {
			t.Fatalf("%d DLQ records before the hang, with ClickHouse healthy", n)
		}
		if err := e.ch.Pause(); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				if err := e.ch.Resume(); err != nil {
					t.Errorf("SIGCONT: %v", err)
				}
			}
		}
		defer resume()

		// Every signal's group fails over on its own: wait for all three topics,
		// noting when each got its first record.
		firstRecord := map[string]time.Duration{}
		waitCtx, cancel := context.WithTimeout(ctx, pauseWindow)
		defer cancel()
		err := stack.WaitFor(waitCtx, 100*time.Millisecond, func() (bool, error) {
			for _, topic := range stack.DLQTopics {
				if _, seen := firstRecord[topic]; seen {
					continue
				}
				n, err := e.kafka.EndOffsets(waitCtx, topic)
				if err != nil {
					return false, err
				}
				if n > 0 {
					firstRecord[topic] = time.Since(paused)
				}
			}
			return len(firstRecord) == len(stack.DLQTopics), nil
		})
		stillPaused, perr := e.ch.Paused()
		if perr != nil {
			t.Fatal(perr)
		}
		if !stillPaused {
			t.Fatal("devclickhouse is no longer stopped: the test did not measure a hang")
		}
		if err != nil {
			t.Fatalf("ClickHouse hung for %v (attempt_timeout %v): DLQ topics with data: %v: %v",
				pauseWindow, attemptTimeout, firstRecord, err)
		}
		var slowest time.Duration
		for _, topic := range stack.DLQTopics {
			slowest = max(slowest, firstRecord[topic])
		}
		t.Logf("ClickHouse hung: first DLQ record after %v (traces), %v (metrics), %v (logs); attempt_timeout %v, pause window %v",
			firstRecord["otlp_spans_dlq"].Round(time.Millisecond), firstRecord["otlp_metrics_dlq"].Round(time.Millisecond),
			firstRecord["otlp_logs_dlq"].Round(time.Millisecond), attemptTimeout, pauseWindow)
		t.Logf("attempts on %s that failed while it hung (all signals): %v", liveMember,
			e.metric("otelcol_failover_group_attempts", "member="+liveMember, "outcome=transient_error"))
		// A hang is an outage, never bad data, over either protocol.
		reasons, err := e.dlqReasons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: DLQ records parked during the hang by reason: %v", protocol, reasons)
		requireTransientReasons(t, reasons)
		resume()
		t.Logf("ClickHouse resumed after %v paused", time.Since(paused).Round(time.Millisecond))

		r := <-done
		if r.Accepted.Load() != int64(batches*3) || r.Rejected.Load() != 0 {
			t.Fatalf("OTLP client: %d batches accepted, %d rejected (first error %v); with Kafka up nothing should be refused",
				r.Accepted.Load(), r.Rejected.Load(), r.FirstError)
		}
		e.requireAllOf(e.run, batches*size, 90*time.Second)
		drained := e.waitDrained(60 * time.Second)
		// Inserts that were in flight when ClickHouse stopped are committed
		// after SIGCONT, though the group gave up on them and parked their
		// batches: the replay carries the same tokens, and ClickHouse drops it.
		dups, err := e.allOf(e.run, batches*size, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("parked and replayed: %v; duplicate rows: %d (%v)", drained, sum(dups), fmt.Sprint(dups))
		requireNoDuplicates(t, dups)
	})
}
