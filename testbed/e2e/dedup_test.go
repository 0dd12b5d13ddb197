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
)

// Exactly once into ClickHouse. Every batch carries a deduplication token
// (the live insert, the DLQ record's header, every replay), and the tables
// the collector creates get non_replicated_deduplication_window, so that
// ClickHouse drops a second copy of an insert it already committed. These
// scenarios used to end with duplicate rows (up to 12,500 after a crash
// mid-replay); they must end with none, and nothing lost.

// requireNoDuplicates fails the test if any signal has duplicate rows.
func requireNoDuplicates(t *testing.T, dups map[loadgen.Signal]int64) {
	t.Helper()
	if n := sum(dups); n != 0 {
		t.Fatalf("%d duplicate rows in ClickHouse (%v): a replayed insert was not deduplicated", n, fmt.Sprint(dups))
	}
}

// The tables the collector created honor tokens: the group gave each of
// them the deduplication window when the clickhouse members started.
func requireDedupWindow(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := e.ch.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = 'otel' AND engine = 'MergeTree' ORDER BY name FORMAT TabSeparated")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	tables := 0
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		name, engine, _ := strings.Cut(line, "\t")
		if strings.HasSuffix(name, "_trace_id_ts") {
			continue // filled by a materialized view from otel_traces
		}
		tables++
		if !strings.Contains(engine, "non_replicated_deduplication_window = 10000") {
			missing = append(missing, name)
		}
	}
	if tables < 7 || len(missing) > 0 {
		t.Fatalf("%d tables; without the deduplication window: %v\n%s", tables, missing, out)
	}
}

// The collector is killed (SIGKILL) in the middle of replaying a backlog:
// the records it replayed but had not committed are replayed again after
// the restart, with the same tokens, and ClickHouse drops them.
func TestExactlyOnceAfterKillMidReplay(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	requireDedupWindow(t, e)
	e.stopClickHouse()

	const batches, size = 400, 100
	res := e.loadOpts(t.Context(), loadgen.Options{Batches: batches, BatchSize: size, Workers: clientConnections, Rate: 300, RetryFor: time.Minute})
	requireAccepted(t, res, batches)
	t.Logf("parked: %v", e.dlqRecords(t.Context()))

	e.startClickHouse()
	// Kill once some of the backlog is replayed, none of the signals is
	// complete.
	want := int64(batches * size)
	var at map[loadgen.Signal]int64
	e.waitUntil("a tenth of the backlog replayed", 2*time.Minute, func(ctx context.Context) (bool, error) {
		at = map[loadgen.Signal]int64{}
		for _, s := range loadgen.AllSignals {
			_, distinct, err := e.counts(ctx, s)
			if err != nil {
				return false, err
			}
			at[s] = distinct
		}
		return sum(at) >= int64(len(loadgen.AllSignals))*want/10, nil
	})
	e.col.Kill()
	mid := false
	for _, s := range loadgen.AllSignals {
		mid = mid || at[s] < want
	}
	if !mid {
		t.Fatalf("the replay was over before the kill (%v): the test did not measure a crash mid-replay", at)
	}
	t.Logf("killed with %v of %d ids per signal in ClickHouse", fmt.Sprint(at), want)
	e.startCollector()

	dups := e.requireAllOf(e.run, want, 3*time.Minute)
	t.Logf("after the restart: %v", e.waitDrained(2*time.Minute))
	// What ClickHouse took before the kill in records the replay had not
	// committed was replayed again by the restarted collector (whose
	// counters start at 0), and ClickHouse dropped it: the items replayed
	// after the restart plus those in ClickHouse at the kill exceed what was
	// sent by that much. (Records merge many batches, so committed offsets
	// do not tell the items.)
	replayedAfter := int64(e.metric("otelcol_failover_group_delivered_items", "group=failover_group/replay", "member=clickhouse/replay"))
	again := sum(at) + replayedAfter - int64(len(loadgen.AllSignals))*want
	if again <= 0 {
		t.Fatalf("nothing was replayed twice (%d in ClickHouse at the kill, %d replayed after the restart, %d sent): the test did not measure the case", sum(at), replayedAfter, int64(len(loadgen.AllSignals))*want)
	}
	t.Logf("%d items taken by ClickHouse in records not committed at the kill were replayed again", again)
	requireNoDuplicates(t, dups)
}

