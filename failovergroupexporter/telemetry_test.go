// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadatatest"
)

func point(v int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), Value: v}
}

// Telemetry: member state, attempts by member and outcome, skipped,
// failovers, exhausted batches and items, attempt duration.
func TestTelemetryMetrics(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers, withClock())
		h.waitReady()
		// Every point names its group instance: the group and the signal.
		base := groupAttributes("failover_group/ingest", sig.name)
		p, d := memberAttr("testmember/primary"), memberAttr("testmember/dlq")
		dp := func(v int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
			return point(v, append(append([]attribute.KeyValue{}, base...), attrs...)...)
		}
		set := func(attrs ...attribute.KeyValue) attribute.Set {
			return attribute.NewSet(append(append([]attribute.KeyValue{}, base...), attrs...)...)
		}
		ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}

		metadatatest.AssertEqualFailoverGroupMemberState(t, h.tel, []metricdata.DataPoint[int64]{
			dp(int64(stateClosed), p), dp(int64(stateClosed), d),
		}, ignore...)

		h.member("primary").always(fail(errRefused))
		for i := range 5 { // 3 attempts open the breaker, 2 skipped
			require.NoError(t, h.send(fmt.Sprintf("x%d", i), "y"))
		}
		h.member("primary").always(fail(errBadData))
		h.clock.Advance(10 * time.Second)
		require.NoError(t, h.send("bad")) // the probe: permanent, neutral
		h.member("primary").always(partial("p2"))
		require.NoError(t, h.send("p1", "p2")) // second probe in half-open: partial
		h.member("dlq").always(fail(errRefused))
		require.Error(t, h.send("lost1", "lost2", "lost3"))

		metadatatest.AssertEqualFailoverGroupAttempts(t, h.tel, []metricdata.DataPoint[int64]{
			dp(3, p, outcomeAttr("transient_error")),
			dp(1, p, outcomeAttr("permanent_error")),
			dp(1, p, outcomeAttr("partial")),
			dp(7, d, outcomeAttr("success")),
			dp(1, d, outcomeAttr("transient_error")),
		}, ignore...)
		// Skipped while open: x3, x4, and the last batch (reopened by the
		// partial probe's transient part).
		metadatatest.AssertEqualFailoverGroupSkipped(t, h.tel, []metricdata.DataPoint[int64]{
			dp(3, p, reasonAttr("breaker_open")),
		}, ignore...)
		// Failovers from the primary: 3 failed + 3 skipped + 1 permanent + 1
		// partial; the DLQ is last, it has nothing to fail over to.
		metadatatest.AssertEqualFailoverGroupFailovers(t, h.tel, []metricdata.DataPoint[int64]{dp(8, p)}, ignore...)
		metadatatest.AssertEqualFailoverGroupExhaustedBatches(t, h.tel, []metricdata.DataPoint[int64]{dp(1)}, ignore...)
		metadatatest.AssertEqualFailoverGroupExhaustedItems(t, h.tel, []metricdata.DataPoint[int64]{dp(3)}, ignore...)
		metadatatest.AssertEqualFailoverGroupDeliveredItems(t, h.tel, []metricdata.DataPoint[int64]{
			dp(1, p),       // p1 of the partial batch
			dp(5*2+1+1, d), // five 2-item batches, "bad", "p2"
		}, ignore...)
		// Every attempt has a duration, by member and outcome.
		metadatatest.AssertEqualFailoverGroupAttemptDuration(t, h.tel, []metricdata.HistogramDataPoint[float64]{
			{Attributes: set(p, outcomeAttr("transient_error")), Count: 3},
			{Attributes: set(p, outcomeAttr("permanent_error")), Count: 1},
			{Attributes: set(p, outcomeAttr("partial")), Count: 1},
			{Attributes: set(d, outcomeAttr("success")), Count: 7},
			{Attributes: set(d, outcomeAttr("transient_error")), Count: 1},
		}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreValue(), metricdatatest.IgnoreExemplars())
		assert.EqualValues(t, 7, h.histCount(append(append([]attribute.KeyValue{}, base...), d, outcomeAttr("success"))...))

		// The permanent probe left the primary half-open; the partial probe
		// (a transient failed part) reopened it.
		assert.Equal(t, stateOpen, h.breaker(0).state())
		metadatatest.AssertEqualFailoverGroupMemberState(t, h.tel, []metricdata.DataPoint[int64]{
			dp(int64(stateOpen), p), dp(int64(stateClosed), d),
		}, ignore...)
	})
}

