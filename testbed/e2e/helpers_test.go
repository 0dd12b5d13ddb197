// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// Helpers shared by the scenarios beyond the first two. The reference
// configuration's constants that the scenarios rely on are named here.

const (
	// attemptTimeout is failover_group's attempt_timeout in the reference
	// configuration (both groups).
	attemptTimeout = 5 * time.Second
	// The members of the reference configuration, as the group's telemetry
	// labels them.
	liveMember   = "clickhouse/live"
	dlqMember    = "kafka/dlq"
	replayMember = "clickhouse/replay"
)

// replayGroups maps each DLQ topic to the consumer group of the reference
// configuration's kafka receiver that replays it.
var replayGroups = map[string]string{
	"otlp_spans_dlq":   "otelcol-failover-replay-traces",
	"otlp_metrics_dlq": "otelcol-failover-replay-metrics",
	"otlp_logs_dlq":    "otelcol-failover-replay-logs",
}

// replayReceivers are the reference configuration's DLQ kafka receivers.
// clientConnections is how many requests the load generator has in flight
// at most: the reference configuration's ingest group batches requests for
// up to its flush_timeout and answers each client when its batch is written,
// so a client population at a fixed rate needs many requests in flight, as
// many SDKs and agents sending at once have.
const clientConnections = 64

var replayReceivers = []string{"kafka/dlq_traces", "kafka/dlq_metrics", "kafka/dlq_logs"}

// loadOpts sends load described by opts to the collector; Endpoint is filled
// in, and Run, Signals and Workers get the harness defaults when unset.
func (e *env) loadOpts(ctx context.Context, opts loadgen.Options) *loadgen.Result {
	opts.Endpoint = e.col.OTLPHTTP
	if opts.Run == "" {
		opts.Run = e.run
	}
	if opts.Signals == nil {
		opts.Signals = loadgen.AllSignals
	}
	if opts.Workers == 0 {
		opts.Workers = clientConnections
	}
	return loadgen.Run(ctx, opts)
}

// countsOf returns (rows, distinct ids) of signal s for run.
func (e *env) countsOf(ctx context.Context, s loadgen.Signal, run string) (int64, int64, error) {
	v, err := e.ch.QueryInts(ctx, loadgen.CountQuery(s, run))
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("unexpected answer %v", v)
	}
	return v[0], v[1], nil
}

// requireAllOf is requireAllInClickHouse for the items of another run name.
// It returns the duplicate rows per signal.
func (e *env) requireAllOf(run string, want int64, timeout time.Duration) map[loadgen.Signal]int64 {
	e.t.Helper()
	return e.requireAllOfSignals(run, want, timeout, loadgen.AllSignals...)
}

// requireAllOfSignals is requireAllOf for some signals only.
func (e *env) requireAllOfSignals(run string, want int64, timeout time.Duration, signals ...loadgen.Signal) map[loadgen.Signal]int64 {
	e.t.Helper()
	dups, err := e.allOf(run, want, timeout, signals...)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range signals {
		e.t.Logf("%s of %s: all %d ids in ClickHouse, %d duplicate rows", s, run, want, dups[s])
	}
	return dups
}

// allOf waits until every one of want ids of each signal (all of them when
// none is given) of run is in ClickHouse and returns the duplicate rows per
// signal, or an error saying how many ids are missing.
func (e *env) allOf(run string, want int64, timeout time.Duration, signals ...loadgen.Signal) (map[loadgen.Signal]int64, error) {
	e.t.Helper()
	if len(signals) == 0 {
		signals = loadgen.AllSignals
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dups := map[loadgen.Signal]int64{}
	for _, s := range signals {
		var rows, distinct int64
		err := stack.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
			var err error
			rows, distinct, err = e.countsOf(ctx, s, run)
			return err == nil && distinct >= want, err
		})
		if err != nil {
			return dups, fmt.Errorf("%s of %s: %d of %d ids in ClickHouse (%d lost) after %v: %w", s, run, distinct, want, want-distinct, timeout, err)
		}
		if distinct != want {
			return dups, fmt.Errorf("%s of %s: %d distinct ids in ClickHouse, sent %d", s, run, distinct, want)
		}
		dups[s] = rows - distinct
	}
	return dups, nil
}

// waitUntil polls cond until it holds; it fails the test after timeout,
// naming what it waited for. It returns how long it took.
func (e *env) waitUntil(what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) time.Duration {
	e.t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := stack.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) { return cond(ctx) }); err != nil {
		e.t.Fatalf("waited %v for %s: %v", timeout, what, err)
	}
	return time.Since(began)
}

