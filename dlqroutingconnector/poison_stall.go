// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
)

// Why replayed data the replay pipelines refused as bad cannot be kept.
var (
	errPoisonFailed      = errors.New("the poison pipelines failed")
	errNoPoisonPipelines = errors.New("poison_pipelines is empty")
)

// poisonStall tracks whether data the replay pipelines refused as bad can be
// kept. While it cannot, the connector returns a retryable error, so that
// the kafka receiver neither commits nor skips the record: the record's
// partition stops replaying until the poison pipelines take it (nothing is
// lost). Such a stall must be loud, not a silent halt: component status
// (recoverable error), the dlq_routing_poison_stalled gauge, and one log
// line when it starts and one when it ends, never one per retry.
type poisonStall struct {
	id       component.ID
	logger   *zap.Logger
	tb       *metadata.TelemetryBuilder
	gaugeOpt []metric.RecordOption

	mu      sync.Mutex
	host    component.Host
	stalled bool
}

func newPoisonStall(id component.ID, logger *zap.Logger, tb *metadata.TelemetryBuilder, signal attribute.KeyValue) *poisonStall {
	return &poisonStall{
		id:       id,
		logger:   logger,
		tb:       tb,
		gaugeOpt: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(signal))},
	}
}

// start keeps the host to report status to.
func (p *poisonStall) start(ctx context.Context, host component.Host) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.host = host
	p.tb.DlqRoutingPoisonStalled.Record(ctx, 0, p.gaugeOpt...)
}

// failing: refused data could not be kept (why: errPoisonFailed or
// errNoPoisonPipelines; err: the whole story, for the log).
func (p *poisonStall) failing(ctx context.Context, why, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		return
	}
	p.stalled = true
	p.tb.DlqRoutingPoisonStalled.Record(ctx, 1, p.gaugeOpt...)
	p.logger.Error("Replayed data the replay pipelines refused as bad cannot be kept: its record is not committed, and its partition stops replaying until it can be",
		zap.String("why", why.Error()), zap.Error(err))
	p.report(componentstatus.NewRecoverableErrorEvent(fmt.Errorf("%s: replay stalled: refused replay data cannot be kept (%w); see the log", p.id, why)))
}

// ok: refused data was kept again.
func (p *poisonStall) ok(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		return
	}
	p.stalled = false
	p.tb.DlqRoutingPoisonStalled.Record(ctx, 0, p.gaugeOpt...)
	p.logger.Info("Refused replay data is kept in the poison pipelines again: the stalled partitions replay again")
	p.report(componentstatus.NewEvent(componentstatus.StatusOK))
}

func (p *poisonStall) report(ev *componentstatus.Event) {
	if p.host != nil {
		componentstatus.ReportStatus(p.host, ev)
	}
}