// One log line per state change, not per batch.
func TestLogsOncePerStateChange(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers, withClock())
	h.waitReady()
	h.member("primary").always(fail(errRefused))
	for i := range 100 {
		require.NoError(t, h.send(fmt.Sprintf("b%d", i)))
	}
	opened := h.logLines(zapcore.WarnLevel, "Member circuit breaker opened")
	require.Len(t, opened, 1, "100 batches failed over, one line")
	f := opened[0].ContextMap()
	assert.Equal(t, "testmember/primary", f["member"])
	assert.Equal(t, "closed", f["from"])
	assert.Equal(t, "open", f["to"])
	assert.Equal(t, 10*time.Second, f["open_for"])
	// Nothing else at WARN or above for 100 failed-over batches.
	assert.Len(t, h.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zapcore.WarnLevel }).All(), 1)

	h.member("primary").always(succeed())
	h.clock.Advance(10 * time.Second)
	for i := range 50 {
		require.NoError(t, h.send(fmt.Sprintf("c%d", i)))
	}
	assert.Len(t, h.logLines(zapcore.InfoLevel, "Member circuit breaker half-open"), 1)
	assert.Len(t, h.logLines(zapcore.InfoLevel, "Member circuit breaker closed"), 1)
}

func statuses(evs []*componentstatus.Event) []componentstatus.Status {
	out := make([]componentstatus.Status, len(evs))
	for i, e := range evs {
		out[i] = e.Status()
	}
	return out
}

// health is an event's failover_group.health attribute.
func health(ev *componentstatus.Event) string {
	v, _ := ev.Attributes().Get("failover_group.health")
	return v.Str()
}

// Component status: StatusOK while a member can take data, with the
// degradation in the event's error and attributes; StatusRecoverableError
// only when no member can (what a readiness check keys on). Reported on
// change, not per batch.
func TestComponentStatus(t *testing.T) {
	t.Run("breaker", func(t *testing.T) {
		h := newHarness(t, allSignals[0], twoMembers, withClock())
		h.waitReady()
		require.Eventually(t, func() bool { return h.host.last() != nil }, waitFor, time.Millisecond)
		assert.Equal(t, componentstatus.StatusOK, h.host.last().Status())
		assert.Equal(t, "healthy", health(h.host.last()))

		h.member("primary").always(fail(errRefused))
		for i := range 5 {
			require.NoError(t, h.send(fmt.Sprintf("b%d", i)))
		}
		ev := h.host.last()
		require.Equal(t, componentstatus.StatusOK, ev.Status(), "the DLQ takes the data: degraded, still serving")
		assert.Equal(t, "degraded", health(ev))
		assert.ErrorContains(t, ev.Err(), "failover_group/ingest degraded: member testmember/primary circuit breaker is open")
		n := len(h.host.list())
		for i := range 20 {
			require.NoError(t, h.send(fmt.Sprintf("more%d", i)))
		}
		assert.Len(t, h.host.list(), n, "status reported on change, not per batch")

		h.member("dlq").always(fail(errRefused))
		for i := range 3 {
			require.Error(t, h.send(fmt.Sprintf("both%d", i)))
		}
		ev = h.host.last()
		require.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
		assert.Equal(t, "unavailable", health(ev))
		assert.ErrorContains(t, ev.Err(), "failover_group/ingest: no member can take data: member testmember/primary circuit breaker is open; member testmember/dlq circuit breaker is open")

		h.member("primary").always(succeed())
		h.clock.Advance(10 * time.Second)
		require.NoError(t, h.send("trial"))
		assert.Equal(t, componentstatus.StatusOK, h.host.last().Status())
		assert.ErrorContains(t, h.host.last().Err(), "member testmember/dlq circuit breaker is open",
			"the DLQ member took no batch since: no probe watches a test member, it stays open")
		assert.Equal(t, []componentstatus.Status{
			componentstatus.StatusOK,               // healthy
			componentstatus.StatusOK,               // primary open
			componentstatus.StatusRecoverableError, // both open
			componentstatus.StatusOK,               // primary half-open
			componentstatus.StatusOK,               // primary closed, DLQ open
		}, statuses(h.host.list()))
	})
	t.Run("primary not started", func(t *testing.T) {
		members := &testMembers{}
		members.get("primary").failStart(errStartDown)
		h := newHarness(t, allSignals[0], startFailsGroup, withMembers(members))
		require.Eventually(t, func() bool { return h.host.last() != nil }, waitFor, time.Millisecond)
		ev := h.host.last()
		assert.Equal(t, componentstatus.StatusOK, ev.Status())
		assert.Equal(t, "degraded", health(ev))
		assert.ErrorContains(t, ev.Err(), "member testmember/primary is not started")
		members.get("primary").okStart()
		require.Eventually(t, func() bool {
			return health(h.host.last()) == "healthy"
		}, waitFor, time.Millisecond)
	})
	t.Run("a member's own status does not speak for the group", func(t *testing.T) {
		h := newHarness(t, allSignals[0], twoMembers)
		h.waitReady()
		require.Eventually(t, func() bool { return h.host.last() != nil }, waitFor, time.Millisecond)
		n := len(h.host.list())
		// Members are started with a host of their own: a member reporting
		// a fatal error must not stop the collector through the group.
		for _, in := range h.member("dlq").instanceList() {
			componentstatus.ReportStatus(in.host, componentstatus.NewFatalErrorEvent(errRefused))
		}
		assert.Len(t, h.host.list(), n)
	})
}
