// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

// This file holds a TEST DOUBLE: the `testmember` exporter factory. It is
// registered with NewFactoryWithMembers in tests only. Each member's
// behavior per call is set by the test (success, transient error, permanent
// error, partial success with a given failed subset, block until the context
// ends, mutate the batch), every call is recorded (item ids, client metadata,
// deadline, the batch itself), and Start/Shutdown are counted per created
// instance; Start can be told to fail or to hang.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var testMemberType = component.MustNewType("testmember")

// fakeKafkaType registers the test double under the kafka type (replacing the
// real kafka factory in the harness) to check rules that depend on a member
// being a kafka member, without any I/O.
var fakeKafkaType = component.MustNewType("kafka")

// tokenMemberType registers the test double as a member type that takes
// deduplication tokens, as clickhouse members do: its calls record the token
// their context carries (testCall.token).
var tokenMemberType = component.MustNewType("tokenmember")

// severalMemberType registers the test double as a member type that writes
// a metrics batch in several inserts, as clickhouse members do.
var severalMemberType = component.MustNewType("severalmember")

func init() {
	typesTakingTokens[tokenMemberType] = true
	typesTakingTokens[severalMemberType] = true
	typesWritingSeveral[severalMemberType] = map[string]bool{"metrics": true}
}

// testMemberConfig is the test double's config.
type testMemberConfig struct {
	// Mutates makes the member declare Capabilities().MutatesData.
	Mutates bool `mapstructure:"mutates"`
	// Topics, in the kafka exporter's shape, so that the double registered
	// as kafka declares the topics it writes (loop guard).
	Traces  topicConfig `mapstructure:"traces"`
	Metrics topicConfig `mapstructure:"metrics"`
	Logs    topicConfig `mapstructure:"logs"`
	// Producer and IncludeMetadataKeys, in the kafka exporter's shape, so
	// that the double registered as kafka has a record size limit and
	// record headers (the group adds the DLQ keys).
	Producer struct {
		MaxMessageBytes int `mapstructure:"max_message_bytes"`
	} `mapstructure:"producer"`
	IncludeMetadataKeys []string `mapstructure:"include_metadata_keys"`
}

type topicConfig struct {
	Topic string `mapstructure:"topic"`
}

// Errors the test double returns, shaped like what real exporters return.
var (
	errRefused   = fmt.Errorf("dial tcp 127.0.0.1:9000: connect: %w", syscall.ECONNREFUSED)
	errBadData   = consumererror.NewPermanent(errors.New(`[HTTP 500] response body: "Code: 53. DB::Exception: Type mismatch"`))
	errStartDown = fmt.Errorf("create database: %w", errRefused)
)

// result is what one call of a test member does.
type result struct {
	err     error    // returned; nil is success
	failIDs []string // partial success: these items failed (with err, or errRefused)
	block   bool     // wait until the context ends, return its error
	mutate  bool     // change every item of the batch before returning
	// mutateLater keeps a reference and changes the batch after returning,
	// in another goroutine (wait for it with testMember.background).
	mutateLater bool
}

func succeed() result                { return result{} }
func fail(err error) result          { return result{err: err} }
func hang() result                   { return result{block: true} }
func partial(ids ...string) result   { return result{failIDs: ids} }
func mutateAndFail(err error) result { return result{err: err, mutate: true} }

// behavior decides the result of each call.
type behavior func(ctx context.Context, ids []string) result

func always(r result) behavior { return func(context.Context, []string) result { return r } }

// testCall is one recorded call.
type testCall struct {
	signal      string
	ids         []string
	md          map[string][]string
	token       string // the ClickHouse insert token the call carries
	deadline    time.Time
	hasDeadline bool
	data        any // the batch as received (for identity checks)
	at          time.Time
}

// testMembers is the registry of a test's members, keyed by member name as
// configured (testmember/<name>), shared by all instances and signals.
type testMembers struct {
	mu      sync.Mutex
	members map[string]*testMember
}

func (r *testMembers) get(name string) *testMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = map[string]*testMember{}
	}
	m := r.members[name]
	if m == nil {
		m = &testMember{name: name}
		m.behave.Store(new(always(succeed())))
		r.members[name] = m
	}
	return m
}

