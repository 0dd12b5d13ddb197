// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// protoMember is the benchmark's in-process member: an exporterhelper-based
// exporter built the way the contrib exporters are (timeout, sending_queue and
// retry_on_failure keys, exporterhelper.WithTimeout/WithQueue/WithRetry) whose
// push does the least work any real exporter does: marshal the batch to OTLP
// protobuf. It can be told to fail fast, as a member whose destination
// refuses connections does.
var protoMemberType = component.MustNewType("protomember")

// The proto member passes its `timeout` to exporterhelper.WithTimeout, as
// the contrib exporters the group trusts to bound their own calls do: it is
// trusted the same way, so the benchmarks measure the group as it runs with
// a clickhouse or kafka member.
// It also takes deduplication tokens as clickhouse members do, so that
// primary_healthy pays for them.
func init() {
	typesWithOwnDeadline[protoMemberType] = true
	typesTakingTokens[protoMemberType] = true
}

type protoMemberConfig struct {
	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

type protoMembers struct {
	// nop makes push do nothing at all (BenchmarkFailoverGroupOverhead).
	nop  bool
	mu   sync.Mutex
	fail map[string]*atomic.Bool // by member name as configured
	sink atomic.Int64            // bytes marshaled, so the work is not optimized away
}

func (p *protoMembers) failing(name string) *atomic.Bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail == nil {
		p.fail = map[string]*atomic.Bool{}
	}
	if p.fail[name] == nil {
		p.fail[name] = &atomic.Bool{}
	}
	return p.fail[name]
}

var errBenchRefused = fmt.Errorf("dial tcp 127.0.0.1:9000: connect: %w", syscall.ECONNREFUSED)

func (p *protoMembers) factory() exporter.Factory {
	return exporter.NewFactory(protoMemberType,
		func() component.Config {
			return &protoMemberConfig{
				TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
				QueueConfig:   configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
				RetryConfig:   configretry.NewDefaultBackOffConfig(),
			}
		},
		exporter.WithTraces(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
			c := cfg.(*protoMemberConfig)
			fail := p.failing(memberName(set.ID))
			var m ptrace.ProtoMarshaler
			push := func(_ context.Context, td ptrace.Traces) error {
				if fail.Load() {
					return errBenchRefused
				}
				if p.nop {
					return nil
				}
				b, err := m.MarshalTraces(td)
				p.sink.Add(int64(len(b)))
				return err
			}
			return exporterhelper.NewTraces(ctx, set, cfg, push,
				exporterhelper.WithTimeout(c.TimeoutConfig),
				exporterhelper.WithQueue(c.QueueConfig),
				exporterhelper.WithRetry(c.RetryConfig))
		}, component.StabilityLevelDevelopment),
	)
}

// memberName is the member's name as configured in its group: the group runs
// member x/name as x/<group>.name.
func memberName(id component.ID) string {
	name := id.Name()
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return name[i+1:]
		}
	}
	return name
}

// benchTraces is a 100-span batch shaped like real instrumentation output.
func benchTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("host.name", "node-17")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 100 {
		s := ss.Spans().AppendEmpty()
		s.SetName(fmt.Sprintf("GET /api/items/%d", i))
		s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(i)})
		s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(i)})
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		s.Attributes().PutStr("http.request.method", "GET")
		s.Attributes().PutInt("http.response.status_code", 200)
		s.Attributes().PutStr("url.path", "/api/items")
	}
	return td
}

type benchGroup struct {
	exp     exporter.Traces
	members *protoMembers
	cfg     *Config
}

func newBenchGroup(b *testing.B, yaml string) *benchGroup {
	return newBenchGroupWith(b, &protoMembers{}, yaml)
}

