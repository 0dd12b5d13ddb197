// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// Client metadata keys that the contrib kafka receiver (v0.155.0,
// contextWithMetadata) sets on every record; each record header becomes a
// key too.
const (
	metaKafkaTopic     = dlqmeta.KeyKafkaTopic
	metaKafkaPartition = "kafka.partition"
	metaKafkaOffset    = "kafka.offset"
)

// Routes and outcomes, indexes of the measurement options; their names are
// the values of the telemetry attributes.
const (
	routeReplay = iota
	routeDefault
	routePoison
	numRoutes
)

const (
	outcomeAccepted = iota
	outcomeTransient
	outcomePermanent
	numOutcomes
)

var (
	routeNames   = [numRoutes]string{"replay", "default", "poison"}
	outcomeNames = [numOutcomes]string{"accepted", "transient_error", "permanent_error"}
)

// signalConsumer is a consumer.Traces, consumer.Metrics or consumer.Logs.
type signalConsumer interface {
	Capabilities() consumer.Capabilities
}

// signalData is a ptrace.Traces, pmetric.Metrics or plog.Logs.
type signalData interface {
	IsReadOnly() bool
	MarkReadOnly()
}

// markReadOnly marks data read-only; data already marked is left alone, so
// that a batch other goroutines read is never written to.
func markReadOnly[D signalData](data D) {
	if !data.IsReadOnly() {
		data.MarkReadOnly()
	}
}

// signalOps is what the generic router needs to know about one signal: C is
// the consumer type (consumer.Traces...), D the data (ptrace.Traces...).
type signalOps[C signalConsumer, D signalData] struct {
	consume    func(C, context.Context, D) error
	count      func(D) int
	failedPart func(error) (D, bool)
}

// router holds the routing decision and the three routes' consumers, all
// resolved once at creation: the per-batch path only reads them.
type router[C signalConsumer, D signalData] struct {
	ops    signalOps[C, D]
	logger *zap.Logger
	id     component.ID

	topics    []string
	dlqHeader bool

	replay     C
	def        C
	poison     C
	hasDefault bool
	hasPoison  bool
	// protectReplayInput: poison pipelines are configured and a replay
	// consumer may mutate the data, so the data is marked read-only before
	// the replay pipelines get it (the fan-out then gives mutating
	// consumers a copy) and the poison pipelines receive it unchanged.
	protectReplayInput bool

	// pace holds replayed data back while the live side fails over and
	// caps its rate (replay_pace.go).
	pace *pacer

	telemetry *metadata.TelemetryBuilder
	// stall reports, once per change, the partitions whose permanently
	// rejected replay data cannot be kept (poison_stall.go).
	stall *poisonStall[D]
	// Measurement options built once: [route][outcome].
	routedOpts    [numRoutes][numOutcomes][]metric.AddOption
	unmatchedOpts []metric.AddOption
}

func newRouter[C signalConsumer, D signalData](
	set connector.Settings,
	cfg *Config,
	signal pipeline.Signal,
	consumerFor func(...pipeline.ID) (C, error),
	wired []pipeline.ID,
	ops signalOps[C, D],
) (*router[C, D], error) {
	replayIDs := ofSignal(cfg.ReplayPipelines, signal)
	defaultIDs := ofSignal(cfg.DefaultPipelines, signal)
	poisonIDs := ofSignal(cfg.PoisonPipelines, signal)
	if len(replayIDs) == 0 {
		return nil, fmt.Errorf("dlq_routing %q is used by %s pipelines but replay_pipelines lists no %s pipeline (it lists %v); add the %s pipeline that replayed data should go to, e.g. %s/replay",
			set.ID, signal, signal, cfg.ReplayPipelines, signal, signal)
	}

	resolve := func(key string, ids []pipeline.ID) (C, error) {
		var zero C
		for _, id := range ids {
			if !slices.Contains(wired, id) {
				return zero, fmt.Errorf("connector %q: pipeline %q in %s does not list this connector among its receivers; add %q to that pipeline's receivers or remove the pipeline from %s",
					set.ID, id, key, set.ID, key)
			}
		}
		c, err := consumerFor(ids...)
		if err != nil {
			return zero, fmt.Errorf("dlq_routing %q: %s: %w", set.ID, key, err)
		}
		return c, nil
	}

	r := &router[C, D]{
		ops:       ops,
		logger:    set.Logger,
		id:        set.ID,
		topics:    slices.Clone(cfg.Match.Topics),
		dlqHeader: cfg.Match.DLQHeader,
		pace:      newPacer(set.ID.String(), cfg.Replay, set.Logger),
	}
	var err error
	if r.replay, err = resolve("replay_pipelines", replayIDs); err != nil {
		return nil, err
	}
	if len(defaultIDs) > 0 {
		if r.def, err = resolve("default_pipelines", defaultIDs); err != nil {
			return nil, err
		}
		r.hasDefault = true
	}
	if len(poisonIDs) > 0 {
		if r.poison, err = resolve("poison_pipelines", poisonIDs); err != nil {
			return nil, err
		}
		r.hasPoison = true
		r.protectReplayInput = r.replay.Capabilities().MutatesData
	}

	for _, id := range wired {
		if !slices.Contains(replayIDs, id) && !slices.Contains(defaultIDs, id) && !slices.Contains(poisonIDs, id) {
			set.Logger.Warn("pipeline receives from dlq_routing but is in none of replay_pipelines, default_pipelines, poison_pipelines: it will get no data",
				zap.String("pipeline", id.String()))
		}
	}

	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("dlq_routing %q: telemetry: %w", set.ID, err)
	}
	r.telemetry = tb
	sig := attribute.String("otelcol.signal", signal.String())
	r.stall = newPoisonStall[D](set.ID, set.Logger, tb, sig)
	for route, routeName := range routeNames {
		for outcome, outcomeName := range outcomeNames {
			r.routedOpts[route][outcome] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("route", routeName), attribute.String("outcome", outcomeName), sig))}
		}
	}
	r.unmatchedOpts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(sig))}
	return r, nil
}

