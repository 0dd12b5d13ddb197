// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadatatest"
)

// waitFor is the deadline of every require.Eventually in these tests.
const waitFor = 10 * time.Second

// loadYAML turns a YAML document into a confmap.Conf, as the collector does.
func loadYAML(tb testing.TB, doc string) *confmap.Conf {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "config.yaml")
	require.NoError(tb, os.WriteFile(p, []byte(doc), 0o600))
	conf, err := confmaptest.LoadConf(p)
	require.NoError(tb, err)
	return conf
}

// decodeConfig unmarshals and validates a group config as the collector
// does before creating the component.
func decodeConfig(tb testing.TB, f exporter.Factory, doc string) (*Config, error) {
	tb.Helper()
	cfg := f.CreateDefaultConfig().(*Config)
	if err := loadYAML(tb, doc).Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

// --- signals ---------------------------------------------------------------

// signalCase lets one test run for traces, metrics and logs.
type signalCase struct {
	name      string
	create    func(context.Context, exporter.Factory, exporter.Settings, component.Config) (component.Component, error)
	send      func(context.Context, component.Component, ...string) error
	failedIDs func(error) ([]string, bool)
}

var allSignals = []signalCase{
	{
		name: "traces",
		create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return f.CreateTraces(ctx, set, cfg)
		},
		send: func(ctx context.Context, c component.Component, ids ...string) error {
			return c.(exporter.Traces).ConsumeTraces(ctx, makeTraces(ids...))
		},
		failedIDs: func(err error) ([]string, bool) {
			if e, ok := errors.AsType[consumererror.Traces](err); ok {
				return tracesIDs(e.Data()), true
			}
			return nil, false
		},
	},
	{
		name: "metrics",
		create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return f.CreateMetrics(ctx, set, cfg)
		},
		send: func(ctx context.Context, c component.Component, ids ...string) error {
			return c.(exporter.Metrics).ConsumeMetrics(ctx, makeMetrics(ids...))
		},
		failedIDs: func(err error) ([]string, bool) {
			if e, ok := errors.AsType[consumererror.Metrics](err); ok {
				return metricsIDs(e.Data()), true
			}
			return nil, false
		},
	},
	{
		name: "logs",
		create: func(ctx context.Context, f exporter.Factory, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return f.CreateLogs(ctx, set, cfg)
		},
		send: func(ctx context.Context, c component.Component, ids ...string) error {
			return c.(exporter.Logs).ConsumeLogs(ctx, makeLogs(ids...))
		},
		failedIDs: func(err error) ([]string, bool) {
			if e, ok := errors.AsType[consumererror.Logs](err); ok {
				return logsIDs(e.Data()), true
			}
			return nil, false
		},
	},
}

// forEachSignal runs a subtest per signal.
func forEachSignal(t *testing.T, fn func(t *testing.T, sig signalCase)) {
	for _, sig := range allSignals {
		t.Run(sig.name, func(t *testing.T) { fn(t, sig) })
	}
}

// forEachSignalParallel runs the per-signal subtests in parallel (for tests
// that mostly wait on timeouts).
func forEachSignalParallel(t *testing.T, fn func(t *testing.T, sig signalCase)) {
	for _, sig := range allSignals {
		t.Run(sig.name, func(t *testing.T) {
			t.Parallel()
			fn(t, sig)
		})
	}
}

// --- a group under test ---------------------------------------------------------

var groupID = component.MustNewIDWithName("failover_group", "ingest")

// harness is one failover_group for one signal, built from YAML with the
// test member factory, with observed logs, telemetry and component status.
type harness struct {
	t       *testing.T
	sig     signalCase
	members *testMembers
	factory exporter.Factory
	cfg     *Config
	exp     component.Component
	tel     *componenttest.Telemetry
	logs    *observer.ObservedLogs
	host    *statusHost
	clock   *fakeClock
	// realKafka keeps the real kafka exporter factory instead of the test
	// double registered as kafka.
	realKafka bool
	probes    func(*MemberConfig, []string) (destinationProbe, string)
}