// The live member's inserts are committed by ClickHouse but answered after
// attempt_timeout (lateAnswers): the group gives up on each, parks the batch,
// and the replay writes it again with the same token, which ClickHouse
// drops. With tokens off (the control), the same scenario leaves one
// duplicate copy per late commit: the test can tell the difference.
func TestExactlyOnceWhenInsertsCommitAfterTheTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tokens bool
	}{{"tokens", true}, {"control without tokens", false}} {
		t.Run(tc.name, func(t *testing.T) {
			// The double's target is devclickhouse's address, known once the
			// environment has started it, before the collector.
			proxy := newLateAnswers(t, 1500*time.Millisecond)
			opts := envOptions{
				config:          "testbed/e2e/testdata/late-answers.yaml",
				collectorEnv:    []string{"LIVE_CLICKHOUSE_ENDPOINT=" + proxy.srv.URL},
				beforeCollector: func(e *env) { proxy.setTarget(e.ch.Endpoint()) },
			}
			if !tc.tokens {
				opts.collectorArgs = []string{
					"--set=exporters::failover_group/ingest::deduplication::tokens=false",
					"--set=exporters::failover_group/replay::deduplication::tokens=false",
				}
			}
			e := newEnv(t, opts)
			e.waitLiveStarted()

			const batches, size = 40, 50
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			res := e.loadOpts(ctx, loadgen.Options{Batches: batches, BatchSize: size, Rate: 10, RetryFor: time.Minute})
			requireAccepted(t, res, batches)
			dups := e.requireAllOf(e.run, batches*size, 2*time.Minute)
			e.waitDrained(time.Minute)
			// Duplicates, if any, are written by the replay after the live
			// insert: count again once the DLQ is drained.
			final, err := e.allOf(e.run, batches*size, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			late := proxy.lateCommits.Load()
			t.Logf("inserts through the double: %d, committed after their client gave up: %d; duplicate rows %v (at first count %v)",
				proxy.inserts.Load(), late, fmt.Sprint(final), fmt.Sprint(dups))
			if late == 0 {
				t.Fatal("no insert was committed after its client gave up: the test did not measure the case")
			}
			if tc.tokens {
				requireNoDuplicates(t, final)
				return
			}
			if sum(final) == 0 {
				t.Fatalf("%d late commits and no duplicate rows without tokens: the scenario no longer shows what tokens fix", late)
			}
		})
	}
}

// Tables that exist before the collector starts: one without a window gets
// it, logged with its old and new value (no silent change); one with a
// window of its own keeps it.
func TestDedupWindowOnExistingTables(t *testing.T) {
	e := newEnv(t, envOptions{beforeCollector: func(e *env) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for _, stmt := range []string{
			"CREATE DATABASE IF NOT EXISTS otel",
			"CREATE TABLE otel.otel_logs (Timestamp DateTime64(9), Body String) ENGINE = MergeTree ORDER BY Timestamp",
			"CREATE TABLE otel.otel_traces (Timestamp DateTime64(9), TraceId String) ENGINE = MergeTree ORDER BY Timestamp SETTINGS non_replicated_deduplication_window = 500",
		} {
			if _, err := e.ch.Query(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}})
	e.waitLiveStarted()
	e.waitUntil("the logs table's window logged", 30*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(e.collectorLog(), `"table": "otel.otel_logs", "setting": "non_replicated_deduplication_window", "was": 0, "now": 10000`), nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := e.ch.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = 'otel' AND name IN ('otel_logs', 'otel_traces') ORDER BY name FORMAT TabSeparated")
	if err != nil {
		t.Fatal(err)
	}
	logs, traces, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if !strings.Contains(logs, "non_replicated_deduplication_window = 10000") {
		t.Errorf("otel_logs did not get the window: %s", logs)
	}
	if !strings.Contains(traces, "non_replicated_deduplication_window = 500") {
		t.Errorf("otel_traces had a window of its own, which must be kept: %s", traces)
	}
	if strings.Contains(e.collectorLog(), `"table": "otel.otel_traces", "setting"`) {
		t.Error("the group logged a change of otel_traces, which had a window")
	}
}
