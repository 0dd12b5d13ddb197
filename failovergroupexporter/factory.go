// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
)

// DefaultMemberFactories are the exporters a member can be built from in the
// stock distribution.
func DefaultMemberFactories() []exporter.Factory {
	return []exporter.Factory{
		clickhouseexporter.NewFactory(),
		kafkaexporter.NewFactory(),
		otlpexporter.NewFactory(),
		otlphttpexporter.NewFactory(),
		debugexporter.NewFactory(),
		fileexporter.NewFactory(),
	}
}

// NewFactory returns the failover_group factory with the default member
// factories.
func NewFactory() exporter.Factory {
	return NewFactoryWithMembers()
}

// NewFactoryWithMembers returns the failover_group factory whose members can
// also be built from the given factories (for custom builds and tests). A
// factory of a type already known replaces the default one.
func NewFactoryWithMembers(extra ...exporter.Factory) exporter.Factory {
	return newFactory(time.Now, extra...)
}

// newFactory is NewFactoryWithMembers with the clock of the groups'
// breakers and logs (tests use a fake one).
func newFactory(now func() time.Time, extra ...exporter.Factory) exporter.Factory {
	factories := newMemberFactories(append(DefaultMemberFactories(), extra...))
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig(factories, now),
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	g, err := newGroup(ctx, set, cfg.(*Config), tracesSignal)
	if err != nil {
		return nil, err
	}
	if !g.cfg.needsHelper() {
		return tracesGroup{g}, nil
	}
	return exporterhelper.NewTraces(ctx, set, cfg, g.push, g.helperOptions()...)
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	g, err := newGroup(ctx, set, cfg.(*Config), metricsSignal)
	if err != nil {
		return nil, err
	}
	if !g.cfg.needsHelper() {
		return metricsGroup{g}, nil
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, g.push, g.helperOptions()...)
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	g, err := newGroup(ctx, set, cfg.(*Config), logsSignal)
	if err != nil {
		return nil, err
	}
	if !g.cfg.needsHelper() {
		return logsGroup{g}, nil
	}
	return exporterhelper.NewLogs(ctx, set, cfg, g.push, g.helperOptions()...)
}

// needsHelper: the group's own exporterhelper queue and retry sit in front of
// the failover decision only when configured. Without them the group calls
// push directly: nothing to do in between, and the members' own exporterhelper
// already reports sent and failed items.
func (c *Config) needsHelper() bool {
	return c.QueueConfig.HasValue() || c.BackOffConfig.Enabled
}

func (g *group[T]) helperOptions() []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(g.Start),
		exporterhelper.WithShutdown(g.Shutdown),
		exporterhelper.WithCapabilities(g.Capabilities()),
		exporterhelper.WithQueue(g.cfg.QueueConfig),
		exporterhelper.WithRetry(g.cfg.BackOffConfig),
		// Each member attempt has its own deadline (attempt_timeout).
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
	}
}

type tracesGroup struct{ *group[ptrace.Traces] }

func (e tracesGroup) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return e.push(ctx, td)
}

type metricsGroup struct{ *group[pmetric.Metrics] }

func (e metricsGroup) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return e.push(ctx, md)
}

type logsGroup struct{ *group[plog.Logs] }

func (e logsGroup) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return e.push(ctx, ld)
}

var (
	_ exporter.Traces  = tracesGroup{}
	_ exporter.Metrics = metricsGroup{}
	_ exporter.Logs    = logsGroup{}
)
