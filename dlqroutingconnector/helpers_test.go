// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadatatest"
	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

func pid(tb testing.TB, s string) pipeline.ID {
	tb.Helper()
	var id pipeline.ID
	require.NoError(tb, id.UnmarshalText([]byte(s)))
	return id
}

func pids(tb testing.TB, ss ...string) []pipeline.ID {
	out := make([]pipeline.ID, 0, len(ss))
	for _, s := range ss {
		out = append(out, pid(tb, s))
	}
	return out
}

// kafkaCtx is the context the kafka receiver gives a record: kafka.topic,
// kafka.partition, kafka.offset and every header as a key.
func kafkaCtx(topic string, headers map[string]string) context.Context {
	md := map[string][]string{
		"kafka.topic":     {topic},
		"kafka.partition": {"0"},
		"kafka.offset":    {"42"},
	}
	for k, v := range headers {
		md[k] = append(md[k], v)
	}
	return client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(md)})
}

var dlqHeaders = map[string]string{
	dlqmeta.KeyGroup:        "failover_group/ingest",
	dlqmeta.KeyFailedMember: "clickhouse/live",
	dlqmeta.KeyReason:       "transient:connection_refused",
	dlqmeta.KeyTime:         "2026-01-02T03:04:05.000000006Z",
}

func testTraces(spans int, service string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetName("span")
		s.SetTraceID([16]byte{1, byte(i)})
		s.SetSpanID([8]byte{2, byte(i)})
	}
	return td
}

func testMetrics(points int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("m")
	g := m.SetEmptyGauge()
	for i := range points {
		g.DataPoints().AppendEmpty().SetIntValue(int64(i))
	}
	return md
}

func testLogs(records int) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for range records {
		sl.LogRecords().AppendEmpty().Body().SetStr("log")
	}
	return ld
}

// tracesPipe is a traces consumer that records what it got and answers with
// a configurable error; it may declare and exercise MutatesData.
type tracesPipe struct {
	mu      sync.Mutex
	err     func(td ptrace.Traces) error
	mutates bool
	got     []ptrace.Traces
	ctxs    []context.Context
}

func (p *tracesPipe) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: p.mutates}
}

func (p *tracesPipe) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, td)
	p.ctxs = append(p.ctxs, ctx)
	if p.mutates {
		// What a mutating processor may do: change the data in place.
		td.ResourceSpans().At(0).Resource().Attributes().PutStr("mutated.by", "replay")
	}
	if p.err != nil {
		return p.err(td)
	}
	return nil
}

func (p *tracesPipe) spans() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, td := range p.got {
		n += td.SpanCount()
	}
	return n
}

func (p *tracesPipe) batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func failWith(err error) func(ptrace.Traces) error {
	return func(ptrace.Traces) error { return err }
}

// newTracesConnector creates the connector from its factory with a router
// over pipes (pipeline id -> consumer), as the collector's graph does.
func newTracesConnector(tb testing.TB, cfg *Config, tel *componenttest.Telemetry, pipes map[string]consumer.Traces) (connector.Traces, error) {
	tb.Helper()
	return createTracesConnector(tb, cfg, tel, pipes, zaptest.NewLogger(tb, zaptest.Level(zap.InfoLevel)))
}

func createTracesConnector(tb testing.TB, cfg *Config, tel *componenttest.Telemetry, pipes map[string]consumer.Traces, logger *zap.Logger) (connector.Traces, error) {
	tb.Helper()
	cm := map[pipeline.ID]consumer.Traces{}
	for name, c := range pipes {
		cm[pid(tb, name)] = c
	}
	set := connectortest.NewNopSettings(metadata.Type)
	if tel != nil {
		set = metadatatest.NewSettings(tel)
	}
	set.Logger = logger
	return NewFactory().CreateTracesToTraces(tb.Context(), set, cfg, connector.NewTracesRouter(cm))
}

func mustTracesConnector(tb testing.TB, cfg *Config, tel *componenttest.Telemetry, pipes map[string]consumer.Traces) connector.Traces {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	c, err := newTracesConnector(tb, cfg, tel, pipes)
	require.NoError(tb, err)
	require.NoError(tb, c.Start(tb.Context(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, c.Shutdown(context.Background())) })
	return c
}

// startedTracesConnector is mustTracesConnector started with a host that
// records component status, with the connector's logs observed.
func startedTracesConnector(tb testing.TB, cfg *Config, tel *componenttest.Telemetry, pipes map[string]consumer.Traces) (connector.Traces, *statusHost, *observer.ObservedLogs) {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	core, logs := observer.New(zapcore.InfoLevel)
	c, err := createTracesConnector(tb, cfg, tel, pipes, zap.New(core))
	require.NoError(tb, err)
	host := &statusHost{}
	require.NoError(tb, c.Start(tb.Context(), host))
	tb.Cleanup(func() { require.NoError(tb, c.Shutdown(context.Background())) })
	return c, host, logs
}

// statusHost records component status events.
type statusHost struct {
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (*statusHost) GetExtensions() map[component.ID]component.Component { return nil }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}
