// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// parkBatching is twoMembers with dead_letter_batch: records are written by
// size only (linger is longer than any test waits), so what is merged is
// deterministic.
const parkBatching = twoMembers + `
dead_letter_batch:
  linger: 5s
  max_items: 12
`

// openPrimary fails the primary until its breaker opens; those batches were
// tried, so each went to the DLQ member on its own.
func openPrimary(t *testing.T, h *harness) {
	t.Helper()
	h.member("primary").always(fail(errRefused))
	for i := range 3 {
		require.NoError(t, h.send(fmt.Sprintf("tried-%d", i)))
	}
	require.Equal(t, stateOpen, h.breaker(0).state())
	require.Equal(t, 3, h.member("dlq").numCalls(), "batches the primary tried are parked one by one")
}

// sendConcurrently sends n batches of size ids at once and returns their
// errors once all returned.
func sendConcurrently(h *harness, prefix string, n, size int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = h.send(ids(fmt.Sprintf("%s%d", prefix, i), size)...) })
	}
	wg.Wait()
	return errs
}

func TestUntriedBatchesAreMergedIntoOneRecord(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, parkBatching, withClock(), withoutProbes())
		h.waitReady()
		openPrimary(t, h)
		dlq := h.member("dlq")

		for _, err := range sendConcurrently(h, "m", 4, 3) {
			require.NoError(t, err)
		}
		calls := dlq.callList()
		require.Len(t, calls, 4, "the 3 tried batches, then one merged record")
		merged := calls[3]
		var want []string
		for i := range 4 {
			want = append(want, ids(fmt.Sprintf("m%d", i), 3)...)
		}
		got := slices.Clone(merged.ids)
		slices.Sort(got)
		slices.Sort(want)
		assert.Equal(t, want, got, "every caller's items, once, in one record")
		assert.Equal(t, []string{"testmember/primary"}, merged.md[dlqmeta.KeyFailedMember])
		assert.Equal(t, []string{"transient:breaker_open"}, merged.md[dlqmeta.KeyReason])
		assert.Zero(t, h.member("primary").numCalls()-3, "the open primary was not called")
	})
}

// A caller returns only once the merged record is in the member: a record
// still filling (below max_items) holds its callers until linger ends or the
// group shuts down, and Shutdown writes it before stopping the member.
func TestParkedCallersWaitForTheRecordAndShutdownWritesIt(t *testing.T) {
	h := newHarness(t, allSignals[0], parkBatching, withClock(), withoutProbes())
	h.waitReady()
	openPrimary(t, h)
	done := make(chan error, 1)
	go func() { done <- h.send("w1", "w2") }()
	require.Eventually(t, func() bool { return parkPending(h) == 2 }, 30*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the caller returned (%v) before its record was written", err)
	default:
	}
	require.NoError(t, h.exp.Shutdown(t.Context()))
	require.NoError(t, <-done)
	assert.Equal(t, []string{"w1", "w2"}, h.member("dlq").callList()[3].ids)
}

// parkPending is how many items the traces group's DLQ member's record
// being filled holds.
func parkPending(h *harness) int {
	g := groupOf(h.exp)
	p := g.members[1].park
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.items
}

func TestFailedMergedRecordFailsEveryCaller(t *testing.T) {
	h := newHarness(t, allSignals[0], parkBatching, withClock(), withoutProbes())
	h.waitReady()
	openPrimary(t, h)
	h.member("dlq").always(fail(errRefused))
	for _, err := range sendConcurrently(h, "f", 3, 4) {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "members[1] testmember/dlq: transient:connection_refused")
	}
	assert.Equal(t, 4, h.member("dlq").numCalls(), "one call for the merged record")
}

// Batches with client metadata keep it: the kafka member may write it as
// record headers, so they are not merged with others.
func TestBatchesWithClientMetadataAreParkedAlone(t *testing.T) {
	h := newHarness(t, allSignals[0], parkBatching, withClock(), withoutProbes())
	h.waitReady()
	openPrimary(t, h)
	ctx := client.NewContext(t.Context(), client.Info{Metadata: client.NewMetadata(map[string][]string{"tenant": {"a"}})})
	require.NoError(t, h.sendCtx(ctx, "t1"))
	calls := h.member("dlq").callList()
	require.Len(t, calls, 4)
	assert.Equal(t, []string{"t1"}, calls[3].ids)
	assert.Equal(t, []string{"a"}, calls[3].md["tenant"])
}

func TestDeadLetterBatchConfigErrors(t *testing.T) {
	for _, tc := range []struct{ doc, key string }{
		{"dead_letter_batch: {linger: -1s}", "dead_letter_batch: linger: must not be negative"},
		{"dead_letter_batch: {linger: 6s}", "dead_letter_batch: linger: 6s: must not be longer than 5s"},
		{"dead_letter_batch: {linger: 1s, max_items: 0}", "dead_letter_batch: max_items: must be at least 1"},
	} {
		reg := &testMembers{}
		_, err := decodeConfig(t, newFactory(time.Now, reg.factory(testMemberType)), twoMembers+tc.doc+"\n")
		require.Error(t, err, tc.doc)
		assert.Contains(t, err.Error(), tc.key)
	}
}

// When the member before the dead-letter one answers again (a probe found
// it: half-open), the record being filled is written at once: its callers
// do not wait out linger after the outage is over.
func TestRecordBeingFilledIsWrittenWhenThePrimaryAnswersAgain(t *testing.T) {
	h := newHarness(t, allSignals[0], parkBatching, withClock(), withoutProbes())
	h.waitReady()
	openPrimary(t, h)
	h.member("primary").always(succeed())
	done := make(chan error, 1)
	parked := time.Now()
	go func() { done <- h.send("r1", "r2") }()
	require.Eventually(t, func() bool { return parkPending(h) == 2 }, 30*time.Second, time.Millisecond)

	h.breaker(0).probeSucceeded()
	require.Equal(t, stateHalfOpen, h.breaker(0).state())
	require.NoError(t, <-done)
	// linger (5s) would also have written it: the record must have gone
	// before, because the breaker left open.
	assert.Less(t, time.Since(parked), 5*time.Second, "the record waited for linger")
	assert.Equal(t, []string{"r1", "r2"}, h.member("dlq").callList()[3].ids)
	assert.Zero(t, parkPending(h))
}
