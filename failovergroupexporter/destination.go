// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// destination is what the group's instances of one member share: the
// collector runs one group instance per signal, and each builds its own
// exporter of the member, but they all write to the same ClickHouse server.
// One breaker per destination: an outage is noticed once, not three times.
// Kafka topics fail on their own (one missing topic must not hold the
// others back), so a kafka member is one destination per topic; all the
// destinations of a member share one prober (memberProber), which checks
// them with one request.
//
// What fails per signal stays per signal: a refusal of the data as bad (a
// schema error on one table) is never charged to the breaker, and a member
// whose start failed for one signal is unavailable for that signal only.
type destination struct {
	key     destinationKey
	breaker *breaker
	// lastTaken is when the member last took data (UnixNano), refreshed at
	// most every takenEvery: a member that took data within
	// probe::interval needs no probe.
	lastTaken  atomic.Int64
	takenEvery int64
	// Owned by the prober goroutine. probeFailing: a streak of failed
	// probes was announced; probeFailed: a probe failed since the last
	// success.
	probeFailing, probeFailed bool

	mu       sync.Mutex
	watchers []destinationWatcher // the instances writing here
	slot     *proberSlot
}

// destinationKey: the group's config (one per group in a collector, shared
// by its signal instances), the member's position in it, and the part
// (a kafka topic; "" for other members).
type destinationKey struct {
	cfg   *Config
	index int
	part  string
}

// proberSlot is a member's prober and the destinations it probes.
type proberSlot struct {
	refs   int
	built  bool
	prober *prober
	dests  []*destination
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

// registry holds the destinations and prober slots of every group; one
// lock, taken when instances join and leave, and by the prober to list
// its destinations' watchers.
var registry = struct {
	sync.Mutex
	dests map[destinationKey]*destination
	slots map[destinationKey]*proberSlot // part ""
}{dests: map[destinationKey]*destination{}, slots: map[destinationKey]*proberSlot{}}

// joinDestination returns the member's shared destination for the part,
// creating it (and its breaker) for the first of the group's instances.
func joinDestination(cfg *Config, index int, part string, logger *zap.Logger, w destinationWatcher) *destination {
	key := destinationKey{cfg: cfg, index: index, part: part}
	registry.Lock()
	defer registry.Unlock()
	d, ok := registry.dests[key]
	if !ok {
		d = &destination{key: key, takenEvery: int64(cfg.Probe.Interval / 4)}
		fields := []zap.Field{zap.String("member", cfg.Members[index].id.String())}
		if part != "" {
			fields = append(fields, zap.String("topic", part))
		}
		d.breaker = newBreaker(cfg.CircuitBreaker, cfg.clock(), func(from, to breakerState, byProbe bool) {
			logBreakerChange(logger, fields, d.breaker, from, to, byProbe)
			d.notify()
		})
		registry.dests[key] = d
		slotKey := destinationKey{cfg: cfg, index: index}
		slot := registry.slots[slotKey]
		if slot == nil {
			slot = &proberSlot{}
			registry.slots[slotKey] = slot
		}
		slot.dests = append(slot.dests, d)
		d.slot = slot
	}
	d.slot.refs++
	d.mu.Lock()
	d.watchers = append(d.watchers, w)
	d.mu.Unlock()
	return d
}

// leave drops one instance; the last one of the member stops its prober.
func (d *destination) leave(w destinationWatcher) {
	registry.Lock()
	d.mu.Lock()
	if i := slices.Index(d.watchers, w); i >= 0 {
		d.watchers = slices.Delete(d.watchers, i, i+1)
	}
	if len(d.watchers) == 0 {
		delete(registry.dests, d.key)
	}
	d.mu.Unlock()
	slot := d.slot
	slot.refs--
	var stop *prober
	if slot.refs == 0 {
		stop, slot.prober = slot.prober, nil
		delete(registry.slots, destinationKey{cfg: d.key.cfg, index: d.key.index})
	}
	registry.Unlock()
	if stop != nil {
		stop.stop()
	}
}

// startProber starts the member's prober once, built by the first instance
// to start; build returns nil for a member with no probe.
func (d *destination) startProber(build func(dests []*destination) *prober) {
	registry.Lock()
	slot := d.slot
	if slot.built {
		registry.Unlock()
		return
	}
	slot.built = true
	dests := slices.Clone(slot.dests)
	registry.Unlock()
	p := build(dests)
	if p == nil {
		return
	}
	registry.Lock()
	defer registry.Unlock()
	if slot.refs == 0 {
		p.probe.close() // every instance shut down meanwhile
		return
	}
	slot.prober = p
	p.start()
}

// watching returns the instances now watching the destination.
func (d *destination) watching() []destinationWatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.watchers)
}

func (d *destination) notify() {
	for _, w := range d.watching() {
		w.breakerChanged()
	}
}

// allStarted: no instance writing to the destination is failing to start.
func (d *destination) allStarted() bool {
	for _, w := range d.watching() {
		if !w.started() {
			return false
		}
	}
	return true
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
	if d.breaker.state() != stateClosed || !d.allStarted() {
		return true
	}
	return now.UnixNano()-d.lastTaken.Load() >= int64(interval)
}

// logBreakerChange logs a state change once per destination. A breaker
// opened by probes was announced by the probe's own warning.
func logBreakerChange(logger *zap.Logger, fields []zap.Field, b *breaker, from, to breakerState, byProbe bool) {
	fields = append(slices.Clip(fields), zap.String("from", from.String()), zap.String("to", to.String()))
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
