// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type stateChange struct{ from, to breakerState }

type breakerUnderTest struct {
	*breaker
	clock   *fakeClock
	mu      sync.Mutex
	changes []stateChange
}

func newTestBreaker(t *testing.T, cfg BreakerConfig) *breakerUnderTest {
	t.Helper()
	require.NoError(t, cfg.validate())
	bt := &breakerUnderTest{clock: newFakeClock()}
	bt.breaker = newBreaker(cfg, bt.clock.Now, func(from, to breakerState, _ bool) {
		bt.mu.Lock()
		defer bt.mu.Unlock()
		bt.changes = append(bt.changes, stateChange{from, to})
	})
	return bt
}

func (bt *breakerUnderTest) changeList() []stateChange {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return append([]stateChange(nil), bt.changes...)
}

// attemptEnd is how an attempt ends, as the breaker hears it.
type attemptEnd func(*breaker, ticket)

var (
	succeeded attemptEnd = (*breaker).success
	failed    attemptEnd = (*breaker).failure
	released  attemptEnd = (*breaker).release
)

// attempt runs one admitted attempt with the given result; it fails the
// test if the breaker does not admit it.
func (bt *breakerUnderTest) attempt(t *testing.T, r attemptEnd) {
	t.Helper()
	tk, ok := bt.allow()
	require.True(t, ok, "breaker in state %s should admit an attempt", bt.state())
	r(bt.breaker, tk)
}

var testBreakerCfg = BreakerConfig{
	FailureThreshold:  3,
	OpenDuration:      10 * time.Second,
	BackoffMultiplier: 2,
	MaxOpenDuration:   35 * time.Second,
	SuccessThreshold:  2,
}

func TestBreakerTripsAfterFailureThreshold(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	bt.attempt(t, failed)
	bt.attempt(t, failed)
	assert.Equal(t, stateClosed, bt.state(), "two failures are below failure_threshold 3")
	bt.attempt(t, failed)
	assert.Equal(t, stateOpen, bt.state())
	assert.Equal(t, []stateChange{{stateClosed, stateOpen}}, bt.changeList())
	assert.Equal(t, 10*time.Second, bt.openPeriod())
}

func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 5 {
		bt.attempt(t, failed)
		bt.attempt(t, failed)
		bt.attempt(t, succeeded)
	}
	assert.Equal(t, stateClosed, bt.state(), "failures were never 3 in a row")
	assert.Empty(t, bt.changeList())
}

func TestBreakerOpenSkipsUntilPeriodEnds(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, failed)
	}
	for range 100 {
		_, ok := bt.allow()
		require.False(t, ok, "an open breaker admits nothing")
	}
	bt.clock.Advance(10*time.Second - time.Nanosecond)
	_, ok := bt.allow()
	assert.False(t, ok, "still open one nanosecond before the period ends")
	assert.Equal(t, stateOpen, bt.state())
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, failed)
	}
	bt.clock.Advance(10 * time.Second)

	gen, ok := bt.allow()
	require.True(t, ok, "the first call after the open period is a probe")
	assert.Equal(t, stateHalfOpen, bt.state())
	_, ok = bt.allow()
	assert.False(t, ok, "one probe at a time: others pass the member by")

	bt.success(gen)
	assert.Equal(t, stateHalfOpen, bt.state(), "success_threshold is 2")
	bt.attempt(t, succeeded)
	assert.Equal(t, stateClosed, bt.state())
	assert.Equal(t, []stateChange{
		{stateClosed, stateOpen}, {stateOpen, stateHalfOpen}, {stateHalfOpen, stateClosed},
	}, bt.changeList())

	// Closed again: the next trip starts from open_duration, not the grown period.
	for range 3 {
		bt.attempt(t, failed)
	}
	assert.Equal(t, 10*time.Second, bt.openPeriod())
}

