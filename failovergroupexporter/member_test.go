// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
)

const startFailsGroup = `
members:
  - testmember/primary:
  - testmember/dlq:
attempt_timeout: 200ms
member_start: {timeout: 300ms, initial_interval: 10ms, max_interval: 40ms}
`

// A member whose Start fails neither fails nor delays the group's start:
// it is unavailable (its data goes to the next member), and it is
// re-created and started again in the background with backoff, with a clear
// log line; once started it takes data again.
func TestMemberStartFailsThenRecovers(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		members := &testMembers{}
		primary := members.get("primary")
		primary.failStart(errStartDown)
		h := newHarnessNoStart(t, sig, startFailsGroup, withMembers(members))
		h.start() // does not fail although the member's Start does
		h.waitMemberReady(1)

		require.NoError(t, h.send("while-down"))
		assert.Equal(t, []string{"while-down"}, h.member("dlq").receivedIDs())
		assert.Zero(t, primary.numCalls())

		// Restarted in the background: each failed instance is shut down
		// once and replaced by a new one (Start twice on one exporter leaks).
		require.Eventually(t, func() bool { return len(primary.instanceList()) >= 3 }, waitFor, time.Millisecond)
		for _, in := range primary.instanceList()[:2] {
			assert.EqualValues(t, 1, in.starts.Load(), "each instance is started once")
			assert.EqualValues(t, 1, in.shutdowns.Load(), "a failed instance is shut down once")
		}
		warns := h.logLines(zapcore.WarnLevel, "Member could not start")
		require.NotEmpty(t, warns)
		fields := warns[0].ContextMap()
		assert.Equal(t, "testmember/primary", fields["member"])
		assert.Contains(t, fields["error"], "create database")
		assert.Contains(t, warns[0].Message, "Retrying in the background")
		assert.EqualValues(t, 1, h.sum("failover_group_skipped", memberAttr("testmember/primary"), reasonAttr("unavailable")))
		assert.EqualValues(t, stateUnavailable, h.sum("failover_group_member_state", memberAttr("testmember/primary")))

		// It starts: data goes to it again.
		primary.okStart()
		h.waitReady()
		require.NoError(t, h.send("after"))
		assert.Equal(t, []string{"after"}, primary.receivedIDs())
		assert.Len(t, h.logLines(zapcore.InfoLevel, "Member started after earlier failures"), 1)
		assert.EqualValues(t, stateClosed, h.sum("failover_group_member_state", memberAttr("testmember/primary")))

		// 13. Shutdown stops every instance once, failed ones included.
		require.NoError(t, h.exp.Shutdown(t.Context()))
		for _, in := range primary.instanceList() {
			assert.EqualValues(t, 1, in.shutdowns.Load())
		}
		for _, in := range h.member("dlq").instanceList() {
			assert.EqualValues(t, 1, in.starts.Load())
			assert.EqualValues(t, 1, in.shutdowns.Load())
		}
	})
}

// A member whose Start hangs does not delay the group's start; batches
// wait for it at most attempt_timeout, once, then pass it by while it is
// retried in the background.
func TestMemberStartHangs(t *testing.T) {
	t.Run("Start does not wait", func(t *testing.T) {
		members := &testMembers{}
		primary := members.get("primary")
		primary.startIgnoreCtx.Store(true) // blocks until released
		t.Cleanup(primary.releaseStart)
		h := newHarnessNoStart(t, allSignals[0], startFailsGroup, withMembers(members))
		started := make(chan struct{})
		go func() {
			h.start()
			close(started)
		}()
		require.Eventually(t, func() bool {
			select {
			case <-started:
				return true
			default:
				return false
			}
		}, waitFor, time.Millisecond, "the group's Start returns while the member's Start is blocked")
		require.Eventually(t, func() bool { return primary.starts() == 1 }, waitFor, time.Millisecond)
		assert.False(t, membersOf(h.exp)[0].ready())
		primary.releaseStart()
	})
	forEachSignalParallel(t, func(t *testing.T, sig signalCase) {
		members := &testMembers{}
		primary := members.get("primary")
		primary.startHang.Store(true)
		h := newHarness(t, sig, `
members:
  - testmember/primary:
  - testmember/dlq:
attempt_timeout: 2s
member_start: {timeout: 4s, initial_interval: 10ms, max_interval: 40ms}
`, withMembers(members))
		startGaveUp := func() bool { return len(h.logLines(zapcore.WarnLevel, "Member could not start")) > 0 }

		// The first batch waits for the first start at most attempt_timeout
		// (2s), not until the start is given up (member_start::timeout, 4s).
		require.NoError(t, h.send("first"))
		assert.False(t, startGaveUp(), "the first batch went on before the hung start was given up")
		assert.Equal(t, []string{"first"}, h.member("dlq").receivedIDs())

		// Later batches do not wait again for a start that hangs: a caller
		// deadline shorter than attempt_timeout is not reached.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.NoError(t, h.sendCtx(ctx, "second"), "no second wait of attempt_timeout for a hung start")
		assert.Equal(t, []string{"first", "second"}, h.member("dlq").receivedIDs())

		// The hung start times out (member_start::timeout) and is retried.
		require.Eventually(t, func() bool { return len(primary.instanceList()) >= 2 }, waitFor, time.Millisecond)
		require.True(t, startGaveUp())
		primary.startHang.Store(false)
		h.waitReady()
		require.NoError(t, h.send("third"))
		assert.Equal(t, []string{"third"}, primary.receivedIDs())
	})
}

