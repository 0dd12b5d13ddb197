// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
)

// member is one member of a group instance (one signal): the exporter it
// supervises, built from the member's own factory (member_start.go), its
// circuit breaker and its telemetry.
type member[T any] struct {
	cfg   MemberConfig
	index int          // position in the group's members list
	id    component.ID // as configured, e.g. clickhouse/live
	name  string       // id.String(), built once for stamps and errors
	// ownDeadline: the member's exporter bounds every call within
	// attempt_timeout itself (see ownsDeadline), so a started member needs
	// no deadline of the group's.
	ownDeadline bool
	// outlivesContext: the member's call may go on past its context
	// (typesOutlivingTheirContext); the group ends the attempt without it.
	outlivesContext bool
	// takesTokens: the member's writes carry the batch's deduplication
	// token (typesTakingTokens) when the group gives tokens.
	takesTokens bool
	// writesSeveral: the member writes one batch in several inserts that
	// succeed or fail on their own (typesWritingSeveral): a refusal may
	// come after part of the batch was written, so it is not isolated.
	writesSeveral bool
	// tableSetup makes a clickhouse member's tables honor tokens once it
	// has started (dedup_schema.go); nil for other members.
	tableSetup *tableSetup
	// recordLimit is the most bytes one record of the member can hold
	// (kafka: producer::max_message_bytes); 0 when there is no such limit.
	// encodingFactor is how much larger than OTLP protobuf its encoding of
	// this signal can be (send.go).
	recordLimit    int
	encodingFactor int
	signal         string
	// park merges untried batches into larger records (park_batch.go);
	// nil unless the member is a dead letter and dead_letter_batch is on.
	park *parkBatcher[T]
	// dest is what the group's instances of this member share (one per
	// signal): the breaker (breaker is dest.breaker) and the prober.
	dest    *destination
	breaker *breaker
	tel     *memberTelemetry
	logger  *zap.Logger
	// stamps caches the DLQ stamp given to data after this member missed.
	stamps  stampCache
	stateMu sync.Mutex // serializes publishState

	// Supervision of the member's exporter (member_start.go).
	settings exporter.Settings
	create   createFunc[T]
	startCfg MemberStartConfig
	// firstWait bounds how long batches wait for the member's first start
	// (attempt_timeout), counted from the group's Start.
	firstWait time.Duration
	// onAvailability is called when the exporter becomes ready or its
	// start fails; onStatus when the shared breaker changed state.
	onAvailability func()
	onStatus       func()
	// wakeCh: a probe saw the destination answer; a failed start is
	// retried now instead of after its backoff.
	wakeCh chan struct{}
	first  *memberExporter[T] // created with the group, started in Start

	ready      atomic.Pointer[memberExporter[T]]
	firstStart chan struct{} // closed once the first Start attempt has ended
	waitUntil  atomic.Int64  // UnixNano: batches wait for the first start until then

	mu        sync.Mutex
	closed    bool
	exporters []*memberExporter[T] // every exporter ever created, for shutdown
	cancel    context.CancelFunc
	done      chan struct{}
}

// memberExporter is one created exporter of a member. A member whose Start
// failed is shut down and replaced by a new one (calling Start twice on the
// same exporter leaks its connections), so a member may own several in turn.
type memberExporter[T any] struct {
	comp    component.Component
	consume func(context.Context, T) error
	mutates bool

	shutdownOnce sync.Once
	shutdownErr  error
}

// shutdown calls the exporter's Shutdown exactly once, whatever path gets
// there first (a failed start, the group's shutdown).
func (e *memberExporter[T]) shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() { e.shutdownErr = e.comp.Shutdown(ctx) })
	return e.shutdownErr
}

// createFunc builds one exporter of a member for the group's signal.
type createFunc[T any] func(context.Context, exporter.Factory, exporter.Settings, component.Config) (*memberExporter[T], error)