// factory builds testmember exporters. typ is usually testMemberType; a test
// may register the double under another type (e.g. kafka) to check rules
// that depend on the member type.
func (r *testMembers) factory(typ component.Type) exporter.Factory {
	create := func(signal string) func(set exporter.Settings, cfg component.Config) *testInstance {
		return func(set exporter.Settings, cfg component.Config) *testInstance {
			m := r.get(memberName(set.ID))
			in := &testInstance{m: m, signal: signal, mutates: cfg.(*testMemberConfig).Mutates, id: set.ID}
			m.mu.Lock()
			m.instances = append(m.instances, in)
			m.mu.Unlock()
			return in
		}
	}
	return exporter.NewFactory(typ,
		func() component.Config { return &testMemberConfig{} },
		exporter.WithTraces(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
			return create("traces")(set, cfg), nil
		}, component.StabilityLevelDevelopment),
		exporter.WithMetrics(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			return create("metrics")(set, cfg), nil
		}, component.StabilityLevelDevelopment),
		exporter.WithLogs(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
			return create("logs")(set, cfg), nil
		}, component.StabilityLevelDevelopment),
	)
}

// testMember is the control and record of one configured member.
type testMember struct {
	name   string
	behave atomic.Pointer[behavior]

	// Start behavior: startErr makes Start fail; startHang makes it block
	// until its context ends; startIgnoreCtx makes it block until
	// releaseStart is called, whatever its context says.
	startErr       atomic.Pointer[error]
	startHang      atomic.Bool
	startIgnoreCtx atomic.Bool
	releaseOnce    sync.Once
	release        chan struct{}
	releaseMu      sync.Mutex

	background sync.WaitGroup // mutateLater goroutines

	mu        sync.Mutex
	calls     []testCall
	accepted  []string // ids of items this member accepted (not failed)
	instances []*testInstance
}

// acceptedIDs is every item id this member accepted.
func (m *testMember) acceptedIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.accepted)
}

func (m *testMember) set(b behavior)    { m.behave.Store(&b) }
func (m *testMember) always(r result)   { m.set(always(r)) }
func (m *testMember) failStart(e error) { m.startErr.Store(&e) }
func (m *testMember) okStart()          { m.startErr.Store(nil) }

func (m *testMember) releaseChan() chan struct{} {
	m.releaseMu.Lock()
	defer m.releaseMu.Unlock()
	if m.release == nil {
		m.release = make(chan struct{})
	}
	return m.release
}

// releaseStart lets every Start blocked by startIgnoreCtx return.
func (m *testMember) releaseStart() {
	m.releaseOnce.Do(func() { close(m.releaseChan()) })
}

func (m *testMember) callList() []testCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func (m *testMember) numCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// receivedIDs is every item id this member was handed, in call order.
func (m *testMember) receivedIDs() []string {
	var ids []string
	calls := m.callList()
	for i := range calls {
		ids = append(ids, calls[i].ids...)
	}
	return ids
}

func (m *testMember) instanceList() []*testInstance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.instances)
}

// starts and shutdowns sum the counts over every instance.
func (m *testMember) starts() (n int) {
	for _, in := range m.instanceList() {
		n += int(in.starts.Load())
	}
	return n
}

func (m *testMember) shutdowns() (n int) {
	for _, in := range m.instanceList() {
		n += int(in.shutdowns.Load())
	}
	return n
}

// testInstance is one created exporter (one per Create* call).
type testInstance struct {
	m         *testMember
	id        component.ID
	signal    string
	mutates   bool
	host      component.Host // the host Start was given
	starts    atomic.Int32
	shutdowns atomic.Int32
}

func (in *testInstance) Start(ctx context.Context, host component.Host) error {
	in.host = host
	in.starts.Add(1)
	switch {
	case in.m.startIgnoreCtx.Load():
		<-in.m.releaseChan()
		return nil
	case in.m.startHang.Load():
		<-ctx.Done()
		return ctx.Err()
	}
	if e := in.m.startErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (in *testInstance) Shutdown(context.Context) error {
	in.shutdowns.Add(1)
	return nil
}

func (in *testInstance) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: in.mutates}
}