// Shutdown stops every member once, also members whose start is still
// being retried, or whose Start ignores its context and is still running.
func TestShutdownStopsEveryMemberOnce(t *testing.T) {
	t.Run("while restarting", func(t *testing.T) {
		members := &testMembers{}
		members.get("primary").failStart(errStartDown)
		h := newHarness(t, allSignals[0], startFailsGroup, withMembers(members))
		require.Eventually(t, func() bool { return len(members.get("primary").instanceList()) >= 2 }, waitFor, time.Millisecond)
		require.NoError(t, h.exp.Shutdown(t.Context()))
		n := len(members.get("primary").instanceList())
		for _, in := range members.get("primary").instanceList() {
			assert.EqualValues(t, 1, in.shutdowns.Load())
		}
		// No restart after shutdown (max_interval is 40ms: a supervisor
		// still running would create more instances).
		assert.Never(t, func() bool { return len(members.get("primary").instanceList()) != n }, 150*time.Millisecond, 5*time.Millisecond)
		// A second Shutdown (the harness cleanup) does not shut down again.
		require.NoError(t, h.exp.Shutdown(t.Context()))
		for _, in := range members.get("primary").instanceList() {
			assert.EqualValues(t, 1, in.shutdowns.Load())
		}
	})
	t.Run("start ignoring its context", func(t *testing.T) {
		members := &testMembers{}
		primary := members.get("primary")
		primary.startIgnoreCtx.Store(true)
		h := newHarness(t, allSignals[0], startFailsGroup, withMembers(members))
		require.Eventually(t, func() bool { return primary.starts() == 1 }, waitFor, time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		// Shutdown returns while the member's Start is still stuck (it is
		// released only afterwards): it is bounded by its own context.
		shutdownDone := make(chan error, 1)
		go func() { shutdownDone <- h.exp.Shutdown(ctx) }()
		select {
		case err := <-shutdownDone:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Fatal("Shutdown waited for a member Start that ignores its context")
		}
		assert.Equal(t, 1, primary.shutdowns(), "the instance whose Start is stuck is shut down anyway, once")
		primary.releaseStart()
		// The supervisor notices the shutdown and exits without starting
		// anything more (goleak checks the goroutine is gone).
		g := h.exp.(tracesGroup).group
		require.Eventually(t, func() bool {
			select {
			case <-g.members[0].done:
				return true
			default:
				return false
			}
		}, waitFor, time.Millisecond)
		assert.Len(t, primary.instanceList(), 1)
		assert.Equal(t, 1, primary.shutdowns())
	})
	t.Run("never started", func(t *testing.T) {
		forEachSignal(t, func(t *testing.T, sig signalCase) {
			members := &testMembers{}
			h := newHarnessNoStart(t, sig, twoMembers, withMembers(members))
			require.NoError(t, h.exp.Shutdown(t.Context()))
			assert.Equal(t, 0, members.get("primary").starts())
			assert.Equal(t, 1, members.get("primary").shutdowns())
			assert.Equal(t, 1, members.get("dlq").shutdowns())
		})
	})
}
