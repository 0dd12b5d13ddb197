// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelfailover/otelcol-failover/internal/livestate"
)

// fakeLive is a test double of a live failover_group: failing over on
// command.
type fakeLive struct {
	failing atomic.Bool
	asked   atomic.Int64
}

func (*fakeLive) Name() string { return "failover_group/ingest" }
func (f *fakeLive) FailingOver(time.Time) bool {
	f.asked.Add(1)
	return f.failing.Load()
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRateLimitSpacesRequestsByTheirItems(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer("dlq_routing/traces", ReplayConfig{MaxItemsPerSecond: 1000}, zap.NewNop())
	p.now = clock.now
	// Three requests at once: the first goes now, each next one after the
	// previous one's share (500 items at 1000/s: 500ms).
	assert.Equal(t, time.Duration(0), p.reserve(500))
	assert.Equal(t, 500*time.Millisecond, p.reserve(500))
	assert.Equal(t, time.Second, p.reserve(2000))
	// Time passes beyond the booked slots: idle time saves no credit.
	clock.add(10 * time.Second)
	assert.Equal(t, time.Duration(0), p.reserve(100))
	assert.Equal(t, 100*time.Millisecond, p.reserve(1))
}

func TestRateWaitEndsOnShutdownAndCancel(t *testing.T) {
	p := newPacer("dlq_routing/traces", ReplayConfig{MaxItemsPerSecond: 1}, zap.NewNop())
	require.NoError(t, p.admit(t.Context(), 3600)) // books the next hour
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, p.admit(ctx, 1), context.Canceled)
	done := make(chan error, 1)
	go func() { done <- p.admit(t.Context(), 1) }()
	p.shutdown()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errStopping)
	case <-time.After(30 * time.Second):
		t.Fatal("a waiting request did not end at shutdown")
	}
}

func TestHoldWaitsWhileTheLiveSideFailsOver(t *testing.T) {
	live := &fakeLive{}
	core, logs := observer.New(zap.InfoLevel)
	p := newPacer("dlq_routing/traces", ReplayConfig{HoldWhileFailingOver: true}, zap.New(core))
	p.failingOver = func(time.Time) (livestate.Source, bool) {
		failing := live.FailingOver(time.Time{})
		return live, failing
	}

	require.NoError(t, p.admit(t.Context(), 10), "nothing failing over: no wait")
	live.failing.Store(true)
	done := make(chan error, 1)
	go func() { done <- p.admit(t.Context(), 10) }()
	// Held: it keeps asking; the live side recovers within the hold.
	require.Eventually(t, func() bool { return live.asked.Load() >= 3 }, 30*time.Second, time.Millisecond)
	live.failing.Store(false)
	require.NoError(t, <-done)
	assert.Equal(t, 1, logs.FilterMessageSnippet("Replay held back").Len(), "held: logged once")
	assert.Equal(t, 1, logs.FilterMessageSnippet("Replay resumes").Len(), "resumed: logged once")
	assert.Equal(t, "failover_group/ingest", logs.FilterMessageSnippet("Replay held back").All()[0].ContextMap()["live_group"])
}

func TestHoldGivesUpAfterMaxHoldWithATransientError(t *testing.T) {
	live := &fakeLive{}
	live.failing.Store(true)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer("dlq_routing/traces", ReplayConfig{HoldWhileFailingOver: true}, zap.NewNop())
	// Each look at the live side is a second later: the hold ends at the
	// first poll after maxHold.
	p.now = func() time.Time { clock.add(maxHold / 2); return clock.now() }
	p.failingOver = func(time.Time) (livestate.Source, bool) { return live, true }
	err := p.admit(t.Context(), 10)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failover_group/ingest fails over")
	assert.Contains(t, err.Error(), "replay::hold_while_failing_over")
}

func TestHoldOffIgnoresTheLiveSide(t *testing.T) {
	live := &fakeLive{}
	live.failing.Store(true)
	p := newPacer("dlq_routing/traces", ReplayConfig{}, zap.NewNop())
	p.failingOver = func(time.Time) (livestate.Source, bool) {
		failing := live.FailingOver(time.Time{})
		return live, failing
	}
	require.NoError(t, p.admit(t.Context(), 10))
	assert.Zero(t, live.asked.Load())
}

// Through the connector, with a live group registered in the process's live
// state: replayed data is held back (and so refused as transient after the
// hold), default-route data is not.
func TestReplayedDataHeldWhileARegisteredLiveGroupFailsOver(t *testing.T) {
	live := &fakeLive{}
	live.failing.Store(true)
	unregister := livestate.Register(live)
	defer unregister()

	cfg := topicsCfg(t)
	require.True(t, cfg.Replay.HoldWhileFailingOver, "holding is the default")
	replay, def := &tracesPipe{}, &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": def})
	c.(*tracesConnector).router.pace.maxHold = 100 * time.Millisecond

	require.NoError(t, c.ConsumeTraces(kafkaCtx("other_topic", nil), testTraces(1, "svc")), "live data is never held")
	err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(2, "svc"))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "held data goes back to the receiver to be retried")
	assert.Equal(t, 0, replay.batches())

	live.failing.Store(false)
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(2, "svc")))
	assert.Equal(t, 1, replay.batches())
	assert.Equal(t, 1, def.batches())
}

func TestConnectorShutdownEndsAHeldRequest(t *testing.T) {
	live := &fakeLive{}
	live.failing.Store(true)
	unregister := livestate.Register(live)
	defer unregister()
	c := mustTracesConnector(t, topicsCfg(t), nil, map[string]consumer.Traces{"traces/replay": &tracesPipe{}, "traces/live": &tracesPipe{}})
	c.(*tracesConnector).router.pace.maxHold = time.Hour // only the shutdown ends it
	done := make(chan error, 1)
	go func() { done <- c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc")) }()
	require.Eventually(t, func() bool { return live.asked.Load() >= 2 }, 30*time.Second, time.Millisecond)
	require.NoError(t, c.Shutdown(t.Context()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errStopping)
	case <-time.After(30 * time.Second):
		t.Fatal("a held request did not end at shutdown")
	}
}
