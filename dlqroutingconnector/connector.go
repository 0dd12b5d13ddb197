// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// The connector neither mutates the data nor keeps it: it hands each
// request, whole, to one route.
var readOnlyCapabilities = consumer.Capabilities{MutatesData: false}

// dlqRouting is what the connectors of the three signals share; each adds
// only its Consume method.
type dlqRouting[C signalConsumer, D signalData] struct {
	router *router[C, D]
}

func (c *dlqRouting[C, D]) Start(ctx context.Context, host component.Host) error {
	c.router.stall.start(ctx, host)
	return nil
}

func (*dlqRouting[C, D]) Capabilities() consumer.Capabilities { return readOnlyCapabilities }

func (c *dlqRouting[C, D]) Shutdown(context.Context) error {
	c.router.shutdown()
	return nil
}

type tracesConnector struct {
	dlqRouting[consumer.Traces, ptrace.Traces]
}

func (c *tracesConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return c.router.route(ctx, td)
}

type metricsConnector struct {
	dlqRouting[consumer.Metrics, pmetric.Metrics]
}

func (c *metricsConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return c.router.route(ctx, md)
}

type logsConnector struct {
	dlqRouting[consumer.Logs, plog.Logs]
}

func (c *logsConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return c.router.route(ctx, ld)
}

// joined returns the errors err joins, if it is a join: the fan-out to
// several pipelines joins theirs.
func joined(err error) ([]error, bool) {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil, false
	}
	return j.Unwrap(), true
}

// failedPart is the part of the batch the replay pipeline did not accept.
// A failed part named in one error of a join is that pipeline's, not the
// batch's: then there is none.
func failedPart[E interface {
	error
	Data() D
}, D any](err error) (D, bool) {
	if _, ok := joined(err); ok {
		var zero D
		return zero, false
	}
	return errclass.FailedPart[E, D](err)
}

var (
	failedTraces  = failedPart[consumererror.Traces, ptrace.Traces]
	failedMetrics = failedPart[consumererror.Metrics, pmetric.Metrics]
	failedLogs    = failedPart[consumererror.Logs, plog.Logs]
)
