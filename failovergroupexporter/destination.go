// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// destination is what the group's instances of one member share: the
// collector runs one group instance per signal, and each builds its own
// exporter of the member, but they all write to the same ClickHouse or
// Kafka. One breaker and one prober per destination: an outage is noticed
// once, not three times, and probed by one prober.
//
// The tables (or topics) of one signal can still fail on their own: a
// refusal of the data as bad (a schema error on one table) is not charged to
// the breaker, so it never opens the others; a member whose start failed
// for one signal is unavailable for that signal only.
type destination struct {
	key     destinationKey
	breaker *breaker
	// lastTaken is when the member last took data (UnixNano), refreshed at
	// most every takenEvery: a member that took data within
	// probe::interval needs no probe.
	lastTaken  atomic.Int64
	takenEvery int64

	mu          sync.Mutex
	refs        int
	watchers    []destinationWatcher
	prober      *prober
	proberBuilt bool
}

// destinationKey: the group's config (one per group in a collector, shared
// by its signal instances) and the member's position in it.
type destinationKey struct {
	cfg   *Config
	index int
}

// destinationWatcher is one group instance's member (member[T] of any
// signal) as the destination sees it.
type destinationWatcher interface {
	// breakerChanged publishes the new state and the group's status.
	breakerChanged()
	// started: the member's exporter is started for this signal.
	started() bool
	// wake retries a failed member start now (a probe saw the destination
	// answer).
	wake()
	// signalName is the watcher's signal, e.g. "traces".
	signalName() string
}

var destinations = struct {
	sync.Mutex
	m map[destinationKey]*destination
}{m: map[destinationKey]*destination{}}

// joinDestination returns the member's shared destination, creating it
// (and its breaker) for the first of the group's instances.
func joinDestination(cfg *Config, index int, logger *zap.Logger, w destinationWatcher) *destination {
	key := destinationKey{cfg: cfg, index: index}
	destinations.Lock()
	defer destinations.Unlock()
	d, ok := destinations.m[key]
	if !ok {
		d = &destination{key: key, takenEvery: int64(cfg.Probe.Interval / 4)}
		member := cfg.Members[index].id.String()
		d.breaker = newBreaker(cfg.CircuitBreaker, cfg.clock(), func(from, to breakerState, byProbe bool) {
			logBreakerChange(logger, member, d.breaker, from, to, byProbe)
			d.notify()
		})
		destinations.m[key] = d
	}
	d.mu.Lock()
	d.refs++
	d.watchers = append(d.watchers, w)
	d.mu.Unlock()
	return d
}

// leave drops one instance; the last one stops the prober.
func (d *destination) leave(w destinationWatcher) {
	destinations.Lock()
	d.mu.Lock()
	d.refs--
	for i, x := range d.watchers {
		if x == w {
			d.watchers = append(d.watchers[:i], d.watchers[i+1:]...)
			break
		}
	}
	last := d.refs == 0
	p := d.prober
	if last {
		d.prober = nil
		delete(destinations.m, d.key)
	}
	d.mu.Unlock()
	destinations.Unlock()
	if last && p != nil {
		p.stop()
	}
}

// watching returns the instances now watching the destination.
func (d *destination) watching() []destinationWatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]destinationWatcher(nil), d.watchers...)
}

func (d *destination) notify() {
	for _, w := range d.watching() {
		w.breakerChanged()
	}
}

// taken records a success at `at`. The shared word is written only when it
// is stale, so concurrent batches mostly just read it.
func (d *destination) taken(at time.Time) {
	t := at.UnixNano()
	if t-d.lastTaken.Load() > d.takenEvery {
		d.lastTaken.Store(t)
	}
}

// needsProbe: the member takes no data now. Its breaker is not closed, it
// is not started for some signal, or it took nothing within the interval
// (a standby, or an idle primary).
func (d *destination) needsProbe(now time.Time, interval time.Duration) bool {
	if d.breaker.state() != stateClosed {
		return true
	}
	for _, w := range d.watching() {
		if !w.started() {
			return true
		}
	}
	return now.UnixNano()-d.lastTaken.Load() >= int64(interval)
}

// logBreakerChange logs a state change once per destination. A breaker
// opened by probes was already announced by the probe's own warning.
func logBreakerChange(logger *zap.Logger, member string, b *breaker, from, to breakerState, byProbe bool) {
	fields := []zap.Field{zap.String("member", member), zap.String("from", from.String()), zap.String("to", to.String())}
	switch {
	case to == stateOpen && byProbe && from == stateClosed:
		logger.Info("Member circuit breaker opened after failed probes: the member is skipped, its data goes to the next member", fields...)
	case to == stateOpen:
		logger.Warn("Member circuit breaker opened: the member is skipped, its data goes to the next member",
			append(fields, zap.Duration("open_for", b.openPeriod()))...)
	case to == stateHalfOpen && byProbe:
		logger.Info("Member answered a probe: the next batch goes to it", fields...)
	case to == stateHalfOpen:
		logger.Info("Member circuit breaker half-open: probing the member", fields...)
	case to == stateClosed:
		logger.Info("Member circuit breaker closed: the member takes data again", fields...)
	}
}

// startProber starts the destination's prober once, built by the first
// instance to start; build returns nil for a member with no probe.
func (d *destination) startProber(build func() *prober) {
	d.mu.Lock()
	if d.proberBuilt {
		d.mu.Unlock()
		return
	}
	d.proberBuilt = true
	d.mu.Unlock()
	p := build()
	if p == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == 0 {
		p.probe.close() // every instance shut down meanwhile
		return
	}
	d.prober = p
	p.start()
}
