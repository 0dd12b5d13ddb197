// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

const (
	dlqTopic    = "otlp_spans_dlq"
	replayGroup = "otelcol-failover-replay-traces"
	steadyBatch = 20 // spans per request of the steady loads
	// steadyConnections bounds the steady loads' requests in flight: the
	// ingest group answers a request when its batch (up to flush_timeout)
	// is written, so a fixed rate needs many clients at once.
	steadyConnections = 32
	stateClosed       = 0
	stateOpen         = 2
	statePollPeriod   = 50 * time.Millisecond
)

var stateNames = map[int]string{0: "closed", 1: "half-open", 2: "open", 3: "unavailable"}

// transition is a member state change seen by polling the collector.
type transition struct {
	at       time.Time
	member   string
	from, to int
}

// stateRecorder polls members' state gauges and keeps every change.
type stateRecorder struct {
	col     *stack.Collector
	members []string
	mu      sync.Mutex
	changes []transition
	last    map[string]int
	done    chan struct{}
	wg      sync.WaitGroup
}

func recordStates(col *stack.Collector, members ...string) *stateRecorder {
	r := &stateRecorder{col: col, members: members, last: map[string]int{}, done: make(chan struct{})}
	for _, m := range members {
		r.last[m] = -1
	}
	r.wg.Go(func() {
		t := time.NewTicker(statePollPeriod)
		defer t.Stop()
		for {
			for _, m := range members {
				st, err := memberState(col, m)
				if err != nil {
					continue
				}
				now := time.Now()
				r.mu.Lock()
				if prev := r.last[m]; prev != st {
					if prev >= 0 {
						r.changes = append(r.changes, transition{now, m, prev, st})
					}
					r.last[m] = st
				}
				r.mu.Unlock()
			}
			select {
			case <-r.done:
				return
			case <-t.C:
			}
		}
	})
	return r
}

func (r *stateRecorder) stop() []transition {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transition(nil), r.changes...)
}

// steadyLoad sends rate spans/s to col for d in the background.
func (b *bench) steadyLoad(col *stack.Collector, run string, rate float64, d time.Duration) <-chan *loadgen.Result {
	done := make(chan *loadgen.Result, 1)
	go func() { done <- b.load(b.ctx, col, run, steadyBatch, steadyConnections, rate, d) }()
	return done
}