func TestBreakerFailedProbeReopensLongerCapped(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, failed)
	}
	// open_duration 10s, multiplier 2, cap 35s: 10s, 20s, 35s, 35s.
	for _, want := range []time.Duration{20 * time.Second, 35 * time.Second, 35 * time.Second} {
		bt.clock.Advance(bt.openPeriod())
		bt.attempt(t, failed) // the probe fails
		require.Equal(t, stateOpen, bt.state())
		require.Equal(t, want, bt.openPeriod())
		bt.clock.Advance(want - time.Millisecond)
		_, ok := bt.allow()
		require.False(t, ok, "open for the whole grown period")
		bt.clock.Advance(-want + time.Millisecond)
	}
}

func TestBreakerStaleGenerationIgnored(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	// Three slow attempts admitted while closed...
	var gens []ticket
	for range 3 {
		gen, ok := bt.allow()
		require.True(t, ok)
		gens = append(gens, gen)
	}
	// ...then three fast failures trip the breaker.
	for range 3 {
		bt.attempt(t, failed)
	}
	require.Equal(t, stateOpen, bt.state())
	// The slow ones succeed late: they must not close the open breaker.
	for _, g := range gens {
		bt.success(g)
	}
	assert.Equal(t, stateOpen, bt.state())

	// A probe admitted in half-open, whose result arrives after the breaker
	// moved on, is ignored too.
	bt.clock.Advance(10 * time.Second)
	probe, ok := bt.allow()
	require.True(t, ok)
	bt.failure(probe) // reopened, new generation
	bt.success(probe) // a duplicate/late result of the old probe
	assert.Equal(t, stateOpen, bt.state())
}

// An attempt admitted while closed that ends after the breaker went closed →
// open → half-open is not the half-open probe: its result is ignored, the
// real probe keeps its slot, and success_threshold counts probes only. The
// ticket carries the state and generation it was admitted in, read with one
// atomic load, so no admission can pair the closed state with the half-open
// generation.
func TestBreakerClosedAttemptEndingInHalfOpenIsNotTheProbe(t *testing.T) {
	cfg := testBreakerCfg
	cfg.SuccessThreshold = 1
	bt := newTestBreaker(t, cfg)

	slow, ok := bt.allow() // admitted while closed; its result comes late
	require.True(t, ok)
	require.Equal(t, stateClosed, slow.state())
	for range 3 {
		bt.attempt(t, failed)
	}
	require.Equal(t, stateOpen, bt.state())
	bt.clock.Advance(cfg.OpenDuration)
	probe, ok := bt.allow()
	require.True(t, ok)
	require.Equal(t, stateHalfOpen, probe.state())
	require.NotEqual(t, slow, probe)

	bt.success(slow) // the slow closed-state attempt ends now
	assert.Equal(t, stateHalfOpen, bt.state(), "a closed-state success must not close a half-open breaker")
	_, ok = bt.allow()
	assert.False(t, ok, "the real probe is still in flight: its slot stays taken")

	bt.failure(slow) // a late failure is ignored the same way
	assert.Equal(t, stateHalfOpen, bt.state())

	bt.success(probe)
	assert.Equal(t, stateClosed, bt.state(), "the probe's own success closes it")
	assert.Equal(t, []stateChange{
		{stateClosed, stateOpen}, {stateOpen, stateHalfOpen}, {stateHalfOpen, stateClosed},
	}, bt.changeList())
}

