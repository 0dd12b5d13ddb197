// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// signal is what the failover decision needs to know about one telemetry
// type. The decision itself (failover.go, send.go) is written once for all
// three.
type signal[T any] struct {
	// name is the signal's name in telemetry: traces, metrics or logs.
	name string
	// itemName names its items in messages.
	itemName string
	items    func(T) int
	clone    func(T) T
	// failedPart extracts the subset a member reported as failed in a
	// partial-success error.
	failedPart func(error) (T, bool)
	// withFailedPart wraps an error with the subset that is still failed.
	withFailedPart func(error, T) error
	create         createFunc[T]
	// splitBySize, halve and merge cut a batch into parts (split.go).
	splitBySize func(T, int) ([]T, T, int)
	halve       func(T) (T, T)
	merge       func([]T) T
	// marshal encodes a batch as OTLP protobuf: the content a part's
	// deduplication token is derived from (partToken).
	marshal func(T) ([]byte, error)
	// kinds is how many kinds of items a batch holds that a member may
	// write apart (metric types: the clickhouse exporter writes one table
	// per type); 1 for traces and logs.
	kinds func(T) int
}

func oneKind[T any](T) int { return 1 }

// metricTypes counts the metric types (gauge, sum, histogram, exponential
// histogram, summary) a batch holds.
func metricTypes(md pmetric.Metrics) int {
	var seen [8]bool
	n := 0
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if t := m.Type(); t != pmetric.MetricTypeEmpty && int(t) < len(seen) && !seen[t] {
					seen[t] = true
					n++
				}
			}
		}
	}
	return n
}

var tracesSignal = signal[ptrace.Traces]{
	name:     "traces",
	itemName: "spans",
	items:    ptrace.Traces.SpanCount,
	clone: func(td ptrace.Traces) ptrace.Traces {
		c := ptrace.NewTraces()
		td.CopyTo(c)
		return c
	},
	failedPart:     errclass.FailedPart[consumererror.Traces, ptrace.Traces],
	withFailedPart: consumererror.NewTraces,
	create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (*memberExporter[ptrace.Traces], error) {
		e, err := f.CreateTraces(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		return &memberExporter[ptrace.Traces]{comp: e, consume: e.ConsumeTraces, mutates: e.Capabilities().MutatesData}, nil
	},
	splitBySize: splitTracesBySize,
	halve:       halveTraces,
	merge:       mergeTraces,
	marshal:     (&ptrace.ProtoMarshaler{}).MarshalTraces,
	kinds:       oneKind[ptrace.Traces],
}

var metricsSignal = signal[pmetric.Metrics]{
	name:     "metrics",
	itemName: "metric data points",
	items:    pmetric.Metrics.DataPointCount,
	clone: func(md pmetric.Metrics) pmetric.Metrics {
		c := pmetric.NewMetrics()
		md.CopyTo(c)
		return c
	},
	failedPart:     errclass.FailedPart[consumererror.Metrics, pmetric.Metrics],
	withFailedPart: consumererror.NewMetrics,
	create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (*memberExporter[pmetric.Metrics], error) {
		e, err := f.CreateMetrics(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		return &memberExporter[pmetric.Metrics]{comp: e, consume: e.ConsumeMetrics, mutates: e.Capabilities().MutatesData}, nil
	},
	splitBySize: splitMetricsBySize,
	halve:       halveMetrics,
	merge:       mergeMetrics,
	marshal:     (&pmetric.ProtoMarshaler{}).MarshalMetrics,
	kinds:       metricTypes,
}

var logsSignal = signal[plog.Logs]{
	name:     "logs",
	itemName: "log records",
	items:    plog.Logs.LogRecordCount,
	clone: func(ld plog.Logs) plog.Logs {
		c := plog.NewLogs()
		ld.CopyTo(c)
		return c
	},
	failedPart:     errclass.FailedPart[consumererror.Logs, plog.Logs],
	withFailedPart: consumererror.NewLogs,
	create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (*memberExporter[plog.Logs], error) {
		e, err := f.CreateLogs(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		return &memberExporter[plog.Logs]{comp: e, consume: e.ConsumeLogs, mutates: e.Capabilities().MutatesData}, nil
	},
	splitBySize: splitLogsBySize,
	halve:       halveLogs,
	merge:       mergeLogs,
	marshal:     (&plog.ProtoMarshaler{}).MarshalLogs,
	kinds:       oneKind[plog.Logs],
}