// metric reads one of the collector's own metrics (summed over matching
// series); 0 when it is absent.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	v, err := e.col.Metric(name, labels...)
	if err != nil {
		e.t.Fatalf("collector metric %s: %v", name, err)
	}
	return v
}

// collectorLog is everything the collector wrote so far (all its runs).
func (e *env) collectorLog() string {
	e.t.Helper()
	b, err := os.ReadFile(e.col.LogPath)
	if err != nil {
		e.t.Fatalf("collector log: %v", err)
	}
	return string(b)
}

// restartCollector stops the collector (SIGTERM, clean shutdown) and starts
// it again with the same configuration, ports and environment; it fails the
// test unless the collector becomes healthy again.
func (e *env) restartCollector() {
	e.t.Helper()
	e.stopCollector()
	e.startCollector()
}

// offsets is the state of the DLQ topics: end offsets (records ever
// written) and offsets committed by the replay consumer groups, per topic.
type offsets struct {
	end, committed map[string]int64
}

func (o offsets) String() string {
	var b strings.Builder
	for _, topic := range stack.DLQTopics {
		fmt.Fprintf(&b, "%s: %d written, %d committed; ", topic, o.end[topic], o.committed[topic])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (e *env) dlqOffsets(ctx context.Context) (offsets, error) {
	o := offsets{end: map[string]int64{}, committed: map[string]int64{}}
	for _, topic := range stack.DLQTopics {
		n, err := e.kafka.EndOffsets(ctx, topic)
		if err != nil {
			return o, fmt.Errorf("end offsets of %s: %w", topic, err)
		}
		o.end[topic] = n
		c, err := e.kafka.Committed(ctx, replayGroups[topic], topic)
		if err != nil {
			return o, fmt.Errorf("committed offsets of %s: %w", topic, err)
		}
		o.committed[topic] = c
	}
	return o, nil
}

func (e *env) mustDLQOffsets() offsets {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := e.dlqOffsets(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// waitDrained waits until every replay consumer group committed every
// record of its DLQ topic.
func (e *env) waitDrained(timeout time.Duration) offsets {
	e.t.Helper()
	var last offsets
	e.waitUntil("the replay consumers to commit every DLQ record", timeout, func(ctx context.Context) (bool, error) {
		o, err := e.dlqOffsets(ctx)
		if err != nil {
			return false, err
		}
		last = o
		for _, topic := range stack.DLQTopics {
			if o.committed[topic] != o.end[topic] {
				return false, fmt.Errorf("%v", o)
			}
		}
		return true, nil
	})
	return last
}

// warmUp sends one batch of every signal under a run name of its own and
// waits until it is in ClickHouse: the schema exists and the ingest group's
// live member of every signal is started and healthy.
func (e *env) warmUp() {
	e.t.Helper()
	run := e.run + "-warmup"
	r := e.loadOpts(context.Background(), loadgen.Options{Run: run, Batches: 1, BatchSize: 10, RetryFor: time.Minute})
	requireAccepted(e.t, r, 1)
	if _, err := e.allOf(run, 10, 60*time.Second); err != nil {
		e.t.Fatalf("warm-up: %v", err)
	}
}

// waitLiveStarted waits until clickhouse/live, the ingest group's primary,
// has started for every signal and is closed: batches sent before that wait
// for its start for at most attempt_timeout, then go to the DLQ.
func (e *env) waitLiveStarted() {
	e.t.Helper()
	e.waitUntil("clickhouse/live to start for every signal", 60*time.Second, func(context.Context) (bool, error) {
		state, series, err := e.col.MetricSeries("otelcol_failover_group_member_state", "member=clickhouse/live")
		return series == len(loadgen.AllSignals) && state == 0, err
	})
}

// waitReplayConsumers waits until every replay consumer group has joined
// with all partitions of its DLQ topic assigned, so that a scenario's
// timings start with a consumer that is running.
func (e *env) waitReplayConsumers() {
	e.t.Helper()
	for _, topic := range stack.DLQTopics {
		group := replayGroups[topic]
		e.waitUntil("consumer group "+group+" to be assigned "+topic, 30*time.Second, func(ctx context.Context) (bool, error) {
			return e.kafka.GroupAssigned(ctx, group, topic)
		})
	}
}

// sum adds up per-signal figures.
func sum[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// logTail prints the last limit bytes of the file at path, headed by name,
// for a test that failed.
func logTail(t *testing.T, name, path string, limit int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	t.Logf("==== tail of %s ====\n%s", name, b)
}
