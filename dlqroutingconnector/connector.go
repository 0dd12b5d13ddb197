package dlqroutingconnector

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The connector neither mutates the data nor keeps it: it hands each
// request, whole, to one route.
var readOnlyCapabilities = consumer.Capabilities{MutatesData: false}

type tracesConnector struct {
	component.StartFunc
	router *router[consumer.Traces, ptrace.Traces]
}

func (c *tracesConnector) Capabilities() consumer.Capabilities { return readOnlyCapabilities }

func (c *tracesConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return c.router.route(ctx, td)
}

func (c *tracesConnector) Shutdown(context.Context) error {
	c.router.shutdown()
	return nil
}

type metricsConnector struct {
	component.StartFunc
	router *router[consumer.Metrics, pmetric.Metrics]
}

func (c *metricsConnector) Capabilities() consumer.Capabilities { return readOnlyCapabilities }

func (c *metricsConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return c.router.route(ctx, md)
}

func (c *metricsConnector) Shutdown(context.Context) error {
	c.router.shutdown()
	return nil
}

type logsConnector struct {
	component.StartFunc
	router *router[consumer.Logs, plog.Logs]
}

func (c *logsConnector) Capabilities() consumer.Capabilities { return readOnlyCapabilities }

func (c *logsConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return c.router.route(ctx, ld)
}

func (c *logsConnector) Shutdown(context.Context) error {
	c.router.shutdown()
	return nil
}

// isJoined reports whether err joins several errors (the fan-out to several
// pipelines joins theirs): a failed part named in one of them is that
// pipeline's, not the batch's.
func isJoined(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

func failedTraces(err error) (ptrace.Traces, bool) {
	var e consumererror.Traces
	if isJoined(err) || !errors.As(err, &e) {
		return ptrace.Traces{}, false
	}
	return e.Data(), true
}

func failedMetrics(err error) (pmetric.Metrics, bool) {
	var e consumererror.Metrics
	if isJoined(err) || !errors.As(err, &e) {
		return pmetric.Metrics{}, false
	}
	return e.Data(), true
}

func failedLogs(err error) (plog.Logs, bool) {
	var e consumererror.Logs
	if isJoined(err) || !errors.As(err, &e) {
		return plog.Logs{}, false
	}
	return e.Data(), true
}