func newBenchGroupWith(b *testing.B, members *protoMembers, yaml string) *benchGroup {
	b.Helper()
	f := NewFactoryWithMembers(members.factory())
	cfg := f.CreateDefaultConfig().(*Config)
	require.NoError(b, loadYAML(b, yaml).Unmarshal(cfg))
	require.NoError(b, confmap.Validate(cfg))
	set := exportertest.NewNopSettings(f.Type())
	set.TelemetrySettings = componenttest.NewNopTelemetrySettings()
	exp, err := f.CreateTraces(b.Context(), set, cfg)
	require.NoError(b, err)
	require.NoError(b, exp.Start(b.Context(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, exp.Shutdown(context.Background())) })
	g := &benchGroup{exp: exp, members: members, cfg: cfg}
	// Wait for the background start of every member, so that no iteration
	// measures a start.
	require.Eventually(b, func() bool {
		for _, m := range groupOf(exp).members {
			if m.ready.Load() == nil {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond)
	return g
}

const benchGroupYAML = `
members:
  - protomember/primary:
  - protomember/secondary:
attempt_timeout: 5s
circuit_breaker:
  failure_threshold: %d
  open_duration: 1h
  max_open_duration: 1h
`

// BenchmarkFailoverGroup compares one member exporter alone (direct) with the
// same member inside a group: healthy primary, primary whose breaker is open
// (the second member takes every batch), and a primary that fails every
// batch (fast, never tripping the breaker).
func BenchmarkFailoverGroup(b *testing.B) {
	ctx := b.Context()

	b.Run("direct", func(b *testing.B) {
		// The member exporter alone, configured exactly as the group
		// configures it (own queue and retry off, timeout = attempt_timeout).
		g := newBenchGroup(b, fmt.Sprintf(benchGroupYAML, 3))
		mc := g.cfg.Members[0]
		f := g.members.factory()
		set := exportertest.NewNopSettings(protoMemberType)
		set.ID = component.NewIDWithName(protoMemberType, "direct")
		exp, err := f.CreateTraces(ctx, set, mc.Config())
		require.NoError(b, err)
		require.NoError(b, exp.Start(ctx, componenttest.NewNopHost()))
		b.Cleanup(func() { require.NoError(b, exp.Shutdown(ctx)) })
		runBench(b, exp)
	})

	b.Run("primary_healthy", func(b *testing.B) {
		g := newBenchGroup(b, fmt.Sprintf(benchGroupYAML, 3))
		runBench(b, g.exp)
	})

	b.Run("primary_open", func(b *testing.B) {
		g := newBenchGroup(b, fmt.Sprintf(benchGroupYAML, 3))
		// Trip the primary's breaker the way an outage does: it fails
		// failure_threshold batches in a row (they go to the secondary).
		g.members.failing("primary").Store(true)
		td := benchTraces()
		for range 3 {
			require.NoError(b, g.exp.ConsumeTraces(ctx, td))
		}
		require.Equal(b, stateOpen, groupOf(g.exp).members[0].breaker.state())
		runBench(b, g.exp)
		require.Equal(b, stateOpen, groupOf(g.exp).members[0].breaker.state())
	})

	b.Run("failover_each_batch", func(b *testing.B) {
		// The breaker never trips: every batch is attempted on the primary,
		// fails at once, and goes to the secondary.
		g := newBenchGroup(b, fmt.Sprintf(benchGroupYAML, 1<<30))
		g.members.failing("primary").Store(true)
		runBench(b, g.exp)
	})
}

// BenchmarkFailoverGroupOverhead isolates the group's own cost: the same
// cases with members that do nothing (exporterhelper only, no marshaling),
// so the difference to direct is the group's overhead in ns per batch.
func BenchmarkFailoverGroupOverhead(b *testing.B) {
	ctx := b.Context()
	b.Run("direct", func(b *testing.B) {
		g := newBenchGroupWith(b, &protoMembers{nop: true}, fmt.Sprintf(benchGroupYAML, 3))
		f := g.members.factory()
		set := exportertest.NewNopSettings(protoMemberType)
		exp, err := f.CreateTraces(ctx, set, g.cfg.Members[0].Config())
		require.NoError(b, err)
		require.NoError(b, exp.Start(ctx, componenttest.NewNopHost()))
		b.Cleanup(func() { require.NoError(b, exp.Shutdown(ctx)) })
		runBench(b, exp)
	})
	b.Run("primary_healthy", func(b *testing.B) {
		g := newBenchGroupWith(b, &protoMembers{nop: true}, fmt.Sprintf(benchGroupYAML, 3))
		runBench(b, g.exp)
	})
	b.Run("primary_open", func(b *testing.B) {
		g := newBenchGroupWith(b, &protoMembers{nop: true}, fmt.Sprintf(benchGroupYAML, 3))
		g.members.failing("primary").Store(true)
		for range 3 {
			require.NoError(b, g.exp.ConsumeTraces(ctx, benchTraces()))
		}
		require.Equal(b, stateOpen, groupOf(g.exp).members[0].breaker.state())
		runBench(b, g.exp)
	})
}

// runBench also reports cpu-ns/op: the CPU time the process used (user +
// system, all threads, GC included) per batch. On a shared machine wall time
// (ns/op) includes time the benchmark waited for a CPU; CPU time does not.
func runBench(b *testing.B, exp exporter.Traces) {
	ctx := b.Context()
	td := benchTraces()
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		if err := exp.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
