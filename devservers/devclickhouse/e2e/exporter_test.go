// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The exporter reaches devclickhouse over either protocol.
const (
	overHTTP   = "http"
	overNative = "native"
)

var protocols = []string{overHTTP, overNative}

// endpoint is the exporter's endpoint for s over a protocol.
func (s *server) endpoint(t testing.TB, protocol string) string {
	t.Helper()
	switch protocol {
	case overHTTP:
		return "http://" + s.addr
	case overNative:
		if s.native == "" {
			t.Fatal("devclickhouse serves no native protocol (no --native-listen)")
		}
		return "tcp://" + s.native + "?dial_timeout=10s"
	}
	t.Fatalf("unknown protocol %q", protocol)
	return ""
}

// exporterConfig is the contrib clickhouse exporter's config against s over
// protocol, with the schema created in database db, and its queue and
// retries off so every call reports its own outcome.
func exporterConfig(t testing.TB, s *server, protocol, db, compression string) *clickhouseexporter.Config {
	t.Helper()
	cfg := clickhouseexporter.NewFactory().CreateDefaultConfig().(*clickhouseexporter.Config)
	cfg.Endpoint = s.endpoint(t, protocol)
	cfg.Database = db
	cfg.CreateSchema = true
	cfg.Compress = compression
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	cfg.TimeoutSettings.Timeout = 30 * time.Second
	if err := cfg.Validate(); err != nil { // also fills in the metric table names
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func exporterSettings() exporter.Settings {
	return exportertest.NewNopSettings(component.MustNewType("clickhouse"))
}

func startTraces(t testing.TB, cfg *clickhouseexporter.Config) exporter.Traces {
	t.Helper()
	exp, err := clickhouseexporter.NewFactory().CreateTraces(context.Background(), exporterSettings(), cfg)
	if err != nil {
		t.Fatalf("create traces exporter: %v", err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start traces exporter: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

func startLogs(t testing.TB, cfg *clickhouseexporter.Config) exporter.Logs {
	t.Helper()
	exp, err := clickhouseexporter.NewFactory().CreateLogs(context.Background(), exporterSettings(), cfg)
	if err != nil {
		t.Fatalf("create logs exporter: %v", err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start logs exporter: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

func startMetrics(t testing.TB, cfg *clickhouseexporter.Config) exporter.Metrics {
	t.Helper()
	exp, err := clickhouseexporter.NewFactory().CreateMetrics(context.Background(), exporterSettings(), cfg)
	if err != nil {
		t.Fatalf("create metrics exporter: %v", err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start metrics exporter: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// makeTraces builds n spans (in resources of 100 spans) with attributes,
// events and links, so every column of the traces table gets data.
func makeTraces(n int, seed int) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Now()
	var ss ptrace.ScopeSpans
	for i := range n {
		if i%100 == 0 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", seed))
			rs.Resource().Attributes().PutStr("host.name", "devhost")
			ss = rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("e2e")
			ss.Scope().SetVersion("1.0")
		}
		sp := ss.Spans().AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		tid[0], tid[1], tid[2], tid[15] = byte(seed), byte(i>>8), byte(i), 1
		sid[0], sid[1], sid[7] = byte(i>>8), byte(i), 2
		sp.SetTraceID(pcommon.TraceID(tid))
		sp.SetSpanID(pcommon.SpanID(sid))
		sp.SetName(fmt.Sprintf("op-%d", i%7))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		sp.Status().SetCode(ptrace.StatusCodeOk)
		sp.Attributes().PutStr("http.method", "GET")
		sp.Attributes().PutInt("http.status_code", 200)
		ev := sp.Events().AppendEmpty()
		ev.SetName("event")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(now))
		ev.Attributes().PutStr("k", "v")
		ln := sp.Links().AppendEmpty()
		ln.SetTraceID(pcommon.TraceID(tid))
		ln.SetSpanID(pcommon.SpanID(sid))
		ln.Attributes().PutStr("link", "yes")
	}
	return td
}

func makeLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("e2e")
	now := time.Now()
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf("log line %d with 'quotes' and \ttabs", i))
		lr.Attributes().PutStr("k", "v")
	}
	return ld
}

// metricPoints is how many data points makeMetrics writes per metric type.
const metricPoints = 5

// makeMetrics builds metricPoints data points of each of the five metric
// types, with exemplars.
func makeMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("e2e")
	now := pcommon.NewTimestampFromTime(time.Now())
	start := pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute))
	exemplar := func(e pmetric.ExemplarSlice) {
		ex := e.AppendEmpty()
		ex.SetTimestamp(now)
		ex.SetDoubleValue(1.5)
		ex.FilteredAttributes().PutStr("f", "x")
	}

	g := sm.Metrics().AppendEmpty()
	g.SetName("e2e.gauge")
	g.SetUnit("1")
	gdps := g.SetEmptyGauge().DataPoints()
	for i := range metricPoints {
		dp := gdps.AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetStartTimestamp(start)
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutInt("i", int64(i))
		exemplar(dp.Exemplars())
	}

	s := sm.Metrics().AppendEmpty()
	s.SetName("e2e.sum")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range metricPoints {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetStartTimestamp(start)
		dp.SetIntValue(int64(i))
		dp.Attributes().PutInt("i", int64(i))
		exemplar(dp.Exemplars())
	}

	h := sm.Metrics().AppendEmpty()
	h.SetName("e2e.histogram")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range metricPoints {
		dp := hist.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetStartTimestamp(start)
		dp.SetCount(6)
		dp.SetSum(12.5)
		dp.SetMin(0.5)
		dp.SetMax(9)
		dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
		dp.ExplicitBounds().FromRaw([]float64{1, 5})
		dp.Attributes().PutInt("i", int64(i))
		exemplar(dp.Exemplars())
	}

	e := sm.Metrics().AppendEmpty()
	e.SetName("e2e.exp_histogram")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range metricPoints {
		dp := eh.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetStartTimestamp(start)
		dp.SetCount(7)
		dp.SetSum(20)
		dp.SetScale(2)
		dp.SetZeroCount(1)
		dp.Positive().SetOffset(1)
		dp.Positive().BucketCounts().FromRaw([]uint64{1, 2})
		dp.Negative().BucketCounts().FromRaw([]uint64{3})
		dp.Attributes().PutInt("i", int64(i))
		exemplar(dp.Exemplars())
	}

	su := sm.Metrics().AppendEmpty()
	su.SetName("e2e.summary")
	summary := su.SetEmptySummary()
	for i := range metricPoints {
		dp := summary.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetStartTimestamp(start)
		dp.SetCount(10)
		dp.SetSum(100)
		q := dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.5)
		q.SetValue(9)
		q = dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.99)
		q.SetValue(30)
		dp.Attributes().PutInt("i", int64(i))
	}
	return md
}

