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
	bt.breaker = newBreaker(cfg, bt.clock.Now, func(from, to breakerState) {
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

// attempt runs one admitted attempt with the given verdict; it fails the
// test if the breaker does not admit it.
func (bt *breakerUnderTest) attempt(t *testing.T, v verdict) {
	t.Helper()
	gen, ok := bt.allow()
	require.True(t, ok, "breaker in state %s should admit an attempt", bt.current())
	bt.record(gen, v)
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
	bt.attempt(t, verdictFailure)
	bt.attempt(t, verdictFailure)
	assert.Equal(t, stateClosed, bt.current(), "two failures are below failure_threshold 3")
	bt.attempt(t, verdictFailure)
	assert.Equal(t, stateOpen, bt.current())
	assert.Equal(t, []stateChange{{stateClosed, stateOpen}}, bt.changeList())
	assert.Equal(t, 10*time.Second, bt.openPeriod())
}

func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 5 {
		bt.attempt(t, verdictFailure)
		bt.attempt(t, verdictFailure)
		bt.attempt(t, verdictSuccess)
	}
	assert.Equal(t, stateClosed, bt.current(), "failures were never 3 in a row")
	assert.Empty(t, bt.changeList())
}

func TestBreakerOpenSkipsUntilPeriodEnds(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, verdictFailure)
	}
	for range 100 {
		_, ok := bt.allow()
		require.False(t, ok, "an open breaker admits nothing")
	}
	bt.clock.Advance(10*time.Second - time.Nanosecond)
	_, ok := bt.allow()
	assert.False(t, ok, "still open one nanosecond before the period ends")
	assert.Equal(t, stateOpen, bt.current())
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, verdictFailure)
	}
	bt.clock.Advance(10 * time.Second)

	gen, ok := bt.allow()
	require.True(t, ok, "the first call after the open period is a probe")
	assert.Equal(t, stateHalfOpen, bt.current())
	_, ok = bt.allow()
	assert.False(t, ok, "one probe at a time: others pass the member by")

	bt.record(gen, verdictSuccess)
	assert.Equal(t, stateHalfOpen, bt.current(), "success_threshold is 2")
	bt.attempt(t, verdictSuccess)
	assert.Equal(t, stateClosed, bt.current())
	assert.Equal(t, []stateChange{
		{stateClosed, stateOpen}, {stateOpen, stateHalfOpen}, {stateHalfOpen, stateClosed},
	}, bt.changeList())

	// Closed again: the next trip starts from open_duration, not the grown period.
	for range 3 {
		bt.attempt(t, verdictFailure)
	}
	assert.Equal(t, 10*time.Second, bt.openPeriod())
}

func TestBreakerFailedProbeReopensLongerCapped(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 3 {
		bt.attempt(t, verdictFailure)
	}
	// open_duration 10s, multiplier 2, cap 35s: 10s, 20s, 35s, 35s.
	for _, want := range []time.Duration{20 * time.Second, 35 * time.Second, 35 * time.Second} {
		bt.clock.Advance(bt.openPeriod())
		bt.attempt(t, verdictFailure) // the probe fails
		require.Equal(t, stateOpen, bt.current())
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
	var gens []uint64
	for range 3 {
		gen, ok := bt.allow()
		require.True(t, ok)
		gens = append(gens, gen)
	}
	// ...then three fast failures trip the breaker.
	for range 3 {
		bt.attempt(t, verdictFailure)
	}
	require.Equal(t, stateOpen, bt.current())
	// The slow ones succeed late: they must not close the open breaker.
	for _, g := range gens {
		bt.record(g, verdictSuccess)
	}
	assert.Equal(t, stateOpen, bt.current())

	// A probe admitted in half-open, whose result arrives after the breaker
	// moved on, is ignored too.
	bt.clock.Advance(10 * time.Second)
	probe, ok := bt.allow()
	require.True(t, ok)
	bt.record(probe, verdictFailure) // reopened, new generation
	bt.record(probe, verdictSuccess) // a duplicate/late result of the old probe
	assert.Equal(t, stateOpen, bt.current())
}

func TestBreakerNeutralNotCharged(t *testing.T) {
	bt := newTestBreaker(t, testBreakerCfg)
	for range 10 {
		bt.attempt(t, verdictNeutral) // permanent errors: the data's fault
	}
	assert.Equal(t, stateClosed, bt.current())
	// Neutral results between failures neither count nor reset.
	bt.attempt(t, verdictFailure)
	bt.attempt(t, verdictNeutral)
	bt.attempt(t, verdictFailure)
	assert.Equal(t, stateClosed, bt.current())
	bt.attempt(t, verdictFailure)
	assert.Equal(t, stateOpen, bt.current())

	// A neutral probe frees the probe slot without closing or reopening.
	bt.clock.Advance(10 * time.Second)
	bt.attempt(t, verdictNeutral)
	assert.Equal(t, stateHalfOpen, bt.current())
	bt.attempt(t, verdictSuccess)
	bt.attempt(t, verdictSuccess)
	assert.Equal(t, stateClosed, bt.current())
}

func TestBreakerConcurrentUse(t *testing.T) {
	cfg := testBreakerCfg
	cfg.SuccessThreshold = 1
	bt := newTestBreaker(t, cfg)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
					bt.record(gen, verdictSuccess)
				} else {
					bt.record(gen, verdictFailure)
				}
			}
		}()
	}
	wg.Wait()
	// State-change callbacks run outside the lock, so their order across
	// goroutines is not guaranteed, but every state is left no more often
	// than it was entered (closed once more: it is the initial state).
	changes := bt.changeList()
	require.NotEmpty(t, changes)
	entered := map[breakerState]int{stateClosed: 1}
	left := map[breakerState]int{}
	for _, c := range changes {
		require.NotEqual(t, c.from, c.to)
		entered[c.to]++
		left[c.from]++
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