type harnessOption func(*harness)

// withClock gives the group (its breakers and logs) a fake clock.
func withClock() harnessOption { return func(h *harness) { h.clock = newFakeClock() } }

// withRealKafka builds kafka members from the real kafka exporter.
func withRealKafka() harnessOption { return func(h *harness) { h.realKafka = true } }

// withoutProbes turns the background probes off, for tests that count
// what live batches alone do to a real member's breaker.
func withoutProbes() harnessOption {
	return withProbes(func(*MemberConfig, []string) (destinationProbe, string) { return nil, "off in this test" })
}

// withProbes gives members the probes pick returns.
func withProbes(pick func(*MemberConfig, []string) (destinationProbe, string)) harnessOption {
	return func(h *harness) { h.probes = pick }
}

// withMembers shares a member registry (to set behavior before Create).
func withMembers(r *testMembers) harnessOption { return func(h *harness) { h.members = r } }

func newHarness(t *testing.T, sig signalCase, doc string, opts ...harnessOption) *harness {
	t.Helper()
	h := newHarnessNoStart(t, sig, doc, opts...)
	h.start()
	return h
}

func newHarnessNoStart(t *testing.T, sig signalCase, doc string, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, sig: sig, host: &statusHost{}}
	for _, o := range opts {
		o(h)
	}
	if h.members == nil {
		h.members = &testMembers{}
	}
	extra := []exporter.Factory{h.members.factory(testMemberType), h.members.factory(tokenMemberType), h.members.factory(severalMemberType)}
	if !h.realKafka {
		extra = append(extra, h.members.factory(fakeKafkaType))
	}
	now := time.Now
	if h.clock != nil {
		now = h.clock.Now
	}
	h.factory = newFactory(now, extra...)
	cfg, err := decodeConfig(t, h.factory, doc)
	require.NoError(t, err)
	cfg.probes = h.probes
	h.cfg = cfg

	set := h.observedSettings()

	exp, err := sig.create(t.Context(), h.factory, set, cfg)
	require.NoError(t, err)
	h.exp = exp
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return h
}

// observedSettings are the group's settings with telemetry and logs the
// test reads (h.tel, h.logs).
func (h *harness) observedSettings() exporter.Settings {
	var logger *zap.Logger
	h.tel, h.logs, logger = observedTelemetry(h.t)
	set := metadatatest.NewSettings(h.tel)
	set.ID = groupID
	set.Logger = logger
	return set
}

// observedTelemetry is telemetry and a logger whose output a test reads.
func observedTelemetry(t *testing.T) (*componenttest.Telemetry, *observer.ObservedLogs, *zap.Logger) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.DebugLevel)
	return tel, logs, zap.New(core)
}

func (h *harness) start() {
	h.t.Helper()
	require.NoError(h.t, h.exp.Start(context.Background(), h.host))
}

func (h *harness) member(name string) *testMember { return h.members.get(name) }

func (h *harness) send(ids ...string) error {
	return h.sig.send(context.Background(), h.exp, ids...)
}

func (h *harness) sendCtx(ctx context.Context, ids ...string) error {
	return h.sig.send(ctx, h.exp, ids...)
}

func (h *harness) breaker(i int) *breaker { return membersOf(h.exp)[i].breaker }

// waitReady waits until every member has started and the group has taken
// note: a member takes data as soon as it is ready, its state gauge and the
// component status follow on its supervisor goroutine, which then ends.
func (h *harness) waitReady() {
	h.t.Helper()
	for i := range membersOf(h.exp) {
		h.waitMemberReady(i)
	}
}

// waitMemberReady is waitReady for the i-th member only (tests where another
// member is meant to stay down).
func (h *harness) waitMemberReady(i int) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		m := membersOf(h.exp)[i]
		return m.ready() && m.settled()
	}, waitFor, time.Millisecond, "member %d did not start", i)
}