// failover measures, on the reference configuration under steady load, the
// time from ClickHouse stopping to the first batch in the Kafka DLQ, and from
// ClickHouse starting again to the group being back on clickhouse/live; then
// that the replay brought everything into ClickHouse.
func (b *bench) failover() (*section, error) {
	began, loadBefore := time.Now(), uptime()
	o := b.opts
	s, err := b.newSite("failover", true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	name := b.runName("failover")
	col, err := b.collector(s, groupBatch, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = col.Stop(60 * time.Second) }()

	const warm, after = 10 * time.Second, 20 * time.Second
	loadDone := b.steadyLoad(col, name, o.outageRate, warm+o.failoverOutage+after)
	if serr := stack.Sleep(b.ctx, warm); serr != nil {
		return nil, serr
	}
	rec := recordStates(col, groupLive, "kafka/dlq", "clickhouse/replay")
	defer rec.stop()
	if _, warmed, cerr := s.counts(b.ctx, name); cerr != nil || warmed == 0 {
		return nil, fmt.Errorf("nothing reached ClickHouse during the warm-up (%d ids, %w)", warmed, cerr)
	}
	dlq0, err := s.endOffsets(b.ctx)
	if err != nil {
		return nil, err
	}

	t0 := time.Now()
	if serr := s.ch.Stop(30 * time.Second); serr != nil {
		return nil, serr
	}
	tExited := time.Now()
	var tFirst time.Time
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	err = stack.WaitFor(ctx, 10*time.Millisecond, func() (bool, error) {
		n, werr := s.endOffsets(ctx)
		tFirst = time.Now()
		return werr == nil && n > dlq0, werr
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("no batch reached the DLQ within a minute of ClickHouse stopping: %w", err)
	}
	logf("failover: first batch in the DLQ %v after ClickHouse was told to stop (it exited after %v)", tFirst.Sub(t0).Round(time.Millisecond), tExited.Sub(t0).Round(time.Millisecond))
	if serr := stack.Sleep(b.ctx, time.Until(t0.Add(o.failoverOutage))); serr != nil {
		return nil, serr
	}
	stateAtStart, _ := memberState(col, groupLive)
	t1 := time.Now()
	if _, err = s.ch.Start(60 * time.Second); err != nil {
		return nil, err
	}
	tReady := time.Now()
	// Failback: from ClickHouse answering (its ready line) to the first
	// rise of each group's delivered items for its ClickHouse member.
	liveBack := firstDelivery(b.ctx, col, "failover_group/ingest", groupLive)
	replayBack := firstDelivery(b.ctx, col, "failover_group/replay", "clickhouse/replay")
	var tBack time.Time
	ctx, cancel = context.WithTimeout(b.ctx, 3*time.Minute)
	err = stack.WaitFor(ctx, statePollPeriod, func() (bool, error) {
		st, werr := memberState(col, groupLive)
		tBack = time.Now()
		return werr == nil && st == stateClosed, werr
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("the group did not return to %s within 3 minutes of ClickHouse starting: %w", groupLive, err)
	}
	logf("failover: back on %s %v after ClickHouse was started (ready after %v)", groupLive, tBack.Sub(t1).Round(time.Millisecond), tReady.Sub(t1).Round(time.Millisecond))
	tLiveBack, tReplayBack := <-liveBack, <-replayBack
	logf("failover: first live insert %v, first replayed insert %v after ClickHouse answered", since(tLiveBack, tReady), since(tReplayBack, tReady))

	// The replay: the DLQ consumer commits what the replay pipeline wrote.
	var dlqEnd, committed int64
	var tDrained time.Time
	ctx, cancel = context.WithTimeout(b.ctx, 5*time.Minute)
	err = stack.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		var werr error
		if dlqEnd, werr = s.endOffsets(ctx); werr != nil {
			return false, werr
		}
		committed, werr = s.committed(ctx, replayGroup, dlqTopic)
		tDrained = time.Now()
		return werr == nil && committed >= dlqEnd, werr
	})
	cancel()
	drained := err == nil
	if !drained {
		logf("failover: the replay consumer committed %d of %d DLQ records within 5 minutes", committed, dlqEnd)
	}

	res := <-loadDone
	accepted := res.TotalItems()
	var rows, distinct int64
	ctx, cancel = context.WithTimeout(b.ctx, 5*time.Minute)
	err = stack.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		var werr error
		rows, distinct, werr = s.counts(ctx, name)
		return werr == nil && distinct >= accepted, werr
	})
	cancel()
	allIn := err == nil
	tLoadEnd := res.Elapsed
	toDLQ, _ := delivered(col, "kafka/ingest.dlq")
	changes := rec.stop()

	var w strings.Builder
	b.header(&w, began, loadBefore)
	fmt.Fprintf(&w, "Reference configuration; steady load of %s spans/s (requests of %d spans, 2 connections); ClickHouse stopped (SIGTERM; devclickhouse finishes the requests in flight and exits) after %v of load and started again %v later; load for %v more. Kafka end offsets polled every 10 ms, the member state gauge every %v.\n\n",
		f0(o.outageRate), steadyBatch, warm, o.failoverOutage, after, statePollPeriod)
	fmt.Fprintf(&w, "| event | time |\n|---|---|\n")
	fmt.Fprintf(&w, "| ClickHouse told to stop → process exited | %s |\n", secs(tExited.Sub(t0)))
	fmt.Fprintf(&w, "| **ClickHouse told to stop → first batch in the Kafka DLQ** | **%s** |\n", secs(tFirst.Sub(t0)))
	fmt.Fprintf(&w, "| ClickHouse started → ready (accepting connections) | %s |\n", secs(tReady.Sub(t1)))
	fmt.Fprintf(&w, "| **ClickHouse ready → first batch written by `failover_group/ingest` into `%s`** | **%s** |\n", groupLive, since(tLiveBack, tReady))
	fmt.Fprintf(&w, "| **ClickHouse ready → first parked batch replayed by `failover_group/replay`** | **%s** |\n", since(tReplayBack, tReady))
	fmt.Fprintf(&w, "| ClickHouse started → `%s` state back to 0 (closed) | %s |\n", groupLive, secs(tBack.Sub(t1)))
	if drained {
		fmt.Fprintf(&w, "| ClickHouse started → every DLQ record replayed and committed | %s |\n", secs(tDrained.Sub(t1)))
	} else {
		fmt.Fprintf(&w, "| ClickHouse started → every DLQ record replayed and committed | not within 5 min (%d of %d) |\n", committed, dlqEnd)
	}
	fmt.Fprintf(&w, "\nAfter the load ended (%v after it began): spans accepted by the collector %s; distinct ids in ClickHouse %s (**lost: %s**, duplicate rows: %s); spans parked in the DLQ: %s in %s records (replay committed %s).\n",
		tLoadEnd.Round(time.Second), thousands(accepted), thousands(distinct), thousands(accepted-distinct), thousands(rows-distinct), thousands(toDLQ), thousands(dlqEnd-dlq0), thousands(committed))
	if res.Rejected.Load() > 0 {
		fmt.Fprintf(&w, "The client saw %d requests rejected after retrying (first error: %v).\n", res.Rejected.Load(), res.FirstError)
	}
	fmt.Fprintf(&w, "\nMember state changes of the traces pipelines' groups, polled every %v from just before the stop (t from ClickHouse told to stop; 0 closed, 1 half-open, 2 open, 3 unavailable; a probe that fails within one poll is not seen):\n\n| t | member | from → to |\n|---|---|---|\n", statePollPeriod)
	for _, c := range changes {
		fmt.Fprintf(&w, "| %+.2f s | %s | %d %s → %d %s |\n", c.at.Sub(t0).Seconds(), c.member, c.from, stateNames[c.from], c.to, stateNames[c.to])
	}
	fmt.Fprintf(&w, "\nClickHouse was started at %+.2f s, with `%s` in state %d (%s).\n", t1.Sub(t0).Seconds(), groupLive, stateAtStart, stateNames[stateAtStart])
	breakerDesc, breakerMax := breakerSettings(b.root)
	fmt.Fprintf(&w, `
Interpretation: failing over costs no detection time of its own: a batch that finds the port closed fails in under a millisecond and goes to Kafka at once, so the first DLQ record follows the first request after the stop (the reference configuration has no batch processor: every request reaches the group as it arrives). The way back is set by the background probes, not by the breaker's open period (%s, up to %s): while `+"`clickhouse/live`"+` and `+"`clickhouse/replay`"+` take no data, each group pings ClickHouse every `+"`probe::interval`"+` (1 s), and the first successful ping half-opens the breaker, so the next batch (live) or the DLQ consumer's next retry (replay, `+"`error_backoff`"+` at most ~0.6 s) goes to ClickHouse and closes it. The failback time is the time to the next ping plus one batch, whatever the outage's length; the open period now only bounds how often a batch is risked on a ClickHouse that answers pings but fails inserts.
`, breakerDesc, breakerMax)
	verdictCell := verdict(allIn && accepted == distinct)
	rowsOut := []string{
		fmt.Sprintf("| failover | stop → first DLQ batch; ClickHouse ready → primary takes data; → replay resumes | failback ≤ 2 s | %s; %s; %s (outage %v) | %s |",
			secs(tFirst.Sub(t0)), since(tLiveBack, tReady), since(tReplayBack, tReady), o.failoverOutage, verdict(within(tLiveBack, tReady, 2*time.Second) && within(tReplayBack, tReady, 2*time.Second))),
		fmt.Sprintf("| failover | nothing lost across the outage | 0 lost | %s of %s lost, %s duplicate rows | %s |", thousands(accepted-distinct), thousands(accepted), thousands(rows-distinct), verdictCell),
	}
	return &section{name: "failover", body: w.String(), rows: rowsOut}, nil
}

// firstDelivery reports, in the background, when the group's member first
// took data after the call (zero time if not within 3 minutes).
func firstDelivery(ctx context.Context, col *stack.Collector, group, member string) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		at, _ := col.WaitIncrease(waitCtx, 10*time.Millisecond, "otelcol_failover_group_delivered_items", "group="+group, "member="+member)
		out <- at
	}()
	return out
}

// since formats at-from, or "not seen".
func since(at, from time.Time) string {
	if at.IsZero() {
		return "not seen"
	}
	return secs(at.Sub(from))
}

func within(at, from time.Time, d time.Duration) bool { return !at.IsZero() && at.Sub(from) <= d }
