// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadatatest"
)

// newTestDestination is a destination watched by the given instances, with
// a fake clock for its breaker.
func newTestDestination(clock *fakeClock, ws ...*fakeWatcher) *destination {
	d := &destination{takenEvery: int64(testProbeCfg.Interval / 4)}
	d.breaker = newBreaker(handOffCfg, clock.Now, nil)
	d.slot = &proberSlot{dests: []*destination{d}}
	for _, w := range ws {
		d.slot.refs++
		d.watchers = append(d.watchers, w)
	}
	return d
}

func startedWatcher(signal string) *fakeWatcher {
	w := &fakeWatcher{signal: signal}
	w.isStarted.Store(true)
	return w
}

// A member is probed only while it takes no data: its breaker is not
// closed, it is not started for some signal, or it took nothing within the
// probe interval.
func TestDestinationNeedsProbe(t *testing.T) {
	const interval = time.Second
	clock := newFakeClock()
	now := clock.Now()

	t.Run("never took data", func(t *testing.T) {
		d := newTestDestination(clock, startedWatcher("traces"))
		assert.True(t, d.needsProbe(now, interval))
	})
	t.Run("took data within the interval", func(t *testing.T) {
		d := newTestDestination(clock, startedWatcher("traces"), startedWatcher("logs"))
		d.taken(now.Add(-interval / 2))
		assert.False(t, d.needsProbe(now, interval))
		assert.False(t, d.needsProbe(now.Add(interval/2-time.Nanosecond), interval))
		assert.True(t, d.needsProbe(now.Add(interval/2), interval), "an interval without data")
		assert.True(t, d.needsProbe(now.Add(time.Hour), interval))
	})
	t.Run("breaker open", func(t *testing.T) {
		d := newTestDestination(clock, startedWatcher("traces"))
		d.taken(now)
		for range handOffCfg.FailureThreshold {
			tk, ok := d.breaker.allow()
			require.True(t, ok)
			d.breaker.failure(tk)
		}
		require.Equal(t, stateOpen, d.breaker.state())
		assert.True(t, d.needsProbe(now, interval), "data taken a moment ago, but the breaker is open")
	})
	t.Run("breaker half-open", func(t *testing.T) {
		d := newTestDestination(clock, startedWatcher("traces"))
		d.taken(now)
		for range handOffCfg.FailureThreshold {
			d.breaker.probeFailed()
		}
		d.breaker.probeSucceeded()
		require.Equal(t, stateHalfOpen, d.breaker.state())
		assert.True(t, d.needsProbe(now, interval))
	})
	t.Run("not started for one signal", func(t *testing.T) {
		logs := &fakeWatcher{signal: "logs"}
		d := newTestDestination(clock, startedWatcher("traces"), logs)
		d.taken(now)
		assert.True(t, d.needsProbe(now, interval), "the logs instance is not started")
		logs.isStarted.Store(true)
		assert.False(t, d.needsProbe(now, interval))
	})
}

// taken writes the shared word only when it is stale by more than
// takenEvery (interval/4): concurrent batches mostly just read it. A member
// taking data at least that often never needs a probe.
func TestDestinationTakenRefreshesStaleOnly(t *testing.T) {
	clock := newFakeClock()
	d := newTestDestination(clock, startedWatcher("traces"))
	every := time.Duration(d.takenEvery)
	require.Equal(t, testProbeCfg.Interval/4, every)
	t0 := clock.Now()

	d.taken(t0)
	assert.Equal(t, t0.UnixNano(), d.lastTaken.Load())
	d.taken(t0.Add(every))
	assert.Equal(t, t0.UnixNano(), d.lastTaken.Load(), "not stale yet: not written")
	d.taken(t0.Add(every + 1))
	assert.Equal(t, t0.Add(every+1).UnixNano(), d.lastTaken.Load())

	at := t0.Add(every + 1)
	for range 1000 {
		at = at.Add(every / 3)
		d.taken(at)
		require.False(t, d.needsProbe(at, testProbeCfg.Interval))
	}
}

