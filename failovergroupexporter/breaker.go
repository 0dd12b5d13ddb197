// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"sync"
	"sync/atomic"
	"time"
)

// breakerState is a member's circuit breaker state. The numeric values are
// the ones the failover_group_member_state metric reports.
type breakerState uint8

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

// ticket is an admitted attempt's claim on the breaker: the state it was
// admitted in and that state's generation, in one word. An attempt reports
// back with its ticket, so a slow attempt admitted before a state change
// cannot move the new state (as in sony/gobreaker): the breaker ignores a
// ticket that is not its current state and generation.
type ticket uint64

func newTicket(gen uint64, s breakerState) ticket { return ticket(gen<<8 | uint64(s)) }

func (t ticket) state() breakerState { return breakerState(t & 0xff) }

// breaker is a member's circuit breaker:
//
//	closed ──failure_threshold consecutive failures──► open
//	open ──open period elapsed──► half-open (admits one probe at a time)
//	half-open ──success_threshold successful probes──► closed
//	half-open ──a failed probe──► open, for backoff_multiplier × the last period (capped)
//
// State and generation live in one atomic word (a ticket), so the per-batch
// path reads both with a single load and never pairs a state with another
// state's generation. An open breaker answers without taking the lock.
type breaker struct {
	cfg BreakerConfig
	now func() time.Time
	// onChange is called, outside the lock, once per state change.
	onChange func(from, to breakerState)

	current   atomic.Uint64 // a ticket: the state and its generation
	openUntil atomic.Int64  // UnixNano; written before the open state is published

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

func (b *breaker) state() breakerState { return ticket(b.current.Load()).state() }

// allow reports whether an attempt may go to the member now, and the ticket
// it reports back with.
func (b *breaker) allow() (ticket, bool) {
	t := ticket(b.current.Load())
	switch t.state() {
	case stateClosed:
		return t, true
	case stateOpen:
		if b.now().UnixNano() < b.openUntil.Load() {
			return 0, false
		}
	}
	return b.allowSlow()
}

// allowSlow moves an open breaker whose period has passed to half-open and
// admits one probe at a time.
func (b *breaker) allowSlow() (ticket, bool) {
	b.mu.Lock()
	t := ticket(b.current.Load())
	changed := false
	switch t.state() {
	case stateClosed:
		b.mu.Unlock()
		return t, true
	case stateOpen:
		if b.now().UnixNano() < b.openUntil.Load() {
			b.mu.Unlock()
			return 0, false
		}
		t = b.setStateLocked(stateHalfOpen)
		changed = true
	}
	admitted := !b.probing
	b.probing = true
	b.mu.Unlock()
	if changed {
		b.onChange(stateOpen, stateHalfOpen)
	}
	return t, admitted
}

// success: the member took the data.
func (b *breaker) success(t ticket) {
	b.settle(t, func() (breakerState, bool) {
		switch t.state() {
		case stateClosed:
			b.failures = 0
		case stateHalfOpen:
			b.successes++
			if b.successes >= b.cfg.SuccessThreshold {
				return stateClosed, true
			}
		}
		return 0, false
	})
}

// failure: the member is unavailable (outage, timeout, overload).
func (b *breaker) failure(t ticket) {
	b.settle(t, func() (breakerState, bool) {
		if t.state() == stateClosed {
			b.failures++
			return stateOpen, b.failures >= b.cfg.FailureThreshold
		}
		return stateOpen, t.state() == stateHalfOpen
	})
}

// release: the attempt says nothing about the member's health (it refused
// the data as bad, or the caller gave up); a probe slot it held is freed.
func (b *breaker) release(t ticket) {
	b.settle(t, func() (breakerState, bool) { return 0, false })
}

// settle applies an attempt's result if its ticket is still current; a
// half-open probe's slot is freed whatever the result.
func (b *breaker) settle(t ticket, apply func() (to breakerState, change bool)) {
	b.mu.Lock()
	if ticket(b.current.Load()) != t {
		b.mu.Unlock()
		return
	}
	if t.state() == stateHalfOpen {
		b.probing = false
	}
	to, change := apply()
	if change {
		b.setStateLocked(to)
	}
	b.mu.Unlock()
	if change {
		b.onChange(t.state(), to)
	}
}

// setStateLocked moves to a new state in a new generation and returns its
// ticket.
func (b *breaker) setStateLocked(to breakerState) ticket {
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
	gen := uint64(ticket(b.current.Load())>>8) + 1
	t := newTicket(gen, to)
	b.current.Store(uint64(t))
	return t
}

// openPeriod is the length of the current (or last) open period.
func (b *breaker) openPeriod() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastOpenPeriod
}