// The interleaving the breaker once had: an attempt admitted by reading the
// closed state, then the generation after the breaker had gone closed →
// open → half-open, held a closed-state claim with the half-open
// generation, and its result counted as the half-open probe's. A ticket
// built that way (what the two loads could pair) is not the breaker's
// current ticket, so its result is ignored: the probe keeps its slot.
func TestBreakerIgnoresAClosedClaimWithTheHalfOpenGeneration(t *testing.T) {
	cfg := testBreakerCfg
	cfg.SuccessThreshold = 1
	bt := newTestBreaker(t, cfg)
	for range 3 {
		bt.attempt(t, failed)
	}
	bt.clock.Advance(cfg.OpenDuration)
	probe, ok := bt.allow()
	require.True(t, ok)
	require.Equal(t, stateHalfOpen, probe.state())
	racy := newTicket(uint64(probe>>8), stateClosed) // closed state, half-open generation
	bt.success(racy)
	assert.Equal(t, stateHalfOpen, bt.state(), "the racy claim must not close the breaker")
	_, ok = bt.allow()
	assert.False(t, ok, "the probe slot stays taken")
	bt.failure(racy)
	assert.Equal(t, stateHalfOpen, bt.state(), "nor reopen it")
}

// A ticket keeps state and generation apart for any generation.
func TestTicketPacksStateAndGeneration(t *testing.T) {
	for _, gen := range []uint64{0, 1, 255, 256, 1 << 40} {
		for _, s := range []breakerState{stateClosed, stateHalfOpen, stateOpen} {
			tk := newTicket(gen, s)
			assert.Equal(t, s, tk.state())
			assert.Equal(t, gen, uint64(tk>>8))
		}
	}
}

func TestBreakerReleaseNotCharged(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 10 {
		bt.attempt(t, released) // permanent errors: the data's fault
	}
	assert.Equal(t, stateClosed, bt.state())
	// Neutral results between failures neither count nor reset.
	bt.attempt(t, failed)
	bt.attempt(t, released)
	bt.attempt(t, failed)
	assert.Equal(t, stateClosed, bt.state())
	bt.attempt(t, failed)
	assert.Equal(t, stateOpen, bt.state())

	// A neutral probe frees the probe slot without closing or reopening.
	bt.clock.Advance(10 * time.Second)
	bt.attempt(t, released)
	assert.Equal(t, stateHalfOpen, bt.state())
	bt.attempt(t, succeeded)
	bt.attempt(t, succeeded)
	assert.Equal(t, stateClosed, bt.state())
}

func TestBreakerConcurrentUse(t *testing.T) {
	cfg := testBreakerCfg
	cfg.SuccessThreshold = 1
	bt := newTestBreaker(t, cfg)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				gen, ok := bt.allow()
				if !ok {
					if i%50 == 0 {
						bt.clock.Advance(time.Second)
					}
					continue
				}
				// Four failures in a row per goroutine: the breaker opens
				// even if the scheduler runs the goroutines one by one.
				if (i+w)%5 == 0 {
					bt.success(gen)
				} else {
					bt.failure(gen)
				}
			}
		})
	}
	wg.Wait()
	// State-change callbacks run outside the lock, so their order across
	// goroutines is not guaranteed, but every state is left no more often
	// than it was entered (closed once more: it is the initial state).
	changes := bt.changeList()
	require.NotEmpty(t, changes)
	moves := make([][2]breakerState, len(changes))
	for i, c := range changes {
		moves[i] = [2]breakerState{c.from, c.to}
	}
	assertBalanced(t, moves)
}

// assertBalanced: every state change is a change, and every state is left
// no more often than it was entered (closed once more: the initial state).
func assertBalanced(t *testing.T, moves [][2]breakerState) {
	t.Helper()
	entered := map[breakerState]int{stateClosed: 1}
	left := map[breakerState]int{}
	for _, m := range moves {
		require.NotEqual(t, m[0], m[1])
		entered[m[1]]++
		left[m[0]]++
	}
	for s, n := range left {
		assert.LessOrEqual(t, n, entered[s], "state %s", s)
	}
}

func TestBreakerStateNames(t *testing.T) {
	assert.Equal(t, "closed", stateClosed.String())
	assert.Equal(t, "half_open", stateHalfOpen.String())
	assert.Equal(t, "open", stateOpen.String())
	assert.Equal(t, "unavailable", stateUnavailable.String())
}