// startProber builds the prober once, for the first instance to start.
func TestDestinationStartProberOnce(t *testing.T) {
	t.Run("no probe for the member", func(t *testing.T) {
		d := newTestDestination(newFakeClock(), startedWatcher("traces"), startedWatcher("logs"))
		builds := 0
		for range 3 {
			d.startProber(func([]*destination) *prober { builds++; return nil })
		}
		assert.Equal(t, 1, builds)
		assert.Nil(t, d.slot.prober)
		assert.False(t, d.breaker.probed.Load(), "no prober: the open period decides")
	})
	t.Run("every instance left meanwhile", func(t *testing.T) {
		w := startedWatcher("traces")
		d := newTestDestination(newFakeClock(), w)
		probe := &commandedProbe{}
		d.startProber(func(dests []*destination) *prober {
			d.leave(w) // the instance shuts down while its prober is built
			return newProber(dests, probe, testProbeCfg, zap.NewNop(), nil)
		})
		assert.Nil(t, d.slot.prober)
		assert.EqualValues(t, 1, probe.closes.Load(), "the probe built for nobody is closed")
		assert.False(t, d.breaker.probed.Load())
		assert.Zero(t, probe.callCount())
	})
}

// testGroupConfig is a bare group config for joinDestination.
func testGroupConfig() *Config {
	return &Config{
		CircuitBreaker: handOffCfg,
		Probe:          testProbeCfg,
		Members: []MemberConfig{
			{id: component.MustNewIDWithName("testmember", "primary")},
			{id: component.MustNewIDWithName("testmember", "dlq")},
		},
	}
}

// registered: the registry holds a destination of the member (part "",
// not a kafka member) or its prober slot.
func registered(cfg *Config, index int) bool {
	registry.Lock()
	defer registry.Unlock()
	key := destinationKey{cfg: cfg, index: index}
	_, dest := registry.dests[key]
	_, slot := registry.slots[key]
	return dest || slot
}

// The registry: one destination per group config and member position,
// joined by every instance, dropped when the last one leaves.
func TestDestinationJoinAndLeave(t *testing.T) {
	cfg := testGroupConfig()
	traces, logs := startedWatcher("traces"), startedWatcher("logs")
	d1 := joinDestination(cfg, 0, "", zap.NewNop(), traces)
	d2 := joinDestination(cfg, 0, "", zap.NewNop(), logs)
	require.Same(t, d1, d2, "one destination for the member")
	other := joinDestination(cfg, 1, "", zap.NewNop(), traces)
	assert.NotSame(t, d1, other, "one per member")
	assert.NotSame(t, d1.breaker, other.breaker)
	assert.ElementsMatch(t, []destinationWatcher{traces, logs}, d1.watching())

	// A state change reaches every instance.
	for range handOffCfg.FailureThreshold {
		d1.breaker.probeFailed()
	}
	assert.EqualValues(t, 1, traces.changes.Load())
	assert.EqualValues(t, 1, logs.changes.Load())

	probe := &commandedProbe{}
	d1.startProber(func(dests []*destination) *prober {
		return newProber(dests, probe, testProbeCfg, zap.NewNop(), newNopProbeTelemetry(t))
	})
	t.Cleanup(probe.releaseForGood)
	require.Eventually(t, func() bool { return probe.callCount() >= 1 }, waitFor, time.Millisecond)

	d1.leave(traces)
	assert.Equal(t, []destinationWatcher{logs}, d1.watching())
	assert.True(t, registered(cfg, 0))
	assert.Zero(t, probe.closes.Load(), "the logs instance still needs the prober")
	calls := probe.callCount()
	require.Eventually(t, func() bool { return probe.callCount() >= calls+2 }, waitFor, time.Millisecond, "still probing")

	d1.leave(logs)
	assert.EqualValues(t, 1, probe.closes.Load(), "the last instance stopped the prober")
	assert.False(t, registered(cfg, 0), "the registry forgets the destination")

	other.leave(traces)
	assert.False(t, registered(cfg, 1))

	again := joinDestination(cfg, 0, "", zap.NewNop(), traces)
	t.Cleanup(func() { again.leave(traces) })
	assert.NotSame(t, d1, again, "a new instance after all left starts afresh")
	assert.Equal(t, stateClosed, again.breaker.state())
}