func ofSignal(ids []pipeline.ID, signal pipeline.Signal) []pipeline.ID {
	var out []pipeline.ID
	for _, id := range ids {
		if id.Signal() == signal {
			out = append(out, id)
		}
	}
	return out
}

func (r *router[C, D]) shutdown() {
	r.pace.shutdown()
	r.telemetry.Shutdown()
}

// isReplay reports whether the request's client metadata says the data was
// replayed from the DLQ: ANY configured criterion matches.
func (r *router[C, D]) isReplay(md client.Metadata) bool {
	return dlqmeta.Replayed(md, r.topics, r.dlqHeader)
}

// route sends one request's data, whole, to one route. The client metadata
// is per request, so a batch is never split and never copied here; ctx goes
// to the consumers unchanged, DLQ metadata included.
func (r *router[C, D]) route(ctx context.Context, data D) error {
	md := client.FromContext(ctx).Metadata
	if r.isReplay(md) {
		return r.routeReplay(ctx, md, data)
	}
	n := int64(r.ops.count(data))
	if !r.hasDefault {
		r.telemetry.DlqRoutingUnmatchedItems.Add(ctx, n, r.unmatchedOpts...)
		return consumererror.NewPermanent(r.unmatchedError(md))
	}
	err := r.ops.consume(r.def, ctx, data)
	r.telemetry.DlqRoutingRoutedItems.Add(ctx, n, r.routedOpts[routeDefault][outcomeOf(err)]...)
	return err
}

func (r *router[C, D]) unmatchedError(md client.Metadata) error {
	var why []string
	topic := strings.Join(md.Get(metaKafkaTopic), ",")
	switch {
	case len(r.topics) > 0 && topic == "":
		why = append(why, "it carries no kafka.topic metadata (is a kafka receiver in front, and no batch processor without metadata_keys?)")
	case len(r.topics) > 0:
		why = append(why, fmt.Sprintf("its kafka.topic %q is not in match::topics %v", topic, r.topics))
	}
	if r.dlqHeader {
		why = append(why, fmt.Sprintf("it carries no %q metadata", dlqmeta.KeyGroup))
	}
	return fmt.Errorf("dlq_routing %q: data is not replayed DLQ data (%s) and default_pipelines is empty, so it has nowhere to go; "+
		"add the pipelines for other data to default_pipelines, or fix match", r.id, strings.Join(why, "; "))
}

func (r *router[C, D]) routeReplay(ctx context.Context, md client.Metadata, data D) error {
	if s, ok := r.stall.pending(md); ok {
		// The receiver delivers a record again that stalled its partition:
		// the replay pipelines took all of it but the refused part already,
		// so only that part is replayed again (taken now if the refusal was
		// fixed), or kept in the poison pipelines.
		data = s.refused
	}
	n := int64(r.ops.count(data))
	if err := r.pace.admit(ctx, int(n)); err != nil {
		// Held back and not replayed: a transient failure of the replay,
		// as the alert on a DLQ that does not drain reads it.
		r.telemetry.DlqRoutingRoutedItems.Add(ctx, n, r.routedOpts[routeReplay][outcomeTransient]...)
		return retryable(err)
	}
	if r.protectReplayInput {
		markReadOnly(data)
	}
	err := r.ops.consume(r.replay, ctx, data)
	if err == nil {
		r.telemetry.DlqRoutingRoutedItems.Add(ctx, n, r.routedOpts[routeReplay][outcomeAccepted]...)
		r.stall.ok(ctx, md)
		return nil
	}
	if !allPermanent(err) {
		r.telemetry.DlqRoutingRoutedItems.Add(ctx, n, r.routedOpts[routeReplay][outcomeTransient]...)
		return retryable(fmt.Errorf("dlq_routing %q: replay pipelines failed (transient; the receiver should retry): %w", r.id, err))
	}

	// Permanent: the data itself was refused. When the error names the
	// failed part (consumererror.Traces and friends) only that part is
	// poison; the rest was accepted.
	refused, rn := data, n
	if part, ok := r.ops.failedPart(err); ok {
		refused, rn = part, int64(r.ops.count(part))
	}
	if n > rn {
		r.telemetry.DlqRoutingRoutedItems.Add(ctx, n-rn, r.routedOpts[routeReplay][outcomeAccepted]...)
	}
	r.telemetry.DlqRoutingRoutedItems.Add(ctx, rn, r.routedOpts[routeReplay][outcomePermanent]...)
	return r.keepRefused(ctx, md, refused, errclass.Classify(err), err)
}