func (in *testInstance) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return in.consume(ctx, td, tracesIDs(td), func() { mutateTraces(td) },
		func(err error, ids []string) error { return consumererror.NewTraces(err, makeTraces(ids...)) })
}

func (in *testInstance) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return in.consume(ctx, md, metricsIDs(md), func() { mutateMetrics(md) },
		func(err error, ids []string) error { return consumererror.NewMetrics(err, makeMetrics(ids...)) })
}

func (in *testInstance) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return in.consume(ctx, ld, logsIDs(ld), func() { mutateLogs(ld) },
		func(err error, ids []string) error { return consumererror.NewLogs(err, makeLogs(ids...)) })
}

func (in *testInstance) consume(ctx context.Context, data any, ids []string, mutate func(), withPart func(error, []string) error) error {
	c := testCall{signal: in.signal, ids: ids, data: data, at: time.Now()}
	c.deadline, c.hasDeadline = ctx.Deadline()
	c.token = tokenIn(ctx)
	info := client.FromContext(ctx)
	c.md = map[string][]string{}
	for k := range info.Metadata.Keys() {
		c.md[k] = info.Metadata.Get(k)
	}
	in.m.mu.Lock()
	in.m.calls = append(in.m.calls, c)
	in.m.mu.Unlock()

	r := (*in.m.behave.Load())(ctx, ids)
	accept := func(ok []string) {
		in.m.mu.Lock()
		in.m.accepted = append(in.m.accepted, ok...)
		in.m.mu.Unlock()
	}
	if r.mutate {
		mutate()
	}
	if r.mutateLater {
		in.m.background.Go(func() {
			mutate()
		})
	}
	switch {
	case r.block:
		<-ctx.Done()
		return ctx.Err()
	case len(r.failIDs) > 0:
		err := r.err
		if err == nil {
			err = errRefused
		}
		accept(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(r.failIDs, id) }))
		return withPart(err, r.failIDs)
	case r.err == nil:
		accept(ids)
	}
	return r.err
}

// --- batches whose items carry an "id" attribute -------------------------

const idKey = "test.id"

func makeTraces(ids ...string) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, id := range ids {
		s := ss.Spans().AppendEmpty()
		s.SetName("span " + id)
		s.Attributes().PutStr(idKey, id)
	}
	return td
}

func tracesIDs(td ptrace.Traces) []string {
	var ids []string
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				v, _ := s.Attributes().Get(idKey)
				ids = append(ids, v.AsString())
			}
		}
	}
	return ids
}

func mutateTraces(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				v, _ := s.Attributes().Get(idKey)
				s.Attributes().PutStr(idKey, v.AsString()+"-mutated")
			}
		}
	}
}

func makeMetrics(ids ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("test.gauge")
	g := m.SetEmptyGauge()
	for _, id := range ids {
		dp := g.DataPoints().AppendEmpty()
		dp.SetIntValue(1)
		dp.Attributes().PutStr(idKey, id)
	}
	return md
}

func metricsIDs(md pmetric.Metrics) []string {
	var ids []string
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Type() != pmetric.MetricTypeGauge {
					continue // items with ids are gauge points
				}
				for _, dp := range m.Gauge().DataPoints().All() {
					v, _ := dp.Attributes().Get(idKey)
					ids = append(ids, v.AsString())
				}
			}
		}
	}
	return ids
}

func mutateMetrics(md pmetric.Metrics) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Gauge().DataPoints().All() {
					v, _ := dp.Attributes().Get(idKey)
					dp.Attributes().PutStr(idKey, v.AsString()+"-mutated")
				}
			}
		}
	}
}

func makeLogs(ids ...string) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, id := range ids {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr("log " + id)
		lr.Attributes().PutStr(idKey, id)
	}
	return ld
}

func logsIDs(ld plog.Logs) []string {
	var ids []string
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				v, _ := lr.Attributes().Get(idKey)
				ids = append(ids, v.AsString())
			}
		}
	}
	return ids
}

func mutateLogs(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				v, _ := lr.Attributes().Get(idKey)
				lr.Attributes().PutStr(idKey, v.AsString()+"-mutated")
			}
		}
	}
}
