// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Pitfall 6, data ownership: a member that declares MutatesData and changes
// the batch before failing must not hand its changes to the next member,
// which gets the batch as it was. Run under -race: the mutation and the next
// member's reads must not touch the same memory.
func TestMutatingMemberDoesNotLeakChanges(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/mutator: {mutates: true}
  - testmember/dlq:
`)
		h.member("mutator").always(mutateAndFail(errRefused))
		require.NoError(t, h.send("a", "b", "c"))
		assert.Equal(t, []string{"a", "b", "c"}, h.member("dlq").receivedIDs(), "the original data, not the mutated copy")

		// Partial success from a mutating member: the failed part is
		// the member's own; the next member gets it unchanged.
		h.member("mutator").always(result{mutate: true, failIDs: []string{"b"}})
		require.NoError(t, h.send("a", "b", "c"))
		assert.Equal(t, []string{"a", "b", "c", "b"}, h.member("dlq").receivedIDs())

		// A member that keeps a reference and changes the batch after it
		// returned, while the next member reads it: the race detector
		// would report it if both had the same batch.
		h.member("mutator").always(result{mutateLater: true, err: errRefused})
		for range 20 {
			require.NoError(t, h.send("d", "e"))
		}
		h.member("mutator").background.Wait()
		ids := h.member("dlq").receivedIDs()
		for _, id := range ids[len(ids)-40:] {
			assert.NotContains(t, id, "mutated")
		}
	})
}

// The group declares MutatesData when any member does, so that the pipeline
// hands it a batch no other consumer shares; otherwise it does not, and the
// pipeline need not copy for it.
func TestGroupCapabilities(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		plain := newHarness(t, sig, twoMembers)
		assert.False(t, capabilitiesOf(plain.exp).MutatesData)
		mut := newHarness(t, sig, "members: [{testmember/a: {}}, {testmember/b: {mutates: true}}]")
		assert.True(t, capabilitiesOf(mut.exp).MutatesData)
	})
}

func capabilitiesOf(c component.Component) consumer.Capabilities {
	return c.(interface{ Capabilities() consumer.Capabilities }).Capabilities()
}

// The happy path does not copy: a non-mutating primary gets the caller's
// batch itself; a mutating member gets a copy only when a member comes after
// it; the last member always gets the batch itself.
func TestNoCopyOnHappyPath(t *testing.T) {
	t.Run("traces", func(t *testing.T) {
		h := newHarness(t, allSignals[0], "members: [{testmember/a: {}}, {testmember/b: {}}]")
		td := makeTraces("x")
		require.NoError(t, h.exp.(tracesGroup).ConsumeTraces(t.Context(), td))
		assert.True(t, identical(h.member("a").callList()[0].data.(ptrace.Traces), td), "same batch, no copy")
		h.member("a").always(fail(errRefused))
		require.NoError(t, h.exp.(tracesGroup).ConsumeTraces(t.Context(), td))
		assert.True(t, identical(h.member("b").callList()[0].data.(ptrace.Traces), td), "failover without a mutating member: no copy")
	})
	t.Run("metrics", func(t *testing.T) {
		h := newHarness(t, allSignals[1], "members: [{testmember/a: {mutates: true}}, {testmember/b: {}}]")
		md := makeMetrics("x")
		require.NoError(t, h.exp.(metricsGroup).ConsumeMetrics(t.Context(), md))
		assert.False(t, identical(h.member("a").callList()[0].data.(pmetric.Metrics), md), "a mutating member with a next member gets a copy")
	})
	t.Run("logs", func(t *testing.T) {
		h := newHarness(t, allSignals[2], "members: [{testmember/a: {}}, {testmember/b: {mutates: true}}]")
		h.member("a").always(fail(errRefused))
		ld := makeLogs("x")
		require.NoError(t, h.exp.(logsGroup).ConsumeLogs(t.Context(), ld))
		assert.True(t, identical(h.member("b").callList()[0].data.(plog.Logs), ld), "the last member gets the batch itself")
	})
}

// skipAllocsUnderRace skips an allocation count under the race detector,
// where sync.Pool drops a quarter of what is put back on purpose (the
// group's token slots are pooled). `make test` and `make test-unit` run
// these tests again without it (TestHealthyPath*).
func skipAllocsUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counting is not meaningful under the race detector; run without -race")
	}
}

// The group adds at most one allocation per batch on the healthy path: the
// same member exporter alone and as a healthy primary, counted with
// testing.AllocsPerRun.
func TestHealthyPathAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counting")
	}
	skipAllocsUnderRace(t)
	ctx := t.Context()
	members := &protoMembers{}
	f := NewFactoryWithMembers(members.factory())
	cfg, err := decodeConfig(t, f, "members: [{protomember/primary: {}}, {protomember/secondary: {}}]")
	require.NoError(t, err)

	set := exportertest.NewNopSettings(f.Type())
	group, err := f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, group.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, group.Shutdown(ctx)) }()
	mf := members.factory()
	mset := exportertest.NewNopSettings(protoMemberType)
	direct, err := mf.CreateTraces(ctx, mset, cfg.Members[0].Config())
	require.NoError(t, err)
	require.NoError(t, direct.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, direct.Shutdown(ctx)) }()

	// Measure only once both members' supervisors have finished: their
	// start-up work would be counted too (AllocsPerRun counts the process).
	require.Eventually(t, func() bool {
		for _, m := range membersOf(group) {
			if !m.ready() || !m.settled() {
				return false
			}
		}
		return true
	}, waitFor, time.Millisecond)
	td := benchTraces()
	require.NoError(t, group.ConsumeTraces(ctx, td))
	d := testing.AllocsPerRun(200, func() { _ = direct.ConsumeTraces(ctx, td) })
	g := testing.AllocsPerRun(200, func() { _ = group.ConsumeTraces(ctx, td) })
	t.Logf("allocs per batch: direct %.0f, group %.0f", d, g)
	// The group may add at most one allocation per batch to its member's
	// own (one today, with deduplication tokens: the call's token context).
	const tolerance = 1
	assert.LessOrEqual(t, g, d+tolerance, "the group adds at most %d allocation per batch", tolerance)
}

// A caller deadline that leaves each member about attempt_timeout (an OTLP
// SDK's 10 s over two 5 s attempts, a little spent on arrival) adds no
// deadline of the group's, and so no allocation, on the healthy path.
func TestHealthyPathWithACallerDeadline(t *testing.T) {
	skipAllocsUnderRace(t)
	members := &protoMembers{}
	f := NewFactoryWithMembers(members.factory())
	cfg, err := decodeConfig(t, f, "members: [{protomember/primary: {}}, {protomember/secondary: {}}]\nattempt_timeout: 5s")
	require.NoError(t, err)
	group, err := f.CreateTraces(t.Context(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, group.Start(t.Context(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, group.Shutdown(t.Context())) }()
	require.Eventually(t, func() bool {
		for _, m := range membersOf(group) {
			if !m.ready() || !m.settled() {
				return false
			}
		}
		return true
	}, waitFor, time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	td := benchTraces()
	require.NoError(t, group.ConsumeTraces(ctx, td))
	without := testing.AllocsPerRun(100, func() { _ = group.ConsumeTraces(t.Context(), td) })
	with := testing.AllocsPerRun(100, func() { _ = group.ConsumeTraces(ctx, td) })
	assert.LessOrEqual(t, with, without, "no deadline of the group's per batch")
}
