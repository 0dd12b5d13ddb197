// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// replayPace caps each collector's replay (per signal) so that the drain
// lasts long enough to stop a collector in the middle of it, whatever the
// machine's speed: the replay rate limit of dlq_routing, end to end.
var replayPace = []string{
	"--set=connectors::dlq_routing/traces::replay::max_items_per_second=1000",
	"--set=connectors::dlq_routing/metrics::replay::max_items_per_second=1000",
	"--set=connectors::dlq_routing/logs::replay::max_items_per_second=1000",
}

// Two collectors with the reference configuration share the DLQ consumer
// groups: after an outage both replay (the partitions are split between
// them); one is stopped in the middle of the drain, with SIGTERM, then in a
// second run with SIGKILL, and the other takes its partitions over and
// finishes the drain: nothing lost, and no duplicate (a record the stopped
// collector wrote but did not commit is replayed again with its token).
func TestTwoCollectorsShareTheDrainAndTakeOverAStoppedOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, c *stack.Collector)
	}{
		{"SIGTERM", func(t *testing.T, c *stack.Collector) {
			if err := c.Stop(60 * time.Second); err != nil {
				t.Fatalf("collector b did not stop on SIGTERM: %v", err)
			}
		}},
		{"SIGKILL", func(_ *testing.T, c *stack.Collector) { c.Kill() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{collectorArgs: replayPace})
			b := e.secondCollector(replayPace...)
			e.warmUp()
			e.waitLiveStarted()
			for _, topic := range stack.DLQTopics {
				group := replayGroups[topic]
				e.waitUntil("both collectors to share the partitions of "+topic, 60*time.Second, func(ctx context.Context) (bool, error) {
					n, err := e.kafka.GroupMembers(ctx, group, topic)
					return n == 2, err
				})
			}

			e.stopClickHouse()
			const batches, size = 150, 50
			runs := map[string]*stack.Collector{e.run + "-a": e.col, e.run + "-b": b}
			var wg sync.WaitGroup
			results := map[string]*loadgen.Result{}
			var mu sync.Mutex
			for run, col := range runs {
				wg.Go(func() {
					res := loadgen.Run(t.Context(), loadgen.Options{
						Endpoint: col.OTLPHTTP, Run: run, Signals: loadgen.AllSignals,
						Batches: batches, BatchSize: size, Workers: clientConnections, Rate: 30, RetryFor: time.Minute,
					})
					mu.Lock()
					results[run] = res
					mu.Unlock()
				})
			}
			wg.Wait()
			for run, res := range results {
				if res.Rejected.Load() != 0 || res.Accepted.Load() != int64(batches*len(loadgen.AllSignals)) {
					t.Fatalf("%s: %d batches accepted, %d rejected (first error %v)", run, res.Accepted.Load(), res.Rejected.Load(), res.FirstError)
				}
			}
			parked := e.mustDLQOffsets()
			t.Logf("DLQ after the outage: %v", parked)
			e.startClickHouse()

			// Both replay: each collector's replay group writes into ClickHouse.
			replayed := func(c *stack.Collector) float64 {
				v, err := c.Metric("otelcol_failover_group_delivered_items", "group=failover_group/replay")
				if err != nil {
					t.Fatalf("replay metric: %v", err)
				}
				return v
			}
			e.waitUntil("both collectors to replay", 2*time.Minute, func(context.Context) (bool, error) {
				return replayed(e.col) > 0 && replayed(b) > 0, nil
			})
			mid := e.mustDLQOffsets()
			left := int64(0)
			for _, topic := range stack.DLQTopics {
				left += mid.end[topic] - mid.committed[topic]
			}
			if left == 0 {
				t.Fatalf("the drain was over before collector b was stopped (%v): the test did not measure a stop mid-drain", mid)
			}
			t.Logf("collector b replayed %.0f items, collector a %.0f; %d records left when b is stopped (%s)", replayed(b), replayed(e.col), left, tc.name)
			tc.stop(t, b)

			e.waitDrained(3 * time.Minute)
			for run := range runs {
				dups := e.requireAllOf(run, batches*size, 2*time.Minute)
				requireNoDuplicates(t, dups)
			}
			t.Logf("collector a replayed %.0f items in all", replayed(e.col))
		})
	}
}

// secondCollector starts another collector with the env's configuration,
// ClickHouse and Kafka (its own ports and directory), stopped at cleanup;
// its log is printed if the test fails.
func (e *env) secondCollector(args ...string) *stack.Collector {
	e.t.Helper()
	dir := filepath.Join(e.dir, "collector-b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	c, err := stack.NewCollector(e.root, dir, filepath.Join(e.root, "testdata", "otelcol-failover.yaml"), e.ch, e.kafka)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Args = append(c.Args, args...)
	e.t.Cleanup(func() {
		_ = c.Stop(30 * time.Second)
		if e.t.Failed() {
			logTail(e.t, "collector b's log", c.LogPath, 20000)
		}
	})
	if err := c.StartAndWait(60 * time.Second); err != nil {
		e.t.Fatalf("collector b: %v", err)
	}
	return c
}
