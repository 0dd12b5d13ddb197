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

// ClickHouse down when the collector starts, and the collector restarted
// during the outage: the collector starts anyway (its clickhouse members are
// started in the background), ingest goes to the DLQ, the restarted
// collector starts too and parks more, and once ClickHouse is up the replay
// drains both runs: nothing lost. Over HTTP and over the native protocol.
func TestClickHouseDownAtStartAndCollectorRestartedDuringOutage(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		// newEnv fails unless the collector's health endpoint answers OK.
		e := newEnv(t, envOptions{clickHouseDown: true, protocol: protocol})
		ctx := t.Context()
		const batches, size = 10, 50
		runA, runB := e.run+"-before-restart", e.run+"-after-restart"

		e.waitUntil("both clickhouse members to log a failed start", 30*time.Second, func(context.Context) (bool, error) {
			return startFailed(e.collectorLog(), liveMember) && startFailed(e.collectorLog(), replayMember), nil
		})

		sendAndPark := func(run string, before offsets) offsets {
			t.Helper()
			r := e.loadOpts(ctx, loadgen.Options{Run: run, Batches: batches, BatchSize: size, RetryFor: time.Minute})
			requireAccepted(t, r, batches)
			var parked offsets
			e.waitUntil(run+" parked in every DLQ topic", 30*time.Second, func(ctx context.Context) (bool, error) {
				o, err := e.dlqOffsets(ctx)
				if err != nil {
					return false, err
				}
				parked = o
				for _, topic := range stack.DLQTopics {
					if o.end[topic] <= before.end[topic] {
						return false, fmt.Errorf("%v", o)
					}
				}
				return true, nil
			})
			for _, topic := range stack.DLQTopics {
				if parked.committed[topic] != 0 {
					t.Fatalf("%s: %d records committed while ClickHouse is down: the replay acknowledged data it could not write", topic, parked.committed[topic])
				}
			}
			return parked
		}

		parkedA := sendAndPark(runA, offsets{end: map[string]int64{}})
		t.Logf("before the restart: %v", parkedA)

		e.restartCollector() // fails unless healthy again, ClickHouse still down
		parkedB := sendAndPark(runB, parkedA)
		t.Logf("after the restart: %v", parkedB)
		if e.ch.Running() {
			t.Fatal("ClickHouse is up before the replay was supposed to start")
		}

		e.startClickHouse()
		started := time.Now()
		// The data parked after the restart first: it proves the replay runs.
		dupsB := e.requireAllOf(runB, batches*size, 90*time.Second)
		t.Logf("parked after the restart: replayed %v after ClickHouse started", time.Since(started).Round(time.Millisecond))
		// Then the data parked before it: the restarted collector's replay
		// consumer groups had committed nothing, so they start at their
		// initial_offset, which must be the earliest one.
		dupsA, err := e.allOf(runA, batches*size, 30*time.Second)
		if err != nil {
			t.Fatalf("data parked before the collector restart was not replayed: %v; DLQ: %v. "+
				"The replay consumer groups had committed nothing before the restart, so the restarted kafka receivers "+
				"started at their initial_offset: with `latest` (the kafka receiver's default) they skip every record "+
				"parked before the restart; the replay receivers need `initial_offset: earliest`", err, e.mustDLQOffsets())
		}
		t.Logf("parked before the restart: all %d ids of every signal in ClickHouse", batches*size)
		drained := e.waitDrained(60 * time.Second)
		t.Logf("replay drained %v in %v after ClickHouse started; duplicate rows: %d before, %d after the restart",
			drained, time.Since(started).Round(time.Millisecond), sum(dupsA), sum(dupsB))
	})
}

// startFailed reports whether the collector log has the group's line for a
// failed start of member.
func startFailed(log, member string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "Member could not start") && strings.Contains(line, `"member": "`+member+`"`) {
			return true
		}
	}
	return false
}