// newMember creates the member and its first exporter (no I/O: `validate`
// creates every component too).
func (g *group[T]) newMember(ctx context.Context, set exporter.Settings, index int, mc *MemberConfig) (*member[T], error) {
	logger := set.Logger.With(zap.String("member", mc.id.String()))
	memberSet := exporter.Settings{
		ID:                memberID(set.ID, mc.id),
		TelemetrySettings: set.TelemetrySettings,
		BuildInfo:         set.BuildInfo,
	}
	memberSet.Logger = logger.WithOptions(demoteExportFailures())
	m := &member[T]{
		cfg:             *mc,
		index:           index,
		id:              mc.id,
		name:            mc.id.String(),
		ownDeadline:     ownsDeadline(mc, g.cfg.AttemptTimeout),
		outlivesContext: mc.factory != nil && typesOutlivingTheirContext[mc.factory.Type()],
		takesTokens:     g.cfg.Deduplication.Tokens && mc.factory != nil && typesTakingTokens[mc.factory.Type()] && !mc.facts.ownQueue,
		writesSeveral:   mc.factory != nil && typesWritingSeveral[mc.factory.Type()][g.sig.name],
		recordLimit:     mc.facts.recordLimit,
		encodingFactor:  encodingFactor(mc.facts.encodings[g.sig.name]),
		tel:             newMemberTelemetry(g.tb, g.attrs, mc.id.String()),
		logger:          logger,
		settings:        memberSet,
		create:          g.sig.create,
		startCfg:        g.cfg.MemberStart,
		signal:          g.sig.name,
		firstWait:       g.cfg.AttemptTimeout,
		firstStart:      make(chan struct{}),
		wakeCh:          make(chan struct{}, 1),
		done:            make(chan struct{}),
	}
	if cfg, ok := mc.cfg.(*clickhouseexporter.Config); ok && m.takesTokens {
		m.tableSetup = newTableSetup(cfg, g.sig.name, g.cfg.Deduplication)
	}
	m.onAvailability = func() { g.onAvailabilityChange(m) }
	m.onStatus = func() {
		g.reportStatus()
		if st := m.state(); !mc.deadLetter && (st == stateClosed || st == stateHalfOpen) {
			g.flushParked(m)
		}
	}
	first, err := m.newExporter(ctx)
	if err != nil {
		return nil, err
	}
	m.dest = joinDestination(g.cfg, index, destinationPart(mc, g.sig.name), g.logger, m)
	m.breaker = m.dest.breaker
	m.first = first
	m.tel.state(stateUnavailable)
	return m, nil
}

// memberID keeps a member's own telemetry and any storage keys apart from a
// top-level exporter of the same name: clickhouse/live in
// failover_group/ingest runs as clickhouse/ingest.live.
func memberID(group, member component.ID) component.ID {
	groupName := group.Name()
	if groupName == "" {
		groupName = group.Type().String()
	}
	memberName := member.Name()
	if memberName == "" {
		memberName = member.Type().String()
	}
	return component.NewIDWithName(member.Type(), groupName+"."+memberName)
}

// publishState sets the member state gauge from the member's current state.
// State-change callbacks run outside the breaker's lock and may run out of
// order; reading the state here, under the member's own lock, instead of
// trusting the callback's `to`, makes the last write the current state.
func (m *member[T]) publishState() {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	m.tel.state(m.state())
}

// breakerChanged, started, wake, signalName: the member as its shared
// destination sees it (destinationWatcher).
func (m *member[T]) breakerChanged() {
	m.publishState()
	m.onStatus()
}

func (m *member[T]) started() bool { return m.ready.Load() != nil }

func (m *member[T]) wake() {
	select {
	case m.wakeCh <- struct{}{}:
	default:
	}
}

func (m *member[T]) signalName() string { return m.signal }

// state is the breaker's state, or unavailable while no exporter is started.
func (m *member[T]) state() breakerState {
	if m.ready.Load() == nil {
		return stateUnavailable
	}
	return m.breaker.state()
}
