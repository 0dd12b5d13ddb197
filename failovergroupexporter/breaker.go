package failovergroupexporter // import "github.com/otelfailover/otelcol-failover/failovergroupexporter"

import (
	"sync"
	"sync/atomic"
	"time"
)

// breakerState is a member's circuit breaker state. The numeric values are
// the ones the failover_group_member_state metric reports.
type breakerState int32

const (
	stateClosed breakerState = iota
	stateHalfOpen
	stateOpen
	// stateUnavailable is not a breaker state: the member has not started
	// (yet). It shares the enum so that one gauge tells the whole story.
	stateUnavailable
)

func (s breakerState) String() string {
	switch s {
	case stateClosed:
		return "closed"
	case stateHalfOpen:
		return "half_open"
	case stateOpen:
		return "open"
	default:
		return "unavailable"
	}
}

// verdict is what a finished attempt tells the breaker.
type verdict uint8

const (
	verdictSuccess verdict = iota
	// verdictFailure: a transient failure (outage, timeout). Counts toward
	// opening the breaker.
	verdictFailure
	// verdictNeutral: the member answered but refused the data (a permanent
	// error), or the caller gave up. Says nothing about the member's health.
	verdictNeutral
)

// breaker is a member's circuit breaker:
//
//	closed ──failure_threshold consecutive failures──► open
//	open ──open period elapsed──► half-open (admits one probe at a time)
//	half-open ──success_threshold successful probes──► closed
//	half-open ──a failed probe──► open, for backoff_multiplier × the last period (capped)
//
// The per-batch path reads the state with atomic loads; an open breaker
// answers without taking the lock. Results carry the generation they were
// admitted in, so a slow attempt that started before a state change cannot
// move the new state (as in sony/gobreaker).
type breaker struct {
	cfg BreakerConfig
	now func() time.Time
	// onChange is called, outside the lock, once per state change.
	onChange func(from, to breakerState)

	state      atomic.Int32
	openUntil  atomic.Int64 // UnixNano; meaningful while open
	generation atomic.Uint64

	mu             sync.Mutex
	failures       int           // consecutive failures while closed
	successes      int           // successful probes while half-open
	probing        bool          // a probe is in flight while half-open
	lastOpenPeriod time.Duration // 0 after the breaker closed
}

func newBreaker(cfg BreakerConfig, now func() time.Time, onChange func(from, to breakerState)) *breaker {
	if now == nil {
		now = time.Now
	}
	if onChange == nil {
		onChange = func(breakerState, breakerState) {}
	}
	return &breaker{cfg: cfg, now: now, onChange: onChange}
}

func (b *breaker) current() breakerState { return breakerState(b.state.Load()) }

// allow reports whether an attempt may go to the member now, and the
// generation to pass back to record.
func (b *breaker) allow() (uint64, bool) {
	switch breakerState(b.state.Load()) {
	case stateClosed:
		return b.generation.Load(), true
	case stateOpen:
		if b.now().UnixNano() < b.openUntil.Load() {
			return 0, false
		}
	}
	return b.allowSlow()
}

func (b *breaker) allowSlow() (uint64, bool) {
	b.mu.Lock()
	var from breakerState
	changed := false
	switch breakerState(b.state.Load()) {
	case stateClosed:
		b.mu.Unlock()
		return b.generation.Load(), true
	case stateOpen:
		if b.now().UnixNano() < b.openUntil.Load() {
			b.mu.Unlock()
			return 0, false
		}
		from, changed = stateOpen, true
		b.setStateLocked(stateHalfOpen)
	}
	// Half-open: one probe at a time; everything else passes the member by.
	admitted := !b.probing
	if admitted {
		b.probing = true
	}
	gen := b.generation.Load()
	b.mu.Unlock()
	if changed {
		b.onChange(from, stateHalfOpen)
	}
	return gen, admitted
}

// record tells the breaker how an admitted attempt ended.
func (b *breaker) record(gen uint64, v verdict) {
	b.mu.Lock()
	if gen != b.generation.Load() {
		b.mu.Unlock()
		return
	}
	from := breakerState(b.state.Load())
	to := from
	switch from {
	case stateClosed:
		switch v {
		case verdictSuccess:
			b.failures = 0
		case verdictFailure:
			b.failures++
			if b.failures >= b.cfg.FailureThreshold {
				to = stateOpen
			}
		}
	case stateHalfOpen:
		b.probing = false
		switch v {
		case verdictSuccess:
			b.successes++
			if b.successes >= b.cfg.SuccessThreshold {
				to = stateClosed
			}
		case verdictFailure:
			to = stateOpen
		}
	}
	if to != from {
		b.setStateLocked(to)
	}
	b.mu.Unlock()
	if to != from {
		b.onChange(from, to)
	}
}

// setStateLocked moves to a new state and starts a new generation.
func (b *breaker) setStateLocked(to breakerState) {
	b.failures, b.successes, b.probing = 0, 0, false
	switch to {
	case stateOpen:
		period := b.cfg.OpenDuration
		if b.lastOpenPeriod > 0 {
			period = time.Duration(float64(b.lastOpenPeriod) * b.cfg.BackoffMultiplier)
		}
		period = min(period, b.cfg.MaxOpenDuration)
		b.lastOpenPeriod = period
		b.openUntil.Store(b.now().Add(period).UnixNano())
	case stateClosed:
		b.lastOpenPeriod = 0
	}
	b.generation.Add(1)
	b.state.Store(int32(to))
}

// openPeriod is the length of the current (or last) open period.
func (b *breaker) openPeriod() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastOpenPeriod
}
