// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// After an outage the DLQ drains in large inserts, whatever the size of the
// clients' requests: the ingest group batches requests (sending_queue with
// batch, wait_for_result) and merges what it parks (dead_letter_batch), so a
// DLQ record carries many requests and its replay is one large insert. The
// rates (live path at saturation, replay) are logged for the reader; the
// assertions are on what makes the replay fast (record and insert sizes)
// and on the data (nothing lost, no duplicate), never on a timing. The
// figures with ratios are in BENCHMARKS.md ("drain"). The memory-bound
// setting the READMEs document, one record per poll (`max_fetch_size: 1`),
// must drain as completely.
func TestDrainReplaysInLargeInserts(t *testing.T) {
	var oneRecordPerPoll []string
	for _, r := range replayReceivers {
		oneRecordPerPoll = append(oneRecordPerPoll, "--set=receivers::"+r+"::max_fetch_size=1")
	}
	for _, tc := range []struct {
		name string
		size int     // items per client request
		rate float64 // requests/s over the three signals during the outage
		args []string
	}{
		{"small requests", 50, 120, nil},
		{"large requests", 1000, 6, nil},
		{"small requests, one record per poll", 50, 120, oneRecordPerPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.args != nil {
				requireReplayFetchSize(t, tc.args, 1)
			}
			e := newEnv(t, envOptions{collectorArgs: tc.args})
			e.warmUp()
			e.waitLiveStarted()
			e.waitReplayConsumers()

			// The live path at saturation, for the log.
			satRun := e.run + "-live"
			// Enough clients at once to fill the ingest group's batches
			// (min_size) while each waits for its batch to be written.
			sat := e.loadOpts(t.Context(), loadgen.Options{Run: satRun, Batches: 30000 / tc.size, BatchSize: tc.size, Workers: 256, RetryFor: time.Minute})
			requireAccepted(t, sat, 30000/tc.size)
			liveRate := float64(sat.TotalItems()) / sat.Elapsed.Seconds()

			e.stopClickHouse()
			batches := int(tc.rate * 12 / 3) // 12 s of outage
			// During the outage a request waits for its batch (flush_timeout)
			// and its DLQ record (dead_letter_batch::linger): enough clients
			// at once keep the rate.
			res := e.loadOpts(t.Context(), loadgen.Options{Batches: batches, BatchSize: tc.size, Rate: tc.rate, Workers: 256, RetryFor: time.Minute})
			requireAccepted(t, res, batches)
			parked := e.mustDLQOffsets()
			items := int64(batches * tc.size)
			e.startClickHouse()
			began := time.Now()
			drained := e.waitDrained(3 * time.Minute)
			drainTime := time.Since(began)

			replayedItems := e.metric("otelcol_failover_group_delivered_items", "group=failover_group/replay", "member=clickhouse/replay")
			inserts := e.metric("otelcol_failover_group_attempts", "group=failover_group/replay", "member=clickhouse/replay", "outcome=success")
			var records int64
			for _, n := range parked.end {
				records += n
			}
			t.Logf("live path %.0f items/s at saturation; %d items per signal parked in %d records (%v), replayed in %v: %.0f items/s in %.0f inserts (%.0f items each): replay/live %.2f",
				liveRate, items, records, drained, drainTime.Round(100*time.Millisecond), replayedItems/drainTime.Seconds(), inserts, replayedItems/inserts, replayedItems/drainTime.Seconds()/liveRate)

			dups := e.requireAllOf(e.run, items, 2*time.Minute)
			requireNoDuplicates(t, dups)
			e.requireAllOf(satRun, int64(30000/tc.size*tc.size), 2*time.Minute)

			// What makes the replay fast: each record holds many requests,
			// each replayed insert at least the 1,000 rows ClickHouse asks for.
			requests := int64(batches * len(loadgen.AllSignals))
			if records*2 > requests && tc.size < 1000 {
				t.Errorf("%d DLQ records for %d requests: records do not merge requests", records, requests)
			}
			if perInsert := replayedItems / inserts; perInsert < 1000 {
				t.Errorf("replayed inserts hold %.0f items on average, want at least 1000", perInsert)
			}
		})
	}
}

// requireReplayFetchSize checks, with the collector's own print-config, that
// args set every replay receiver's max_fetch_size to want: a mistyped key
// would leave the subtest draining with the reference setting, unnoticed.
func requireReplayFetchSize(t *testing.T, args []string, want int) {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmdArgs := append([]string{"print-config", "--config", filepath.Join(root, "testdata", "otelcol-failover.yaml")}, args...)
	// stdout only: the YAML, without whatever the collector logs.
	out, err := exec.CommandContext(ctx, filepath.Join(root, "bin", "otelcol-failover"), cmdArgs...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("print-config: %v\n%s", err, stderr)
	}
	r, err := confmap.NewRetrievedFromYAML(out)
	if err != nil {
		t.Fatalf("print-config output: %v", err)
	}
	conf, err := r.AsConf()
	if err != nil {
		t.Fatal(err)
	}
	for _, rcv := range replayReceivers {
		if got := conf.Get("receivers::" + rcv + "::max_fetch_size"); fmt.Sprint(got) != strconv.Itoa(want) {
			t.Fatalf("%s max_fetch_size = %v after %v, want %d", rcv, got, args, want)
		}
	}
}
