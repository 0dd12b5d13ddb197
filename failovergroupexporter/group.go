// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
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
	groupAdd   []metric.AddOption
	attrs      []attribute.KeyValue
	logger     *zap.Logger
	mutates    bool
	exhaustion *exhaustionLog

	statusMu   sync.Mutex
	host       component.Host
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
	g.exhaustion = newExhaustionLog(set.Logger, g.now())
	for i := range cfg.Members {
		mc := &cfg.Members[i]
		m, err := g.newMember(ctx, set, i, mc)
		if err != nil {
			_ = g.Shutdown(ctx)
			return nil, fmt.Errorf("members[%d] %s: %w", i, mc.id, err)
		}
		g.members = append(g.members, m)
		if t, ok := mc.facts.topics[sig.name]; ok && mc.deadLetter {
			g.dlqTopics = append(g.dlqTopics, t)
		}
		g.mutates = g.mutates || m.first.mutates
	}
	return g, nil
}

// now is the group's clock.
func (g *group[T]) now() func() time.Time {
	if g.cfg.now != nil {
		return g.cfg.now
	}
	return time.Now
}

// Start starts every member in the background and returns at once: a member
// whose destination is down, or hangs, must not stop or delay the collector.
func (g *group[T]) Start(_ context.Context, host component.Host) error {
	g.statusMu.Lock()
	g.host = host
	g.statusMu.Unlock()
	for _, m := range g.members {
		m.start(memberHost{host: host, logger: m.logger})
	}
	return nil
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

func (g *group[T]) onBreakerChange(m *member[T], from, to breakerState) {
	m.publishState()
	fields := []zap.Field{zap.String("member", m.id.String()), zap.String("from", from.String()), zap.String("to", to.String())}
	switch to {
	case stateOpen:
		g.logger.Warn("Member circuit breaker opened: the member is skipped, its data goes to the next member",
			append(fields, zap.Duration("open_for", m.breaker.openPeriod()))...)
	case stateHalfOpen:
		g.logger.Info("Member circuit breaker half-open: probing the member", fields...)
	case stateClosed:
		g.logger.Info("Member circuit breaker closed: the member takes data again", fields...)
	}
	g.reportStatus()
}

func (g *group[T]) onAvailabilityChange(m *member[T]) {
	m.publishState()
	g.reportStatus()
}

// reportStatus reflects a degraded group in component status (and so in the
// health check): recoverable error while the primary is not taking data.
func (g *group[T]) reportStatus() {
	g.statusMu.Lock()
	defer g.statusMu.Unlock()
	if g.host == nil || len(g.members) == 0 {
		return
	}
	var event *componentstatus.Event
	desc := "ok"
	primary := g.members[0]
	select {
	case <-primary.firstStart:
	default:
		return // still starting: the collector reports that itself
	}
	switch {
	case primary.ready.Load() == nil:
		desc = fmt.Sprintf("primary member %s is not started", primary.id)
	case primary.breaker.state() != stateClosed:
		desc = fmt.Sprintf("primary member %s circuit breaker is %s", primary.id, primary.breaker.state())
	}
	if desc == g.lastStatus {
		return
	}
	g.lastStatus = desc
	if desc == "ok" {
		event = componentstatus.NewEvent(componentstatus.StatusOK)
	} else {
		event = componentstatus.NewRecoverableErrorEvent(fmt.Errorf("%s degraded: %s; data goes to the next available member", g.id, desc))
	}
	componentstatus.ReportStatus(g.host, event)
}
