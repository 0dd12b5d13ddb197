// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// stopBoth takes ClickHouse and Kafka away, in that order.
func (e *env) stopBoth() {
	e.t.Helper()
	e.stopClickHouse()
	if err := e.kafka.Stop(20 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// ClickHouse and Kafka both down, reference configuration (no queue on the
// group): no member can take the data, so the OTLP client must get an error
// for every batch (and keep the data, to send it again) instead of an OK for
// data that is then dropped. After both come back, the client's resend lands.
func TestBothDownClientReceivesErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	// Few batches: with Kafka down each attempt on kafka/dlq waits for
	// attempt_timeout before the client gets its error.
	const batches, size = 2, 50
	e.warmUp()
	e.stopBoth()

	began := time.Now()
	r := e.loadOpts(ctx, loadgen.Options{Batches: batches, BatchSize: size, RetryFor: 0})
	t.Logf("both down: %d batches accepted, %d rejected in %v (first error: %v)",
		r.Accepted.Load(), r.Rejected.Load(), time.Since(began).Round(time.Millisecond), r.FirstError)

	if r.Accepted.Load() > 0 {
		// Whatever took the accepted data must have given up before both
		// come back, or a late attempt could still deliver it.
		accepted := r.Items(loadgen.Traces) + r.Items(loadgen.Metrics) + r.Items(loadgen.Logs)
		e.waitUntil("the ingest group to give up on the accepted data", 60*time.Second, func(context.Context) (bool, error) {
			return e.metric("otelcol_failover_group_exhausted_items") >= float64(accepted), nil
		})
	}
	e.startKafka()
	e.startClickHouse()
	if r.Accepted.Load() > 0 {
		// Accepted means "the collector has it": it must arrive.
		lost := e.acceptedButMissing(r, 30*time.Second)
		t.Fatalf("with ClickHouse and Kafka both down the OTLP client got OK for %d of %d batches (%d rejected); "+
			"%d accepted items of %d never reached ClickHouse after both came back: acknowledged and dropped. "+
			"A batch processor in front of failover_group answers the client before the group tried the data, "+
			"and drops what no member accepted (the collector logged \"Sender failed\" %d times)",
			r.Accepted.Load(), batches*3, r.Rejected.Load(), lost, r.Accepted.Load()*size, strings.Count(e.collectorLog(), "Sender failed"))
	}
	if r.Rejected.Load() != batches*3 {
		t.Fatalf("%d of %d batches rejected", r.Rejected.Load(), batches*3)
	}

	// The client sends its rejected batches again, as an OTLP client does.
	r = e.load(ctx, batches, size, 0)
	requireAccepted(t, r, batches)
	e.requireAllInClickHouse(batches*size, 90*time.Second)
}

// acceptedButMissing waits up to timeout for the items of accepted batches
// and returns how many are missing. Only meaningful when every batch was
// accepted (the loadgen does not say which ones were).
func (e *env) acceptedButMissing(r *loadgen.Result, timeout time.Duration) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var missing int64
	for _, s := range loadgen.AllSignals {
		want, distinct := r.Items(s), int64(0)
		_ = stack.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
			_, d, err := e.countsOf(ctx, s, e.run)
			distinct = d
			return err == nil && d >= want, err
		})
		missing += max(0, want-distinct)
	}
	return missing
}

// ClickHouse and Kafka both down for two minutes, with a persistent queue
// on the ingest group: the client's batches are accepted into the queue on
// disk, survive the collector being killed (SIGKILL) and restarted in the
// middle of the outage, are retried all along (never dropped: retry has no
// time limit with a queue), and land once both are back: 0 lost.
func TestBothDownPersistentQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	const outage = 2 * time.Minute
	queueDir := filepath.Join(t.TempDir(), "queue")
	e := newEnv(t, envOptions{
		config:       "testbed/e2e/testdata/persistent-queue.yaml",
		collectorEnv: []string{"QUEUE_DIR=" + queueDir},
	})
	ctx := t.Context()
	const batches, size = 10, 50
	e.warmUp()
	e.stopBoth()
	down := time.Now()

	r := e.loadOpts(ctx, loadgen.Options{Batches: batches, BatchSize: size, RetryFor: 0})
	requireAccepted(t, r, batches)
	queued := func(what string) {
		e.waitUntil("the ingest group's queue to hold the data "+what, 30*time.Second, func(context.Context) (bool, error) {
			return e.metric("otelcol_exporter_queue_size", "exporter=failover_group/ingest") > 0, nil
		})
		t.Logf("queued %s: %v requests in failover_group/ingest's queue; %s", what,
			e.metric("otelcol_exporter_queue_size", "exporter=failover_group/ingest"), dirSize(t, queueDir))
	}
	queued("before the crash")

	// Mid-outage: a crash, and a restart while both are still down.
	_ = stack.Sleep(ctx, time.Until(down.Add(outage/2)))
	e.col.Kill()
	e.startCollector()
	queued("after the crash")
	_ = stack.Sleep(ctx, time.Until(down.Add(outage)))
	if n := strings.Count(e.collectorLog(), "Dropping data"); n > 0 {
		t.Errorf("the collector dropped queued data %d times during the outage", n)
	}

	e.startKafka()
	e.startClickHouse()
	back := time.Now()
	e.requireAllOf(e.run, batches*size, 90*time.Second)
	t.Logf("everything in ClickHouse %v after both came back from a %v outage", time.Since(back).Round(time.Millisecond), outage)
	e.waitUntil("the ingest group's queue to empty", 30*time.Second, func(context.Context) (bool, error) {
		return e.metric("otelcol_exporter_queue_size", "exporter=failover_group/ingest") == 0, nil
	})
	drained := e.waitDrained(60 * time.Second)
	dups := e.requireAllOf(e.run, batches*size, 10*time.Second)
	t.Logf("parked in the DLQ on the way and replayed: %v; duplicate rows: %d", drained, sum(dups))
}

func dirSize(t *testing.T, dir string) string {
	t.Helper()
	var n, files int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
			files++
		}
		return nil
	})
	return fmt.Sprintf("%d bytes in %d file(s) under the queue directory", n, files)
}
