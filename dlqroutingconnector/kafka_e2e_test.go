// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/testbed/testservers"
)

// The routing with the real thing: the contrib kafka receiver reads records
// from a Kafka protocol server (kfake over TCP) and the connector routes on
// the metadata the receiver really sets. Records come from franz-go (with
// hand-set DLQ headers) and from the real contrib kafka exporter, whose
// include_metadata_keys turns the failover group's stamp into headers.
func TestRealKafkaReceiverMetadataDrivesRouting(t *testing.T) {
	const (
		dlqTopic  = "otlp_spans_dlq"
		liveTopic = "otlp_spans"
		group     = "dlq-routing-e2e"
	)
	k := testservers.StartKafka(t, dlqTopic, liveTopic)

	// Records written before the receiver starts (it reads from earliest).
	prod := k.NewClient(t)
	stamp := map[string]string{
		dlqmeta.KeyGroup:        "failover_group/ingest",
		dlqmeta.KeyFailedMember: "clickhouse/live",
		dlqmeta.KeyReason:       "transient:connection_refused",
		dlqmeta.KeyTime:         "2026-01-02T03:04:05.000000006Z",
	}
	for i := range 3 {
		produceOTLP(t, prod, dlqTopic, testTraces(2, fmt.Sprintf("kgo-dlq-%d", i)), stamp)
	}
	for i := range 2 {
		produceOTLP(t, prod, liveTopic, testTraces(1, fmt.Sprintf("kgo-live-%d", i)), map[string]string{"x-tenant": "t1"})
	}
	// DLQ data on the live topic: only the header says it is replayed data.
	produceOTLP(t, prod, liveTopic, testTraces(1, "kgo-stray-dlq"), stamp)

	// The real kafka exporter, as failover_group's DLQ member uses it.
	exp := startKafkaExporter(t, k.Addr, liveTopic)
	stampTime := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	for i := range 2 {
		ctx := dlqmeta.WithStamp(t.Context(), dlqmeta.Stamp{
			Group: "failover_group/ingest", FailedMember: "clickhouse/live", Reason: "permanent:clickhouse_469", Time: stampTime,
		})
		require.NoError(t, exp.ConsumeTraces(ctx, testTraces(3, fmt.Sprintf("exp-dlq-%d", i))))
	}
	require.NoError(t, exp.ConsumeTraces(t.Context(), testTraces(1, "exp-live-0")))
	require.Equal(t, int64(3), k.RecordCount(t, dlqTopic))
	require.Equal(t, int64(6), k.RecordCount(t, liveTopic))

	cfg := createDefaultConfig()
	cfg.ReplayPipelines = pids(t, "traces/replay")
	cfg.DefaultPipelines = pids(t, "traces/live")
	cfg.Match.Topics = []string{dlqTopic}
	cfg.Match.DLQHeader = true
	replay, live := &tracesPipe{}, &tracesPipe{}
	conn := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": live})
	startKafkaReceiver(t, replayReceiverConfig(k.Addr, group, dlqTopic, liveTopic), conn)

	testservers.WaitFor(t, 60*time.Second, "all 9 records to be routed", func() (bool, string) {
		r, l := replay.batches(), live.batches()
		return r+l >= 9, fmt.Sprintf("replay %d, live %d", r, l)
	})
	waitCommitted(t, k, group, dlqTopic, 3)
	waitCommitted(t, k, group, liveTopic, 6)

	services := func(p *tracesPipe) []string {
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []string
		for _, td := range p.got {
			out = append(out, serviceOf(td))
		}
		sort.Strings(out)
		return out
	}
	assert.Equal(t, []string{"exp-dlq-0", "exp-dlq-1", "kgo-dlq-0", "kgo-dlq-1", "kgo-dlq-2", "kgo-stray-dlq"}, services(replay))
	assert.Equal(t, []string{"exp-live-0", "kgo-live-0", "kgo-live-1"}, services(live))

	// The metadata the consumers see is the receiver's, untouched.
	replay.mu.Lock()
	defer replay.mu.Unlock()
	for i, td := range replay.got {
		md := client.FromContext(replay.ctxs[i]).Metadata
		svc := serviceOf(td)
		wantTopic := liveTopic
		if svc[:7] == "kgo-dlq" {
			wantTopic = dlqTopic
		}
		assert.Equal(t, []string{wantTopic}, md.Get("kafka.topic"), svc)
		require.Len(t, md.Get("kafka.partition"), 1, svc)
		p, err := strconv.Atoi(md.Get("kafka.partition")[0])
		require.NoError(t, err)
		assert.True(t, p >= 0 && p < testservers.KafkaPartitions, "%s: partition %d", svc, p)
		require.Len(t, md.Get("kafka.offset"), 1, svc)
		_, err = strconv.ParseInt(md.Get("kafka.offset")[0], 10, 64)
		require.NoError(t, err, svc)
		assert.Equal(t, []string{"failover_group/ingest"}, md.Get(dlqmeta.KeyGroup), svc)
		assert.Equal(t, []string{"clickhouse/live"}, md.Get(dlqmeta.KeyFailedMember), svc)
		assert.True(t, dlqmeta.IsDeadLettered(replay.ctxs[i]), svc)
		if svc[:7] == "exp-dlq" {
			// The exporter's include_metadata_keys round trip.
			assert.Equal(t, []string{"permanent:clickhouse_469"}, md.Get(dlqmeta.KeyReason), svc)
			assert.Equal(t, []string{stampTime.Format(time.RFC3339Nano)}, md.Get(dlqmeta.KeyTime), svc)
		} else {
			assert.Equal(t, []string{"transient:connection_refused"}, md.Get(dlqmeta.KeyReason), svc)
		}
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	for i, td := range live.got {
		md := client.FromContext(live.ctxs[i]).Metadata
		assert.Equal(t, []string{liveTopic}, md.Get("kafka.topic"))
		assert.False(t, dlqmeta.IsDeadLettered(live.ctxs[i]), serviceOf(td))
		if serviceOf(td) != "exp-live-0" {
			assert.Equal(t, []string{"t1"}, md.Get("x-tenant"), "headers become metadata keys")
		}
	}
}
