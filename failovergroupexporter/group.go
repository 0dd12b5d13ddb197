// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
)

// group is one failover_group instance for one signal.
type group[T any] struct {
	id      component.ID
	idStr   string // id.String(), built once for DLQ stamps
	cfg     *Config
	sig     signal[T]
	members []*member[T]
	tb      *metadata.TelemetryBuilder
	// dlqTopics are the topics the group's dead-letter kafka members write
	// for this signal: data read from one of them is replayed DLQ data.
	dlqTopics []string
	// groupAdd: the group's attributes, for its own (not per member) metrics.
	groupAdd []metric.AddOption
	attrs    []attribute.KeyValue
	logger   *zap.Logger
	mutates  bool
	// takesTokens: a member takes deduplication tokens, so the group gives
	// every batch one (dedup_token.go).
	takesTokens bool
	// regroups: the group's own queue batches (sending_queue::batch),
	// merging and splitting requests before push: tokens data came with
	// are not used (the loop guard converter refuses such a group in a
	// replay pipeline).
	regroups   bool
	exhaustion *exhaustionLog
	// primaryFailedAt is when the first member last failed an attempt
	// transiently (unix ns), and unregisterLive ends the group's part in
	// the collector's live state (live_state.go).
	primaryFailedAt atomic.Int64
	unregisterLive  func()

	statusMu   sync.Mutex
	host       component.Host
	stopping   bool // Shutdown began: the collector reports from here on
	reported   bool
	lastStatus string
}

func newGroup[T any](ctx context.Context, set exporter.Settings, cfg *Config, sig signal[T]) (*group[T], error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	g := &group[T]{id: set.ID, idStr: set.ID.String(), cfg: cfg, sig: sig, tb: tb, logger: set.Logger}
	g.attrs = groupAttributes(g.idStr, sig.name)
	g.groupAdd = []metric.AddOption{withAttrs(g.attrs)}
	g.exhaustion = newExhaustionLog(set.Logger, cfg.clock())
	g.regroups = cfg.QueueConfig.HasValue() && cfg.QueueConfig.Get().Batch.HasValue()
	for i := range cfg.Members {
		mc := &cfg.Members[i]
		m, err := g.newMember(ctx, set, i, mc)
		if err != nil {
			_ = g.Shutdown(ctx)
			return nil, fmt.Errorf("members[%d] %s: %w", i, mc.id, err)
		}
		g.members = append(g.members, m)
		if mc.deadLetter && cfg.DeadLetterBatch.Linger > 0 {
			m.park = newParkBatcher(g, m, cfg.DeadLetterBatch)
		}
		if t, ok := mc.facts.topics[sig.name]; ok && mc.deadLetter {
			g.dlqTopics = append(g.dlqTopics, t)
		}
		g.mutates = g.mutates || m.first.mutates
		g.takesTokens = g.takesTokens || m.takesTokens
	}
	return g, nil
}

// Start starts every member in the background and returns at once: a member
// whose destination is down, or hangs, must not stop or delay the collector.
func (g *group[T]) Start(_ context.Context, host component.Host) error {
	g.statusMu.Lock()
	g.host = host
	g.statusMu.Unlock()
	g.unregisterLive = g.registerLive()
	for _, m := range g.members {
		m.start(memberHost{host: host, logger: m.logger})
		m.dest.startProber(func(dests []*destination) *prober { return g.newProber(m, dests) })
	}
	return nil
}

// newProber builds the prober of a member's destinations, once for all the
// group's signal instances (the first to start builds it).
func (g *group[T]) newProber(m *member[T], dests []*destination) *prober {
	var signals []string
	for _, d := range dests {
		for _, w := range d.watching() {
			signals = append(signals, w.signalName())
		}
	}
	pick := probeFor
	if g.cfg.probes != nil {
		pick = g.cfg.probes
	}
	p, how := pick(&m.cfg, signals)
	if p == nil {
		m.logger.Info("Member has no background probe", zap.String("probe", how))
		return nil
	}
	m.logger.Info("Member is probed in the background while it takes no data",
		zap.String("probe", how), zap.Duration("interval", g.cfg.Probe.Interval))
	return newProber(dests, p, g.cfg.Probe, m.logger, newProbeTelemetry(g.tb, g.idStr, m.name))
}