// keepRefused hands replay data the replay pipelines refused as bad to the
// poison pipelines, stamped with why. When they cannot take it (or there are
// none), the record is not committed: always a retryable error, whatever the
// poison failure says (a permanent one would let the receiver skip it, per
// message_marking::on_permanent_error), and its partition stalls, loudly,
// until the refused part is kept or replayed.
func (r *router[C, D]) keepRefused(ctx context.Context, md client.Metadata, refused D, verdict errclass.Verdict, cause error) error {
	rn := int64(r.ops.count(refused))
	if !r.hasPoison {
		err := fmt.Errorf("dlq_routing %q: replay pipelines rejected the data permanently (%s) and poison_pipelines is empty, so it is kept in the DLQ: %w", r.id, verdict, cause)
		r.stall.failing(ctx, md, refused, verdict, errNoPoisonPipelines, err)
		return retryable(err)
	}
	// The replay pipelines have seen this data: whatever they kept a
	// reference to must not be mutated by a poison consumer.
	markReadOnly(refused)
	perr := r.ops.consume(r.poison, dlqmeta.WithPoisonStamp(ctx, verdict.String(), time.Now()), refused)
	r.telemetry.DlqRoutingRoutedItems.Add(ctx, rn, r.routedOpts[routePoison][outcomeOf(perr)]...)
	if perr == nil {
		r.stall.ok(ctx, md)
		r.logger.Warn("replay pipelines rejected replayed data permanently: sent it to the poison pipelines",
			append(recordFields(md), zap.String("reason", verdict.String()), zap.Int64("items", rn), zap.Error(cause))...)
		return nil
	}
	joined := fmt.Errorf("dlq_routing %q: replay pipelines rejected the data permanently (%w) and the poison pipelines failed too: %w", r.id, cause, perr)
	r.stall.failing(ctx, md, refused, verdict, errPoisonFailed, joined)
	return retryable(joined)
}

func recordFields(md client.Metadata) []zap.Field {
	return []zap.Field{
		zap.Strings("kafka.topic", md.Get(metaKafkaTopic)),
		zap.Strings("kafka.partition", md.Get(metaKafkaPartition)),
		zap.Strings("kafka.offset", md.Get(metaKafkaOffset)),
		zap.Strings(dlqmeta.KeyGroup, md.Get(dlqmeta.KeyGroup)),
	}
}

func outcomeOf(err error) int {
	switch {
	case err == nil:
		return outcomeAccepted
	case allPermanent(err):
		return outcomePermanent
	default:
		return outcomeTransient
	}
}

// allPermanent classifies err with errclass, the failover group's
// classifier. An error joined from several pipelines (the fan-out joins
// them) is permanent only if every part is: if one replay pipeline failed
// transiently, the batch must be retried, not poisoned.
func allPermanent(err error) bool {
	if err == nil {
		return false
	}
	if parts, ok := joined(err); ok {
		for _, p := range parts {
			if !allPermanent(p) {
				return false
			}
		}
		return len(parts) > 0
	}
	return errclass.IsPermanent(err)
}

// retryable makes sure the receiver sees err as transient. Some exporters
// mark errors permanent that errclass deems transient (an OTLP
// Unauthenticated is the destination's problem, not the data's); the
// receiver would otherwise skip or pause on them.
func retryable(err error) error {
	if !consumererror.IsPermanent(err) {
		return err
	}
	return &transientError{msg: err.Error(), cause: err}
}

// transientError carries a cause that is marked permanent without exposing
// the mark: it has no Unwrap on purpose. Cause returns the original.
type transientError struct {
	msg   string
	cause error
}

func (e *transientError) Error() string { return e.msg }

// Cause returns the hidden original error.
func (e *transientError) Cause() error { return e.cause }
