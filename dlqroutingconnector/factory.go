// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

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
		consume:    consumer.Traces.ConsumeTraces,
		count:      ptrace.Traces.SpanCount,
		failedPart: failedTraces,
	})
	if err != nil {
		return nil, err
	}
	return &tracesConnector{dlqRouting[consumer.Traces, ptrace.Traces]{router: rt}}, nil
}

func createMetricsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Metrics, error) {
	r, ok := next.(connector.MetricsRouterAndConsumer)
	if !ok {
		return nil, fmt.Errorf("dlq_routing %q: the next consumer is not a metrics router; dlq_routing must be used as a connector between pipelines", set.ID)
	}
	rt, err := newRouter(set, cfg.(*Config), pipeline.SignalMetrics, r.Consumer, r.PipelineIDs(), signalOps[consumer.Metrics, pmetric.Metrics]{
		consume:    consumer.Metrics.ConsumeMetrics,
		count:      pmetric.Metrics.DataPointCount,
		failedPart: failedMetrics,
	})
	if err != nil {
		return nil, err
	}
	return &metricsConnector{dlqRouting[consumer.Metrics, pmetric.Metrics]{router: rt}}, nil
}

func createLogsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Logs, error) {
	r, ok := next.(connector.LogsRouterAndConsumer)
	if !ok {
		return nil, fmt.Errorf("dlq_routing %q: the next consumer is not a logs router; dlq_routing must be used as a connector between pipelines", set.ID)
	}
	rt, err := newRouter(set, cfg.(*Config), pipeline.SignalLogs, r.Consumer, r.PipelineIDs(), signalOps[consumer.Logs, plog.Logs]{
		consume:    consumer.Logs.ConsumeLogs,
		count:      plog.Logs.LogRecordCount,
		failedPart: failedLogs,
	})
	if err != nil {
		return nil, err
	}
	return &logsConnector{dlqRouting[consumer.Logs, plog.Logs]{router: rt}}, nil
}
