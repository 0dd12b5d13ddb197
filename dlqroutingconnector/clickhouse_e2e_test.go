package dlqroutingconnector

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap/zaptest"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadatatest"
	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
	"github.com/otelfailover/otelcol-failover/internal/testservers"
)

// startClickHouseExporter creates the real contrib clickhouse exporter from
// its factory, reporting synchronously (no queue, no retries), and starts it
// (which creates the schema).
func startClickHouseExporter(t *testing.T, ch *testservers.ClickHouse) exporter.Traces {
	t.Helper()
	f := clickhouseexporter.NewFactory()
	cfg := unmarshalInto(t, f, map[string]any{
		"endpoint":         ch.Endpoint(),
		"database":         "otel",
		"create_schema":    true,
		"sending_queue":    map[string]any{"enabled": false},
		"retry_on_failure": map[string]any{"enabled": false},
		"timeout":          "10s",
	})
	set := exportertest.NewNopSettings(f.Type())
	set.Logger = zaptest.NewLogger(t)
	e, err := f.CreateTraces(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e
}

// countingTraces counts the calls to, and failures of, the consumer it wraps;
// permanent failures (by the shared classifier) also on their own, since a
// transient one (a slow engine on a loaded machine) may be retried any
// number of times.
type countingTraces struct {
	next      consumer.Traces
	calls     atomic.Int64
	failures  atomic.Int64
	permanent atomic.Int64
}

func (c *countingTraces) Capabilities() consumer.Capabilities { return c.next.Capabilities() }

func (c *countingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	c.calls.Add(1)
	err := c.next.ConsumeTraces(ctx, td)
	if err != nil {
		c.failures.Add(1)
		if errclass.IsPermanent(err) {
			c.permanent.Add(1)
		}
	}
	return err
}

var e2eStamp = map[string]string{
	dlqmeta.KeyGroup:        "failover_group/ingest",
	dlqmeta.KeyFailedMember: "clickhouse/live",
	dlqmeta.KeyReason:       "transient:connection_refused",
	dlqmeta.KeyTime:         "2026-01-02T03:04:05.000000006Z",
}

// Behaviour 3 with the real thing: the real clickhouse exporter replays the
// DLQ into a ClickHouse whose table constraint rejects some rows; ClickHouse
// answers Code 469, errclass calls it permanent, and exactly those batches go
// to the poison pipeline (the real kafka exporter, to a poison topic) while
// the rest lands. Every record is committed: nothing blocks, nothing is lost.
func TestReplayIntoClickHousePoisonsConstraintViolations(t *testing.T) {
	const (
		dlqTopic    = "otlp_spans_dlq"
		poisonTopic = "otlp_spans_poison"
		group       = "dlq-replay"
	)
	k := testservers.StartKafka(t, dlqTopic, poisonTopic)
	ch := testservers.StartClickHouse(t)

	chExp := startClickHouseExporter(t, ch)
	ch.Query(t, "ALTER TABLE otel.otel_traces ADD CONSTRAINT no_poison CHECK ServiceName != 'poison'")
	replay := &countingTraces{next: chExp}
	poisonExp := startKafkaExporter(t, k.Addr, poisonTopic)

	cfg := createDefaultConfig()
	cfg.ReplayPipelines = pids(t, "traces/replay")
	cfg.PoisonPipelines = pids(t, "traces/poison")
	cfg.Match.Topics = []string{dlqTopic}
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	conn := mustTracesConnector(t, cfg, tel, map[string]consumer.Traces{"traces/replay": replay, "traces/poison": poisonExp})

	// 6 good batches of 2 spans and 2 poison batches of 3 spans, interleaved,
	// on one partition so the poison ones sit between good ones.
	prod := k.NewClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var good []string
	for i := range 8 {
		svc, spans := fmt.Sprintf("ok-%d", i), 2
		if i == 2 || i == 5 {
			svc, spans = "poison", 3
		} else {
			good = append(good, svc)
		}
		payload, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(testTraces(spans, svc))
		require.NoError(t, err)
		rec := &kgo.Record{Topic: dlqTopic, Partition: 0, Value: payload}
		for hk, hv := range e2eStamp {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: hk, Value: []byte(hv)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, prod.ProduceSync(ctx, rec).FirstErr())
		cancel()
	}

	startKafkaReceiver(t, replayReceiverConfig(k.Addr, group, dlqTopic), conn)

	waitCommitted(t, k, group, dlqTopic, 8)
	assert.Equal(t, int64(12), ch.QueryInt(t, "SELECT count() FROM otel.otel_traces"))
	assert.Equal(t, strings.Join(good, "\n"), ch.Query(t, "SELECT DISTINCT ServiceName FROM otel.otel_traces ORDER BY ServiceName"))
	assert.Equal(t, int64(2), k.RecordCount(t, poisonTopic), "exactly the two rejected batches are poison")
	assert.Equal(t, int64(2), replay.permanent.Load(), "no retries of permanent rejections")

	// The poison records are the rejected batches, DLQ stamp included (the
	// poison exporter's include_metadata_keys), so they can be inspected or
	// fixed and replayed later.
	cons := k.NewClient(t, kgo.ConsumeTopics(poisonTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var poisoned []string
	for len(poisoned) < 2 {
		fetches := cons.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "poison records not readable")
		fetches.EachRecord(func(r *kgo.Record) {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.Value)
			require.NoError(t, err)
			poisoned = append(poisoned, fmt.Sprintf("%s/%d", serviceOf(td), td.SpanCount()))
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			assert.Equal(t, "failover_group/ingest", headers[dlqmeta.KeyGroup])
		})
	}
	sort.Strings(poisoned)
	assert.Equal(t, []string{"poison/3", "poison/3"}, poisoned)

	metadatatest.AssertEqualDlqRoutingRoutedItems(t, tel, []metricdata.DataPoint[int64]{
		{Value: 12, Attributes: routeAttrs("replay", "accepted", "traces")},
		{Value: 6, Attributes: routeAttrs("replay", "permanent_error", "traces")},
		{Value: 6, Attributes: routeAttrs("poison", "accepted", "traces")},
	}, metricdatatest.IgnoreTimestamp())
}

// The transient half of behaviour 3, for real: while ClickHouse is down the
// connector returns the error, the receiver commits nothing and retries;
// when ClickHouse is back everything lands, nothing is poisoned.
func TestReplayIntoClickHouseRetriesWhileItIsDown(t *testing.T) {
	const (
		dlqTopic    = "otlp_spans_dlq"
		poisonTopic = "otlp_spans_poison"
		group       = "dlq-replay"
	)
	k := testservers.StartKafka(t, dlqTopic, poisonTopic)
	ch := testservers.StartClickHouse(t)
	chExp := startClickHouseExporter(t, ch)
	replay := &countingTraces{next: chExp}
	poisonExp := startKafkaExporter(t, k.Addr, poisonTopic)

	cfg := createDefaultConfig()
	cfg.ReplayPipelines = pids(t, "traces/replay")
	cfg.PoisonPipelines = pids(t, "traces/poison")
	cfg.Match.Topics = []string{dlqTopic}
	conn := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/poison": poisonExp})

	prod := k.NewClient(t)
	for i := range 5 {
		produceOTLP(t, prod, dlqTopic, testTraces(2, fmt.Sprintf("svc-%d", i)), e2eStamp)
	}

	ch.Stop()
	startKafkaReceiver(t, replayReceiverConfig(k.Addr, group, dlqTopic), conn)
	testservers.WaitFor(t, 60*time.Second, "the receiver to retry the replay at least 3 times", func() (bool, string) {
		return replay.failures.Load() >= 3, fmt.Sprintf("%d failed attempts", replay.failures.Load())
	})
	assert.Equal(t, int64(0), k.CommittedCount(t, group, dlqTopic), "nothing may be committed while the replay fails")
	assert.Equal(t, int64(0), k.RecordCount(t, poisonTopic), "an outage is not poison")

	ch.Start()
	waitCommitted(t, k, group, dlqTopic, 5)
	assert.Equal(t, int64(10), ch.QueryInt(t, "SELECT count() FROM otel.otel_traces"))
	assert.Equal(t, int64(0), k.RecordCount(t, poisonTopic))
}
