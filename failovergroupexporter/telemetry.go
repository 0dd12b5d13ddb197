// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
)

// outcome of an attempt, as in the `outcome` metric attribute.
type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomePartial
	outcomeTransient
	outcomePermanent
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"success", "partial", "transient_error", "permanent_error"}

// skipReason is why a member was passed by without an attempt.
type skipReason uint8

const (
	skipBreakerOpen skipReason = iota
	skipUnavailable
	skipLoopGuard
	numSkipReasons
)

var skipReasonNames = [numSkipReasons]string{"breaker_open", "unavailable", "loop_guard"}

// memberTelemetry holds a member's attribute sets, built once, as option
// slices: passing a prebuilt slice to a variadic parameter does not
// allocate, so the per-batch path allocates nothing for metrics.
type memberTelemetry struct {
	tb           *metadata.TelemetryBuilder
	memberAdd    []metric.AddOption
	memberRecord []metric.RecordOption
	outcomeAdd   [numOutcomes][]metric.AddOption
	outcomeRec   [numOutcomes][]metric.RecordOption
	skip         [numSkipReasons][]metric.AddOption
}

// groupAttributes name the group instance. The collector runs one instance
// per signal, all recording into the same instruments, so without them the
// traces and logs instances of a group would overwrite each other's member
// state, and two groups with a member of the same name would mix.
func groupAttributes(group, signal string) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("group", group), attribute.String("otelcol.signal", signal)}
}

func withAttrs(base []attribute.KeyValue, kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue{}, base...), kv...)...))
}

func newMemberTelemetry(tb *metadata.TelemetryBuilder, base []attribute.KeyValue, member string) *memberTelemetry {
	m := withAttrs(base, attribute.String("member", member))
	mt := &memberTelemetry{
		tb:           tb,
		memberAdd:    []metric.AddOption{m},
		memberRecord: []metric.RecordOption{m},
	}
	for o := range numOutcomes {
		opt := withAttrs(base, attribute.String("member", member), attribute.String("outcome", outcomeNames[o]))
		mt.outcomeAdd[o] = []metric.AddOption{opt}
		mt.outcomeRec[o] = []metric.RecordOption{opt}
	}
	for r := range numSkipReasons {
		mt.skip[r] = []metric.AddOption{withAttrs(base, attribute.String("member", member), attribute.String("reason", skipReasonNames[r]))}
	}
	return mt
}

func (mt *memberTelemetry) attempt(ctx context.Context, o outcome, took time.Duration) {
	mt.tb.FailoverGroupAttempts.Add(ctx, 1, mt.outcomeAdd[o]...)
	mt.tb.FailoverGroupAttemptDuration.Record(ctx, took.Seconds(), mt.outcomeRec[o]...)
}

func (mt *memberTelemetry) skipped(ctx context.Context, r skipReason) {
	mt.tb.FailoverGroupSkipped.Add(ctx, 1, mt.skip[r]...)
}

func (mt *memberTelemetry) delivered(ctx context.Context, items int) {
	mt.tb.FailoverGroupDeliveredItems.Add(ctx, int64(items), mt.memberAdd...)
}

func (mt *memberTelemetry) failover(ctx context.Context) {
	mt.tb.FailoverGroupFailovers.Add(ctx, 1, mt.memberAdd...)
}

func (mt *memberTelemetry) state(s breakerState) {
	mt.tb.FailoverGroupMemberState.Record(context.Background(), int64(s), mt.memberRecord...)
}

// probeTelemetry records a destination's probes. Probes are per member, not
// per signal: their attributes name the group and the member only.
type probeTelemetry struct {
	tb *metadata.TelemetryBuilder
	// Indexed by the probe's success: 0 failure, 1 success.
	add [2][]metric.AddOption
	rec [2][]metric.RecordOption
}

func newProbeTelemetry(tb *metadata.TelemetryBuilder, group, member string) *probeTelemetry {
	base := []attribute.KeyValue{attribute.String("group", group), attribute.String("member", member)}
	pt := &probeTelemetry{tb: tb}
	for i, outcome := range [2]string{"failure", "success"} {
		opt := withAttrs(base, attribute.String("outcome", outcome))
		pt.add[i] = []metric.AddOption{opt}
		pt.rec[i] = []metric.RecordOption{opt}
	}
	return pt
}

func (pt *probeTelemetry) record(ok bool, took time.Duration) {
	i := 0
	if ok {
		i = 1
	}
	ctx := context.Background()
	pt.tb.FailoverGroupProbes.Add(ctx, 1, pt.add[i]...)
	pt.tb.FailoverGroupProbeDuration.Record(ctx, took.Seconds(), pt.rec[i]...)
}
