package dlqroutingconnector // import "github.com/otelfailover/otelcol-failover/dlqroutingconnector"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
)

// NewFactory returns the factory of the dlq_routing connector.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		connector.WithTracesToTraces(createTracesToTraces, metadata.TracesToTracesStability),
		connector.WithMetricsToMetrics(createMetricsToMetrics, metadata.MetricsToMetricsStability),
		connector.WithLogsToLogs(createLogsToLogs, metadata.LogsToLogsStability),
	)
}

func createTracesToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Traces, error) {
	r, ok := next.(connector.TracesRouterAndConsumer)
	if !ok {
		return nil, fmt.Errorf("dlq_routing %q: the next consumer is not a traces router; dlq_routing must be used as a connector between pipelines", set.ID)
	}
	rt, err := newRouter(set, cfg.(*Config), pipeline.SignalTraces, r.Consumer, r.PipelineIDs(), signalOps[consumer.Traces, ptrace.Traces]{
		consume: func(c consumer.Traces, ctx context.Context, td ptrace.Traces) error { return c.ConsumeTraces(ctx, td) },
		mutates: func(c consumer.Traces) bool { return c.Capabilities().MutatesData },
		count:   func(td ptrace.Traces) int { return td.SpanCount() },
		readOnly: func(td ptrace.Traces) {
			if !td.IsReadOnly() {
				td.MarkReadOnly()
			}
		},
		failedPart: failedTraces,
	})
	if err != nil {
		return nil, err
	}
	return &tracesConnector{router: rt}, nil
}

func createMetricsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Metrics, error) {
	r, ok := next.(connector.MetricsRouterAndConsumer)
	if !ok {
		return nil, fmt.Errorf("dlq_routing %q: the next consumer is not a metrics router; dlq_routing must be used as a connector between pipelines", set.ID)
	}
	rt, err := newRouter(set, cfg.(*Config), pipeline.SignalMetrics, r.Consumer, r.PipelineIDs(), signalOps[consumer.Metrics, pmetric.Metrics]{
		consume: func(c consumer.Metrics, ctx context.Context, md pmetric.Metrics) error {
			return c.ConsumeMetrics(ctx, md)
		},
		mutates: func(c consumer.Metrics) bool { return c.Capabilities().MutatesData },
		count:   func(md pmetric.Metrics) int { return md.DataPointCount() },
		readOnly: func(md pmetric.Metrics) {
			if !md.IsReadOnly() {
				md.MarkReadOnly()
			}
		},
		failedPart: failedMetrics,
	})
	if err != nil {
		return nil, err
	}
	return &metricsConnector{router: rt}, nil
}

func createLogsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Logs, error) {
	r, ok := next.(connector.LogsRouterAndConsumer)
	if !ok {
		return nil, fmt.Errorf("dlq_routing %q: the next consumer is not a logs router; dlq_routing must be used as a connector between pipelines", set.ID)
	}
	rt, err := newRouter(set, cfg.(*Config), pipeline.SignalLogs, r.Consumer, r.PipelineIDs(), signalOps[consumer.Logs, plog.Logs]{
		consume: func(c consumer.Logs, ctx context.Context, ld plog.Logs) error { return c.ConsumeLogs(ctx, ld) },
		mutates: func(c consumer.Logs) bool { return c.Capabilities().MutatesData },
		count:   func(ld plog.Logs) int { return ld.LogRecordCount() },
		readOnly: func(ld plog.Logs) {
			if !ld.IsReadOnly() {
				ld.MarkReadOnly()
			}
		},
		failedPart: failedLogs,
	})
	if err != nil {
		return nil, err
	}
	return &logsConnector{router: rt}, nil
}