// TestExporterAllSignals runs the unmodified contrib clickhouse exporter
// (schema creation included) against devclickhouse for traces, logs and the
// five metric types, over HTTP and over the native protocol, with each
// compression clickhouse-go offers for them that ClickHouse frames (lz4,
// zstd) and none, and reads the rows back over HTTP.
func TestExporterAllSignals(t *testing.T) {
	s := startServer(t, t.TempDir())
	for _, protocol := range protocols {
		for _, compression := range []string{"lz4", "zstd", "none"} {
			t.Run(protocol+"/"+compression, func(t *testing.T) {
				exportAllSignals(t, s, protocol, compression)
			})
		}
	}
}

func exportAllSignals(t *testing.T, s *server, protocol, compression string) {
	ctx := context.Background()
	db := fmt.Sprintf("otel_%s_%s_%d", protocol, compression, dbSeq.Add(1))
	const spans, logs = 250, 120

	texp := startTraces(t, exporterConfig(t, s, protocol, db, compression))
	var sent []ptrace.Traces
	for batch := range 2 {
		td := makeTraces(spans/2, batch)
		sent = append(sent, td)
		if err := texp.ConsumeTraces(ctx, td); err != nil {
			t.Fatalf("ConsumeTraces: %v", err)
		}
	}
	lexp := startLogs(t, exporterConfig(t, s, protocol, db, compression))
	if err := lexp.ConsumeLogs(ctx, makeLogs(logs)); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	mexp := startMetrics(t, exporterConfig(t, s, protocol, db, compression))
	if err := mexp.ConsumeMetrics(ctx, makeMetrics()); err != nil {
		t.Fatalf("ConsumeMetrics: %v", err)
	}

	want := map[string]int{
		"otel_traces":                        spans,
		"otel_logs":                          logs,
		"otel_metrics_gauge":                 metricPoints,
		"otel_metrics_sum":                   metricPoints,
		"otel_metrics_histogram":             metricPoints,
		"otel_metrics_exponential_histogram": metricPoints,
		"otel_metrics_summary":               metricPoints,
	}
	for table, n := range want {
		if got := s.count(t, db+"."+table); got != n {
			t.Errorf("%s.%s: %d rows, want %d", db, table, got, n)
		}
	}
	// The exporter's materialized view fed the trace id table too.
	if got := s.count(t, db+".otel_traces_trace_id_ts"); got == 0 {
		t.Errorf("%s.otel_traces_trace_id_ts is empty", db)
	}
	// Every span arrived, under its own ids.
	if got, want := s.query(t, fmt.Sprintf("SELECT TraceId, SpanId FROM %s.otel_traces ORDER BY TraceId, SpanId FORMAT TSV", db)), spanIDs(sent...); got != want {
		t.Errorf("span ids differ: got %d lines, want %d", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
	// Each log line and each metric point once.
	if got := s.query(t, fmt.Sprintf("SELECT uniqExact(Body) FROM %s.otel_logs", db)); got != fmt.Sprintf("%d\n", logs) {
		t.Errorf("distinct log bodies: %q, want %d", got, logs)
	}
	for table := range want {
		if !strings.HasPrefix(table, "otel_metrics_") {
			continue
		}
		if got := s.query(t, fmt.Sprintf("SELECT arraySort(groupArray(Attributes['i'])) FROM %s.%s", db, table)); got != "['0','1','2','3','4']\n" {
			t.Errorf("%s points: %q", table, got)
		}
	}
	// Values survive the round trip.
	got := s.query(t, fmt.Sprintf("SELECT ServiceName, SpanAttributes['http.method'], length(Events.Name) FROM %s.otel_traces LIMIT 1", db))
	if got != "svc-0\tGET\t1\n" && got != "svc-1\tGET\t1\n" {
		t.Errorf("span row: %q", got)
	}
	got = s.query(t, fmt.Sprintf("SELECT Body FROM %s.otel_logs ORDER BY Body LIMIT 1", db))
	// TabSeparated escapes quotes and tabs, as ClickHouse does.
	if got != "log line 0 with \\'quotes\\' and \\ttabs\n" {
		t.Errorf("log body: %q", got)
	}
	got = s.query(t, fmt.Sprintf("SELECT BucketCounts, ExplicitBounds FROM %s.otel_metrics_histogram LIMIT 1", db))
	if got != "[1,2,3]\t[1,5]\n" {
		t.Errorf("histogram row: %q", got)
	}
}

// spanIDs lists the trace and span ids of the spans in tds, as
// "SELECT TraceId, SpanId ... ORDER BY TraceId, SpanId FORMAT TSV" shows
// them.
func spanIDs(tds ...ptrace.Traces) string {
	var lines []string
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					lines = append(lines, sp.TraceID().String()+"\t"+sp.SpanID().String()+"\n")
				}
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// TestRestartPersistence writes spans, restarts devclickhouse on the same
// data directory and finds them again; a second exporter then appends to the
// existing schema.
func TestRestartPersistence(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	ctx := context.Background()
	cfg := exporterConfig(t, s, overHTTP, "otel", "lz4")
	exp, err := clickhouseexporter.NewFactory().CreateTraces(ctx, exporterSettings(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := exp.ConsumeTraces(ctx, makeTraces(300, 1)); err != nil {
		t.Fatalf("ConsumeTraces: %v", err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.count(t, "otel.otel_traces"); got != 300 {
		t.Fatalf("before restart: %d spans, want 300", got)
	}
	s.stop(t)

	s2 := startServer(t, dir)
	if got := s2.count(t, "otel.otel_traces"); got != 300 {
		t.Fatalf("after restart: %d spans, want 300", got)
	}
	texp := startTraces(t, exporterConfig(t, s2, overNative, "otel", "lz4"))
	if err := texp.ConsumeTraces(ctx, makeTraces(50, 2)); err != nil {
		t.Fatalf("ConsumeTraces after restart: %v", err)
	}
	if got := s2.count(t, "otel.otel_traces"); got != 350 {
		t.Fatalf("after restart and insert: %d spans, want 350", got)
	}
	s2.stop(t)
}

// BenchmarkInsertTraces measures the clickhouse exporter's insert rate into
// devclickhouse, in batches of 1000 spans (lz4, the exporter's default),
// over HTTP and over the native protocol. Each iteration sends one batch
// over each protocol, so that on a shared machine both meet the same load;
// each gets its own figure (http-spans/s, native-spans/s), and ns/op is the
// time of the pair.
func BenchmarkInsertTraces(b *testing.B) {
	s := startServer(b, b.TempDir())
	ctx := context.Background()
	const batch = 1000
	td := makeTraces(batch, 3)
	exps := make([]exporter.Traces, len(protocols))
	for i, protocol := range protocols {
		exps[i] = startTraces(b, exporterConfig(b, s, protocol, "bench_"+protocol, "lz4"))
		if err := exps[i].ConsumeTraces(ctx, td); err != nil { // schema warm-up
			b.Fatal(err)
		}
	}
	spent := make([]time.Duration, len(protocols))
	for b.Loop() {
		for i, exp := range exps {
			start := time.Now()
			if err := exp.ConsumeTraces(ctx, td); err != nil {
				b.Fatalf("%s: %v", protocols[i], err)
			}
			spent[i] += time.Since(start)
		}
	}
	b.StopTimer()
	for i, protocol := range protocols {
		b.ReportMetric(float64(b.N*batch)/spent[i].Seconds(), protocol+"-spans/s")
	}
}
