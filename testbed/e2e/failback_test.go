// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// failbackBound is the generous bound the e2e tests assert; the product's
// goal is 2 s (probe::interval 1s, then the next batch), and the measured
// figures are logged. A bound near the goal would make a loaded CI machine
// fail a test that shows nothing wrong.
const failbackBound = 10 * time.Second

// ClickHouse down 20 s under steady load, then back: from the moment the
// restarted ClickHouse answers, the ingest group writes to clickhouse/live
// again, and the replay group replays the parked data, within about
// probe::interval, not after the breaker's open period (15 s measured
// before background probes). Nothing is lost.
func TestFailbackSoonAfterClickHouseAnswers(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	e.waitReplayConsumers()
	const batches, size = 300, 20 // 10 batches/s per signal: 30 s of load

	done := make(chan struct{})
	var accepted, rejected int64
	go func() {
		defer close(done)
		r := e.load(t.Context(), batches, size, 30)
		accepted, rejected = r.Accepted.Load(), r.Rejected.Load()
	}()

	e.waitUntil("a span in ClickHouse before the outage", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, distinct, err := e.counts(ctx, "traces")
		return distinct > 0, err
	})
	e.stopClickHouse()
	stopped := time.Now()
	for _, member := range []string{liveMember, replayMember} {
		e.waitUntil(member+"'s breaker to open", 30*time.Second, func(context.Context) (bool, error) {
			v, series, err := e.col.MetricSeries("otelcol_failover_group_member_state", "member="+member)
			return series > 0 && v == float64(2*series), err
		})
	}
	if err := stack.Sleep(t.Context(), time.Until(stopped.Add(20*time.Second))); err != nil {
		t.Fatal(err)
	}

	e.startClickHouse() // returns on devclickhouse's ready line: it answers
	answered := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	members := []struct{ group, member string }{{"failover_group/ingest", liveMember}, {"failover_group/replay", replayMember}}
	took := make([]time.Duration, len(members))
	errs := make(chan error, len(members))
	for i, m := range members {
		go func() {
			at, err := e.col.WaitIncrease(ctx, 20*time.Millisecond, "otelcol_failover_group_delivered_items", "group="+m.group, "member="+m.member)
			took[i] = at.Sub(answered) // each goroutine its own element, read after errs
			errs <- err
		}()
	}
	for range members {
		if err := <-errs; err != nil {
			t.Fatalf("waiting for a member to take data again: %v", err)
		}
	}
	failback := map[string]time.Duration{liveMember: took[0], replayMember: took[1]}
	t.Logf("outage %v; first live insert %v and first replayed insert %v after ClickHouse answered (goal: 2s)",
		answered.Sub(stopped).Round(time.Millisecond), failback[liveMember].Round(time.Millisecond), failback[replayMember].Round(time.Millisecond))
	for member, d := range failback {
		if d > failbackBound {
			t.Errorf("%s took data %v after ClickHouse answered; want within %v", member, d, failbackBound)
		}
	}

	drained := e.waitDrained(2 * time.Minute)
	t.Logf("DLQ drained %v after ClickHouse answered: %v", time.Since(answered).Round(time.Millisecond), drained)

	<-done
	if rejected != 0 || accepted != int64(batches*3) {
		t.Fatalf("OTLP client: %d batches accepted, %d rejected; with Kafka up nothing should be refused", accepted, rejected)
	}
	e.requireAllInClickHouse(batches*size, 120*time.Second)
}
