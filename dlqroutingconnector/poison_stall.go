// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// Why replayed data the replay pipelines refused as bad cannot be kept.
var (
	errPoisonFailed      = errors.New("the poison pipelines failed")
	errNoPoisonPipelines = errors.New("poison_pipelines is empty")
)

// partitionOf names the DLQ partition a request was read from (the kafka
// receiver's metadata): "" when it did not come from a kafka receiver.
func partitionOf(md client.Metadata) string {
	return strings.Join(md.Get(metaKafkaTopic), ",") + "/" + strings.Join(md.Get(metaKafkaPartition), ",")
}

// offsetOf is the request's record offset, "" when unknown.
func offsetOf(md client.Metadata) string { return strings.Join(md.Get(metaKafkaOffset), ",") }

// stalledRecord is a record whose refused part could not be kept: the part
// and why it was refused, so that when the receiver delivers the record again
// only that part is retried into the poison pipelines. The replay pipelines,
// which took the rest already, are not asked again: every retry would write
// the rest once more.
type stalledRecord[D any] struct {
	offset  string
	refused D
	verdict errclass.Verdict
}

// poisonStall tracks the DLQ partitions whose replay is stalled because
// replayed data the replay pipelines refused as bad cannot be kept. While it
// cannot, the connector returns a retryable error, so that the kafka receiver
// neither commits nor skips the record: the partition stops replaying until
// the poison pipelines take it, or the replay takes the whole record (nothing
// is lost). Such a stall must be loud, not a silent halt: component status
// (recoverable error while any partition is stalled), the
// dlq_routing_poison_stalled gauge (stalled partitions), and one log line
// when a partition stalls and one when it replays again, never one per retry.
type poisonStall[D any] struct {
	id       component.ID
	logger   *zap.Logger
	tb       *metadata.TelemetryBuilder
	gaugeOpt []metric.RecordOption
	// count is the number of stalled partitions: one atomic load tells the
	// replay path that nothing is stalled.
	count atomic.Int64

	mu      sync.Mutex
	host    component.Host
	stalled map[string]stalledRecord[D]
}

func newPoisonStall[D any](id component.ID, logger *zap.Logger, tb *metadata.TelemetryBuilder, signal attribute.KeyValue) *poisonStall[D] {
	return &poisonStall[D]{
		id:       id,
		logger:   logger,
		tb:       tb,
		gaugeOpt: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(signal))},
		stalled:  map[string]stalledRecord[D]{},
	}
}

// start keeps the host to report status to.
func (p *poisonStall[D]) start(ctx context.Context, host component.Host) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.host = host
	p.tb.DlqRoutingPoisonStalled.Record(ctx, 0, p.gaugeOpt...)
}

// pending returns the refused part of the record md names, kept when its
// poison failed, if the receiver delivers that record again.
func (p *poisonStall[D]) pending(md client.Metadata) (stalledRecord[D], bool) {
	if p.count.Load() == 0 {
		return stalledRecord[D]{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.stalled[partitionOf(md)]
	if !ok || s.offset == "" || s.offset != offsetOf(md) {
		return stalledRecord[D]{}, false
	}
	return s, true
}

// failing: the record md names stalls its partition; refused is its part
// that could not be kept (why: errPoisonFailed or errNoPoisonPipelines; err:
// the whole story, for the log).
func (p *poisonStall[D]) failing(ctx context.Context, md client.Metadata, refused D, verdict errclass.Verdict, why, err error) {
	part := partitionOf(md)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, already := p.stalled[part]
	p.stalled[part] = stalledRecord[D]{offset: offsetOf(md), refused: refused, verdict: verdict}
	if already {
		return
	}
	p.count.Store(int64(len(p.stalled)))
	p.tb.DlqRoutingPoisonStalled.Record(ctx, int64(len(p.stalled)), p.gaugeOpt...)
	p.logger.Error("Replayed data the replay pipelines refused as bad cannot be kept: its record is not committed, and its partition stops replaying until it can be",
		append(recordFields(md), zap.String("why", why.Error()), zap.Error(err))...)
	if len(p.stalled) == 1 {
		p.report(componentstatus.NewRecoverableErrorEvent(fmt.Errorf("%s: replay stalled: refused replay data cannot be kept (%w); see the log", p.id, why)))
	}
}

// ok: the record md names was replayed, or its refused part kept: its
// partition replays again.
func (p *poisonStall[D]) ok(ctx context.Context, md client.Metadata) {
	if p.count.Load() == 0 {
		return
	}
	part := partitionOf(md)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, stalled := p.stalled[part]; !stalled {
		return
	}
	delete(p.stalled, part)
	p.count.Store(int64(len(p.stalled)))
	p.tb.DlqRoutingPoisonStalled.Record(ctx, int64(len(p.stalled)), p.gaugeOpt...)
	p.logger.Info("Refused replay data is kept again: the stalled partition replays again", recordFields(md)...)
	if len(p.stalled) == 0 {
		p.report(componentstatus.NewEvent(componentstatus.StatusOK))
	}
}

func (p *poisonStall[D]) report(ev *componentstatus.Event) {
	if p.host != nil {
		componentstatus.ReportStatus(p.host, ev)
	}
}
