// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
)

// ClickHouse up the whole time: everything lands in ClickHouse and the DLQ
// topics stay empty.
func TestHealthyClickHouseNothingParked(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	const batches, size = 20, 100
	res := e.load(t.Context(), batches, size, 0)
	requireAccepted(t, res, batches)
	e.requireAllInClickHouse(batches*size, 60*time.Second)
	for topic, n := range e.dlqRecords(t.Context()) {
		if n != 0 {
			t.Errorf("DLQ topic %s has %d records while ClickHouse was healthy", topic, n)
		}
	}
}

// ClickHouse stopped mid-load and restarted later: nothing is lost, the DLQ
// received data during the outage, the replay drains it after the restart,
// and the ingest group goes back to its primary; over HTTP and over the
// native protocol, every DLQ record with a transient reason.
func TestOutageFailoverAndReplay(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		e := newEnv(t, envOptions{protocol: protocol})
		const batches, size = 60, 50
		ctx := t.Context()

		done := make(chan struct{})
		res := make(chan struct{ accepted, rejected int64 }, 1)
		go func() {
			defer close(done)
			r := e.load(ctx, batches, size, 15) // 15 batches/s over all signals: ~12 s
			res <- struct{ accepted, rejected int64 }{r.Accepted.Load(), r.Rejected.Load()}
		}()

		// Let some data land live, then take ClickHouse away.
		e.waitUntil("a span in ClickHouse before the outage", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, distinct, err := e.counts(ctx, "traces")
			return distinct > 0, err
		})
		e.stopClickHouse()
		outageStart := time.Now()

		// During the outage the group parks batches in the DLQ.
		e.waitUntil("a batch in the DLQ during the outage", 30*time.Second, func(ctx context.Context) (bool, error) {
			n, err := e.kafka.EndOffsets(ctx, "otlp_spans_dlq")
			return n > 0, err
		})
		t.Logf("first batch in the DLQ %v after ClickHouse stopped", time.Since(outageStart).Round(time.Millisecond))
		// Keep the outage long enough for the breaker to open.
		e.waitUntil("clickhouse/live to leave the closed state", 30*time.Second, func(context.Context) (bool, error) {
			v, err := e.col.Metric("otelcol_failover_group_member_state", `member=clickhouse/live`)
			return v > 0, err
		})
		e.startClickHouse()
		<-done
		r := <-res
		if r.rejected != 0 || r.accepted != int64(batches*3) {
			t.Fatalf("OTLP client: %d batches accepted, %d rejected; with Kafka up nothing should be refused", r.accepted, r.rejected)
		}

		e.requireAllInClickHouse(batches*size, 120*time.Second)
		parked := e.dlqRecords(ctx)
		for topic, n := range parked {
			if n == 0 {
				t.Errorf("DLQ topic %s received nothing during the outage", topic)
			}
		}
		t.Logf("parked in the DLQ during the outage: %v", parked)
		reasons, err := e.dlqReasons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: DLQ records by reason: %v", protocol, reasons)
		requireTransientReasons(t, reasons)

		// Back on the primary. The breaker moves only when a batch arrives (it
		// probes with real data, it has no timer), and the load may have ended
		// while it was still open: each poll sends one small batch per signal.
		probes := 0
		e.waitUntil("the ingest group to return to clickhouse/live", 120*time.Second, func(ctx context.Context) (bool, error) {
			probes++
			r := e.loadOpts(ctx, loadgen.Options{Run: e.run + "-probe", Batches: 1, BatchSize: 1, RetryFor: 10 * time.Second})
			if r.Accepted.Load() != int64(len(loadgen.AllSignals)) {
				return false, fmt.Errorf("probe batch refused: %d of %d accepted", r.Accepted.Load(), len(loadgen.AllSignals))
			}
			v, err := e.col.Metric("otelcol_failover_group_member_state", `member=clickhouse/live`)
			return v == 0, err
		})
		t.Logf("back on clickhouse/live after %d probe batches", probes)
	})
}