func newNopProbeTelemetry(t *testing.T) *probeTelemetry {
	t.Helper()
	tb, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	t.Cleanup(tb.Shutdown)
	return newProbeTelemetry(tb, "failover_group/ingest", "testmember/primary")
}

// ---------------------------------------------------------------------------
// One destination shared by a group's signal instances: the collector
// creates the group once per signal from the same *Config.
// ---------------------------------------------------------------------------

// sharedGroup is a traces and a logs instance of one group config.
type sharedGroup struct {
	t       *testing.T
	members *testMembers
	probes  *commandedProbes
	cfg     *Config
	tel     *componenttest.Telemetry
	logs    *observer.ObservedLogs
	traces  component.Component
	logsExp component.Component
	hosts   map[string]*statusHost
	stop    map[string]func()
}

func newSharedGroup(t *testing.T, doc string) *sharedGroup {
	t.Helper()
	s := &sharedGroup{t: t, members: &testMembers{}, probes: &commandedProbes{}, hosts: map[string]*statusHost{}, stop: map[string]func(){}}
	f := newFactory(time.Now, s.members.factory(testMemberType))
	cfg, err := decodeConfig(t, f, doc)
	require.NoError(t, err)
	cfg.probes = s.probes.pick
	s.cfg = cfg

	var logger *zap.Logger
	s.tel, s.logs, logger = observedTelemetry(t)
	set := metadatatest.NewSettings(s.tel)
	set.ID = groupID
	set.Logger = logger

	// Both created before either starts, as the collector does.
	for _, sig := range []signalCase{allSignals[0], allSignals[2]} {
		exp, err := sig.create(t.Context(), f, set, cfg)
		require.NoError(t, err)
		if sig.name == "traces" {
			s.traces = exp
		} else {
			s.logsExp = exp
		}
		s.hosts[sig.name] = &statusHost{}
		var once sync.Once
		s.stop[sig.name] = func() {
			once.Do(func() { require.NoError(t, exp.Shutdown(context.Background())) }) //nolint:usetesting // runs in Cleanup, after t.Context() is canceled
		}
		t.Cleanup(s.stop[sig.name])
	}
	t.Cleanup(s.probes.releaseAll) // before the shutdowns
	return s
}

func (s *sharedGroup) start() {
	require.NoError(s.t, s.traces.Start(context.Background(), s.hosts["traces"]))
	require.NoError(s.t, s.logsExp.Start(context.Background(), s.hosts["logs"]))
	for _, exp := range []component.Component{s.traces, s.logsExp} {
		for _, m := range membersOf(exp) {
			require.Eventually(s.t, func() bool { return m.ready() && m.settled() }, waitFor, time.Millisecond)
		}
	}
}

func (s *sharedGroup) sum(name string, attrs ...attribute.KeyValue) int64 {
	return (&harness{tel: s.tel}).sum(name, attrs...)
}

// callsFor are the ids a test member was handed for one signal.
func callsFor(m *testMember, signal string) []string {
	var ids []string
	calls := m.callList()
	for i := range calls {
		if c := &calls[i]; c.signal == signal {
			ids = append(ids, c.ids...)
		}
	}
	return ids
}