// sum reads a counter's value for exactly the given attributes (0 if the
// metric or the series does not exist yet).
func (h *harness) sum(name string, attrs ...attribute.KeyValue) int64 {
	m, err := h.tel.GetMetric("otelcol_" + name)
	if err != nil {
		return 0
	}
	var total int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			if hasAll(dp.Attributes, attrs) {
				total += dp.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if hasAll(dp.Attributes, attrs) {
				total += dp.Value
			}
		}
	}
	return total
}

// hasAll: the point carries every given attribute (it may carry more, such
// as the group and signal every point has).
func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// histCount is how many attempt durations were recorded for the attributes.
func (h *harness) histCount(attrs ...attribute.KeyValue) uint64 {
	m, err := h.tel.GetMetric("otelcol_failover_group_attempt_duration")
	if err != nil {
		return 0
	}
	var total uint64
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if hasAll(dp.Attributes, attrs) {
			total += dp.Count
		}
	}
	return total
}

func memberAttr(m string) attribute.KeyValue  { return attribute.String("member", m) }
func outcomeAttr(o string) attribute.KeyValue { return attribute.String("outcome", o) }
func reasonAttr(r string) attribute.KeyValue  { return attribute.String("reason", r) }

// logLines returns the logged messages at or above level, filtered by message.
func (h *harness) logLines(level zapcore.Level, contains string) []observer.LoggedEntry {
	return h.logs.FilterLevelExact(level).FilterMessageSnippet(contains).All()
}

// --- introspection ---------------------------------------------------------

type memberView struct {
	id      component.ID
	breaker *breaker
	ready   func() bool
	// settled: the supervisor has finished (started, published, reported).
	settled     func() bool
	deadLetter  bool
	ownDeadline func() bool
	valueBudget func(context.Context) int
	// takesTokens, writesSeveral: the member's fields of those names.
	takesTokens, writesSeveral bool
}

func viewsOf[T any](g *group[T]) []memberView {
	out := make([]memberView, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, memberView{
			id: m.id, breaker: m.breaker, ready: func() bool { return m.ready.Load() != nil },
			settled: func() bool {
				select {
				case <-m.done:
					return true
				default:
					return false
				}
			}, deadLetter: m.cfg.deadLetter, ownDeadline: func() bool { return m.ownDeadline }, valueBudget: m.valueBudget,
			takesTokens: m.takesTokens, writesSeveral: m.writesSeveral,
		})
	}
	return out
}

// membersOf reaches into a group created without the group's own
// exporterhelper (no sending_queue, no retry_on_failure).
func membersOf(c component.Component) []memberView {
	switch e := c.(type) {
	case tracesGroup:
		return viewsOf(e.group)
	case metricsGroup:
		return viewsOf(e.group)
	case logsGroup:
		return viewsOf(e.group)
	}
	panic("not a bare failover group")
}

// groupOf is the traces group behind an exporter (benchmarks).
func groupOf(c component.Component) *group[ptrace.Traces] { return c.(tracesGroup).group }

// --- clock, host, network ----------------------------------------------------

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// statusHost captures component status events.
type statusHost struct {
	mu     sync.Mutex
	events []*componentstatus.Event
}

var _ componentstatus.Reporter = (*statusHost)(nil)

func (*statusHost) GetExtensions() map[component.ID]component.Component { return nil }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) list() []*componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*componentstatus.Event(nil), h.events...)
}

func (h *statusHost) last() *componentstatus.Event {
	evs := h.list()
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1]
}

// closedPort returns a loopback address on which nothing listens: a
// connection to it is refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentListener accepts connections and never answers, like a hung server.
func silentListener(t *testing.T) string {
	t.Helper()
	addr, silent := closingListener(t)
	silent.Store(true)
	return addr
}

// closingListener accepts connections and closes them at once (a server
// that resets) until silent is set; then it keeps them open and never
// answers (a hung server).
func closingListener(t *testing.T) (addr string, silent *atomic.Bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	silent = &atomic.Bool{}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !silent.Load() {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String(), silent
}

// identical reports whether a and b are the same batch (the same pdata
// object), not merely equal ones: what the no-copy tests are about.
func identical[T comparable](a, b T) bool { return a == b }
