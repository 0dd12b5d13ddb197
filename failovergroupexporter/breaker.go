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

// breaker is a member's circuit breaker, shared by the group's instances of
// the member (one per signal, destination.go):
//
//	closed ──failure_threshold consecutive failures──► open
//	        (failed batches, or failed probes while the member takes no data)
//	open ──a probe succeeds──► half-open, at once
//	open ──open period elapsed──► half-open (a member no probe watches;
//	        one a probe watches: max_open_duration elapsed)
//	half-open ──success_threshold successes──► closed
//	        (successful batches; successful probes while no batch is tried)
//	half-open ──a failed batch or probe──► open, for backoff_multiplier × the last period (capped)
//
// A member a prober watches leaves the open state on a probe's success,
// and the next batch, a real attempt, decides. No batch waits on a dead
// member: a dead member costs a probe per probe::interval, and a batch only
// once per max_open_duration. That batch is there because a probe can be
// wrong (a proxy in the way, a topic the member writes but the probe does
// not know): batches outrank probes. A member that takes a batch while its
// probe fails is not opened again by failed probes until a probe succeeds.
// If the batch after a probe's success fails (the member answers probes but
// cannot take data), or batches fail right after probes
// closed the breaker of a member that had no batch to try, probes have
// misled: until a batch is taken again, a probe ends an open period only
// once the period has elapsed and no longer closes a half-open breaker, so
// the growing open period bounds how often a batch is risked.
//
// State and generation live in one atomic word (a ticket), so the per-batch
// path reads both with a single load and never pairs a state with another
// state's generation. An open breaker answers without taking the lock.
type breaker struct {
	cfg BreakerConfig
	now func() time.Time
	// onChange is called, outside the lock, once per state change;
	// byProbe: a probe's result made the change.
	onChange func(from, to breakerState, byProbe bool)

	current   atomic.Uint64 // a ticket: the state and its generation
	openUntil atomic.Int64  // UnixNano; written before the open state is published
	// escapeAt (UnixNano): a probed open breaker admits a batch from then
	// on, whatever its probes say (max_open_duration after it opened).
	escapeAt atomic.Int64
	// probed: a prober watches the member (set when it starts).
	probed atomic.Bool

	mu sync.Mutex
	// Consecutive failures while closed, failed batches and failed probes
	// apart: a successful probe ends a streak of failed probes only.
	failures       int
	probeFailures  int
	successes      int           // successes while half-open
	probing        bool          // a batch is being tried while half-open
	triedLive      bool          // a batch was tried in this half-open period
	viaProbe       bool          // this half-open period began with a probe's success
	closedByProbes bool          // probes closed the breaker; no batch was taken since
	probesMisled   bool          // batches failed after probes said the member was back
	lastProbeFail  bool          // the latest probe failed
	probesWrong    bool          // a batch was taken while probes failed
	lastOpenPeriod time.Duration // 0 after the breaker closed
}

func newBreaker(cfg BreakerConfig, now func() time.Time, onChange func(from, to breakerState, byProbe bool)) *breaker {
	if now == nil {
		now = time.Now
	}
	if onChange == nil {
		onChange = func(breakerState, breakerState, bool) {}
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
		if b.now().UnixNano() < b.openEnd() {
			return 0, false
		}
	}
	return b.allowSlow()
}

// openEnd is when time alone ends the open state (UnixNano): the open
// period, or for a member a prober watches, max_open_duration.
func (b *breaker) openEnd() int64 {
	if b.probed.Load() {
		return b.escapeAt.Load()
	}
	return b.openUntil.Load()
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
		if b.now().UnixNano() < b.openEnd() {
			b.mu.Unlock()
			return 0, false
		}
		t = b.setStateLocked(stateHalfOpen)
		changed = true
	}
	admitted := !b.probing
	b.probing = true
	b.triedLive = true
	b.mu.Unlock()
	if changed {
		b.onChange(stateOpen, stateHalfOpen, false)
	}
	return t, admitted
}

// success: the member took the data.
func (b *breaker) success(t ticket) {
	b.settle(t, func() (breakerState, bool) {
		// A batch taken: whatever probes said before is confirmed, and
		// a probe that fails meanwhile is wrong.
		b.closedByProbes, b.probesMisled = false, false
		if b.lastProbeFail {
			b.probesWrong = true
		}
		switch t.state() {
		case stateClosed:
			b.failures, b.probeFailures = 0, 0
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
			opens := b.failures+b.probeFailures >= b.cfg.FailureThreshold
			if opens && b.closedByProbes {
				b.probesMisled = true // probes closed it, batches fail
			}
			return stateOpen, opens
		}
		if t.state() == stateHalfOpen && b.viaProbe {
			b.probesMisled = true
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
		b.onChange(t.state(), to, false)
	}
}

// probeSucceeded: a background probe found the destination answering. On a
// closed breaker it ends a streak of failed probes, not of failed batches:
// a member that accepts connections but fails every write must still open.
func (b *breaker) probeSucceeded() {
	b.onProbe(func(s breakerState) (breakerState, bool) {
		b.lastProbeFail, b.probesWrong = false, false
		switch s {
		case stateClosed:
			b.probeFailures = 0
		case stateOpen:
			return stateHalfOpen, !b.probesMisled || b.now().UnixNano() >= b.openUntil.Load()
		case stateHalfOpen:
			// A batch tried in this period decides; a member that is
			// given no batch (a standby) is closed by its probes, unless
			// probes have misled.
			if !b.triedLive && !b.probesMisled {
				b.successes++
				if b.successes >= b.cfg.SuccessThreshold {
					b.closedByProbes = true
					return stateClosed, true
				}
			}
		}
		return 0, false
	})
}

// probeFailed: a background probe found the destination not answering.
// Probes run only while the member takes no data; on a closed breaker
// failure_threshold consecutive failed probes open it, as failed batches do.
// It reports whether this probe opened the breaker.
func (b *breaker) probeFailed() (opened bool) {
	return b.onProbe(func(s breakerState) (breakerState, bool) {
		b.lastProbeFail = true
		switch s {
		case stateClosed:
			if b.probesWrong {
				return 0, false // it took batches while its probe failed
			}
			b.probeFailures++
			return stateOpen, b.failures+b.probeFailures >= b.cfg.FailureThreshold
		case stateHalfOpen:
			return stateOpen, true
		}
		return 0, false
	})
}

func (b *breaker) onProbe(apply func(breakerState) (to breakerState, change bool)) (opened bool) {
	b.mu.Lock()
	from := ticket(b.current.Load()).state()
	to, change := apply(from)
	if change {
		b.setStateLocked(to)
		b.viaProbe = to == stateHalfOpen
	}
	b.mu.Unlock()
	if change {
		b.onChange(from, to, true)
	}
	return change && to == stateOpen
}

// setStateLocked moves to a new state in a new generation and returns its
// ticket.
func (b *breaker) setStateLocked(to breakerState) ticket {
	b.failures, b.probeFailures, b.successes = 0, 0, 0
	b.probing, b.triedLive, b.viaProbe = false, false, false
	switch to {
	case stateOpen:
		period := b.cfg.OpenDuration
		if b.lastOpenPeriod > 0 {
			period = time.Duration(float64(b.lastOpenPeriod) * b.cfg.BackoffMultiplier)
		}
		period = min(period, b.cfg.MaxOpenDuration)
		b.lastOpenPeriod = period
		now := b.now()
		b.openUntil.Store(now.Add(period).UnixNano())
		b.escapeAt.Store(now.Add(b.cfg.MaxOpenDuration).UnixNano())
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