// The traces and logs instances of one group share the member's breaker and
// prober: an outage seen by traces batches skips the member for logs too, a
// refusal of one signal's data as bad opens nothing, and the prober lives
// until the last instance shuts down.
func TestDestinationSharedAcrossSignals(t *testing.T) {
	s := newSharedGroup(t, probedTwoMembers)
	primary, dlq := s.members.get("primary"), s.members.get("dlq")
	var tracesDown atomic.Bool
	primary.set(func(_ context.Context, ids []string) result {
		switch {
		case strings.HasPrefix(ids[0], "bad"):
			return fail(errBadData) // one signal's table refuses the data
		case strings.HasPrefix(ids[0], "t-") && tracesDown.Load():
			return fail(errRefused)
		}
		return succeed()
	})
	s.start()
	tr, lg := membersOf(s.traces), membersOf(s.logsExp)
	require.Same(t, tr[0].breaker, lg[0].breaker, "one breaker for the primary")
	require.Same(t, tr[1].breaker, lg[1].breaker, "one breaker for the DLQ")
	b := tr[0].breaker
	probe := s.probes.get("primary")

	// One prober per member, built once, for both signals.
	require.Eventually(t, func() bool { return probe.callCount() >= 1 }, waitFor, time.Millisecond)
	assert.Equal(t, 1, s.probes.pickCount("primary"))
	assert.Equal(t, 1, s.probes.pickCount("dlq"))
	assert.Equal(t, [][]string{{"traces", "logs"}}, s.probes.pickedSignals("primary"), "the probe covers both signals")
	assert.Len(t, s.logs.FilterMessageSnippet("Member is probed in the background").All(), 2, "one line per member, not per signal")

	// Bad data on the logs table: not the member's fault, nothing opens.
	sendLogs := func(ids ...string) error { return allSignals[2].send(t.Context(), s.logsExp, ids...) }
	sendTraces := func(ids ...string) error { return allSignals[0].send(t.Context(), s.traces, ids...) }
	for i := range 5 {
		require.NoError(t, sendLogs(fmt.Sprintf("bad-%d", i)), "the DLQ takes what the primary refused")
	}
	assert.Equal(t, stateClosed, b.state())
	require.NoError(t, sendTraces("t-ok"))
	assert.Equal(t, []string{"t-ok"}, callsFor(primary, "traces"))

	// Freeze the primary's probe, then fail traces batches: the batches
	// alone open the shared breaker.
	probe.hold()
	require.Eventually(t, probe.heldNow, waitFor, time.Millisecond)
	tracesDown.Store(true)
	for i := range handOffCfg.FailureThreshold {
		require.NoError(t, sendTraces(fmt.Sprintf("t-%d", i)))
	}
	require.Equal(t, stateOpen, b.state())

	// The logs instance skips the primary without trying it.
	require.NoError(t, sendLogs("l-0"))
	assert.NotContains(t, callsFor(primary, "logs"), "l-0")
	assert.Contains(t, callsFor(dlq, "logs"), "l-0")
	assert.EqualValues(t, 1, s.sum("failover_group_skipped", memberAttr("testmember/primary"),
		reasonAttr("breaker_open"), attribute.String("otelcol.signal", "logs")))
	require.Eventually(t, func() bool {
		ev := s.hosts["logs"].last()
		return ev != nil && health(ev) == "degraded" &&
			strings.Contains(ev.Err().Error(), "member testmember/primary circuit breaker is open")
	}, waitFor, time.Millisecond, "the logs instance reports the outage seen by traces")

	// The traces instance shuts down: the prober keeps running for logs.
	probe.fail(errRefused)
	probe.release()
	s.stop["traces"]()
	assert.Zero(t, probe.closes.Load())
	assert.True(t, registered(s.cfg, 0))
	failures := func() int64 {
		return s.sum("failover_group_probes", memberAttr("testmember/primary"), outcomeAttr("failure"))
	}
	f := failures()
	require.Eventually(t, func() bool { return failures() >= f+3 }, waitFor, time.Millisecond,
		"still probing, and recorded, after the instance that built the prober shut down")

	// The primary answers again: its probes close the breaker for logs.
	tracesDown.Store(false)
	probe.succeed()
	require.Eventually(t, func() bool { return b.state() == stateClosed }, waitFor, time.Millisecond)
	require.NoError(t, sendLogs("l-1"))
	assert.Contains(t, callsFor(primary, "logs"), "l-1")

	// The last instance shuts down: the prober stops, the probe is closed
	// once, the registry forgets the destinations.
	s.stop["logs"]()
	assert.EqualValues(t, 1, probe.closes.Load())
	assert.EqualValues(t, 1, s.probes.get("dlq").closes.Load())
	for i := range s.cfg.Members {
		assert.False(t, registered(s.cfg, i), "member %d", i)
	}
	assert.True(t, slices.ContainsFunc(s.logs.All(), func(e observer.LoggedEntry) bool {
		return strings.Contains(e.Message, "Member circuit breaker opened") && e.Level == zapcore.WarnLevel
	}), "the outage was logged once for both signals")
	assert.Len(t, s.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("Member circuit breaker opened").All(), 1)
}
