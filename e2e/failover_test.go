package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/internal/stack"
)

// ClickHouse up the whole time: everything lands in ClickHouse and the DLQ
// topics stay empty.
func TestHealthyClickHouseNothingParked(t *testing.T) {
	e := newEnv(t, envOptions{})
	const batches, size = 20, 100
	res := e.load(context.Background(), batches, size, 0)
	requireAccepted(t, res, batches)
	e.requireAllInClickHouse(batches*size, 60*time.Second)
	for topic, n := range e.dlqRecords(context.Background()) {
		if n != 0 {
			t.Errorf("DLQ topic %s has %d records while ClickHouse was healthy", topic, n)
		}
	}
}

// ClickHouse stopped mid-load and restarted later: nothing is lost, the DLQ
// received data during the outage, the replay drains it after the restart,
// and the ingest group goes back to its primary.
func TestOutageFailoverAndReplay(t *testing.T) {
	e := newEnv(t, envOptions{})
	const batches, size = 60, 50
	ctx := context.Background()

	done := make(chan struct{})
	var res = make(chan struct{ accepted, rejected int64 }, 1)
	go func() {
		defer close(done)
		r := e.load(ctx, batches, size, 15) // 15 batches/s over all signals: ~12 s
		res <- struct{ accepted, rejected int64 }{r.Accepted.Load(), r.Rejected.Load()}
	}()

	// Let some data land live, then take ClickHouse away.
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := stack.WaitFor(waitCtx, 200*time.Millisecond, func() (bool, error) {
		_, distinct, err := e.counts(waitCtx, "traces")
		return distinct > 0, err
	}); err != nil {
		t.Fatalf("no span reached ClickHouse before the outage: %v", err)
	}
	e.stopClickHouse()
	outageStart := time.Now()

	// During the outage the group parks batches in the DLQ.
	if err := stack.WaitFor(waitCtx, 200*time.Millisecond, func() (bool, error) {
		n, err := e.kafka.EndOffsets(waitCtx, "otlp_spans_dlq")
		return n > 0, err
	}); err != nil {
		t.Fatalf("nothing reached the DLQ during the ClickHouse outage: %v", err)
	}
	t.Logf("first batch in the DLQ %v after ClickHouse stopped", time.Since(outageStart).Round(time.Millisecond))
	// Keep the outage long enough for the breaker to open.
	if err := stack.WaitFor(waitCtx, 200*time.Millisecond, func() (bool, error) {
		v, err := e.col.Metric("otelcol_failover_group_member_state", `member=clickhouse/live`)
		return v > 0, err
	}); err != nil {
		t.Fatalf("clickhouse/live never left the closed state during the outage: %v", err)
	}
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

	// Back on the primary: every group's clickhouse members closed again.
	backCtx, cancelBack := context.WithTimeout(ctx, 120*time.Second)
	defer cancelBack()
	if err := stack.WaitFor(backCtx, 500*time.Millisecond, func() (bool, error) {
		v, err := e.col.Metric("otelcol_failover_group_member_state", `member=clickhouse/live`)
		return v == 0, err
	}); err != nil {
		t.Fatalf("the ingest group did not return to clickhouse/live: %v", err)
	}
}