// memberHost is the host members are started with. It gives them the
// collector's extensions (authenticators, storage) but keeps their component
// status to themselves: started with the group's own host, a member would
// report as the group. The kafka exporter reports OK on every broker
// connection, which would hide a degraded group (primary open) from the
// health check, and a recoverable error while only the DLQ broker is down;
// a member's fatal error event would stop the whole collector. The group
// reports its own status from its members' states (reportStatus).
type memberHost struct {
	host   component.Host
	logger *zap.Logger
}

var _ componentstatus.Reporter = memberHost{}

func (h memberHost) GetExtensions() map[component.ID]component.Component {
	return h.host.GetExtensions()
}

func (h memberHost) Report(ev *componentstatus.Event) {
	h.logger.Debug("Member status event (the group reports its own status)",
		zap.String("status", ev.Status().String()), zap.Error(ev.Err()))
}

// Shutdown stops every member, each created instance exactly once.
func (g *group[T]) Shutdown(ctx context.Context) error {
	// The shared breaker may still change (other signal instances, the
	// prober): this instance's status is the collector's to report now.
	g.statusMu.Lock()
	g.stopping = true
	g.statusMu.Unlock()
	if g.unregisterLive != nil {
		g.unregisterLive()
	}
	for _, m := range g.members {
		if m.park != nil {
			m.park.shutdown() // pending records go to their member first
		}
	}
	var errs []error
	for _, m := range g.members {
		errs = append(errs, m.shutdown(ctx))
	}
	if g.tb != nil {
		g.tb.Shutdown()
	}
	return errors.Join(errs...)
}

// Capabilities: the group mutates data if any member does, so that the
// pipeline hands it a batch no other consumer shares.
func (g *group[T]) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: g.mutates}
}

func (g *group[T]) onAvailabilityChange(m *member[T]) {
	m.publishState()
	g.reportStatus()
}

// reportStatus reflects the group in component status, and so in the
// health check (README "Health"). The collector's statuses have no
// "degraded": a status of error must mean the group cannot deliver, or a
// readiness check on it would take a collector out of service while it
// parks data in the DLQ exactly as designed. So:
//   - no member can take data (each is open or not started):
//     StatusRecoverableError, data is refused;
//   - some member cannot (a primary failing over, a standby failing its
//     probes): StatusOK with the error saying so and the attribute
//     failover_group.health = degraded;
//   - every member is fine: StatusOK, failover_group.health = healthy.
func (g *group[T]) reportStatus() {
	g.statusMu.Lock()
	defer g.statusMu.Unlock()
	if g.host == nil || g.stopping || len(g.members) == 0 {
		return
	}
	var down []string
	working := 0
	for _, m := range g.members {
		select {
		case <-m.firstStart:
		default:
			return // still starting: the collector reports that itself
		}
		switch st := m.state(); st {
		case stateClosed:
			working++
		case stateUnavailable:
			down = append(down, fmt.Sprintf("member %s is not started", m.id))
		default:
			down = append(down, fmt.Sprintf("member %s circuit breaker is %s", m.id, st))
			if st == stateHalfOpen {
				working++ // it takes the next batch
			}
		}
	}
	desc := strings.Join(down, "; ")
	if g.reported && desc == g.lastStatus {
		return
	}
	g.reported, g.lastStatus = true, desc
	var event *componentstatus.Event
	switch {
	case len(down) == 0:
		event = componentstatus.NewEvent(componentstatus.StatusOK, componentstatus.WithAttributes(healthAttributes("healthy")))
	case working > 0:
		event = componentstatus.NewEvent(componentstatus.StatusOK,
			componentstatus.WithError(fmt.Errorf("%s degraded: %s; data goes to the next available member", g.id, desc)),
			componentstatus.WithAttributes(healthAttributes("degraded")))
	default:
		event = componentstatus.NewEvent(componentstatus.StatusRecoverableError,
			componentstatus.WithError(fmt.Errorf("%s: no member can take data: %s; data is refused until one recovers", g.id, desc)),
			componentstatus.WithAttributes(healthAttributes("unavailable")))
	}
	componentstatus.ReportStatus(g.host, event)
}

// healthAttributes are the status event's attributes (healthcheckv2 shows
// them with `include_attributes`).
func healthAttributes(health string) pcommon.Map {
	m := pcommon.NewMap()
	m.PutStr("failover_group.health", health)
	return m
}
