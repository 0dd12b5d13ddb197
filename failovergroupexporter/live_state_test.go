// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/livestate"
)

func registeredLive(g component.Component) bool {
	for _, s := range livestate.Registered() {
		if ls, ok := s.(liveSource[ptrace.Traces]); ok && ls.g == groupOf(g) {
			return true
		}
	}
	return false
}

// A group with a dead-letter member tells the collector's replay side when
// it fails over: while its primary is open, and for a second after the
// primary failed an attempt.
func TestLiveGroupReportsFailingOver(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers, withoutProbes())
	h.waitReady()
	require.True(t, registeredLive(h.exp), "a group with a dead-letter member is a live source from Start")
	src := liveSource[ptrace.Traces]{g: groupOf(h.exp)}
	assert.Equal(t, "failover_group/ingest", src.Name())

	require.NoError(t, h.send("a"))
	assert.False(t, src.FailingOver(time.Now()), "healthy and nothing parked")

	h.member("primary").always(fail(errRefused))
	require.NoError(t, h.send("b")) // parked in the DLQ member
	now := time.Now()
	assert.True(t, src.FailingOver(now), "the primary failed just now")
	assert.False(t, src.FailingOver(now.Add(failedRecently+time.Millisecond)), "one failure in a while, breaker closed: failing over only just after it")

	for range 3 {
		require.NoError(t, h.send("c"))
	}
	require.Equal(t, stateOpen, h.breaker(0).state())
	assert.True(t, src.FailingOver(time.Now().Add(time.Hour)), "an open primary is failing over however long ago it failed")

	require.NoError(t, h.exp.Shutdown(t.Context()))
	assert.False(t, registeredLive(h.exp), "Shutdown ends it")
}

// A group without a dead-letter member (the replay group) is no live
// source: replay must not hold itself back.
func TestGroupWithoutDeadLetterIsNoLiveSource(t *testing.T) {
	h := newHarness(t, allSignals[0], `
members:
  - testmember/only:
attempt_timeout: 2s
`, withoutProbes())
	h.waitReady()
	assert.False(t, registeredLive(h.exp))
}
