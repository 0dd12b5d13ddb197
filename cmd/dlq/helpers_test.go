// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// referenceConfig is the collector's reference configuration, which the
// tests point at their kfake broker through KAFKA_BROKERS, as a user does.
const referenceConfig = "../../testdata/otelcol-failover.yaml"

var (
	dlqTopics    = []string{"otlp_spans_dlq", "otlp_metrics_dlq", "otlp_logs_dlq"}
	poisonTopics = []string{"otlp_spans_poison", "otlp_metrics_poison", "otlp_logs_poison"}
)

// startKafka starts an in-process Kafka (kfake) on a free port of 127.0.0.1
// with the reference configuration's topics, 2 partitions each, and
// returns its address. Auto-creation is on, so that a test can tell that
// dlq never asks for it.
func startKafka(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(2, append(append([]string{}, dlqTopics...), poisonTopics...)...),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// stamp is the headers a failover group puts on a parked record.
type stamp struct {
	reason, member, token string
	at                    time.Time
	// poisonReason, when set, adds the poison stamp (at poisonAt).
	poisonReason string
	poisonAt     time.Time
}

func (s stamp) headers() []kgo.RecordHeader {
	h := []kgo.RecordHeader{
		{Key: dlqmeta.KeyGroup, Value: []byte("failover_group/ingest")},
		{Key: dlqmeta.KeyFailedMember, Value: []byte(s.member)},
		{Key: dlqmeta.KeyReason, Value: []byte(s.reason)},
		{Key: dlqmeta.KeyTime, Value: []byte(s.at.UTC().Format(time.RFC3339Nano))},
	}
	if s.token != "" {
		h = append(h, kgo.RecordHeader{Key: dlqmeta.KeyDedupToken, Value: []byte(s.token)})
	}
	if s.poisonReason != "" {
		h = append(h,
			kgo.RecordHeader{Key: dlqmeta.KeyPoisonReason, Value: []byte(s.poisonReason)},
			kgo.RecordHeader{Key: dlqmeta.KeyPoisonTime, Value: []byte(s.poisonAt.UTC().Format(time.RFC3339Nano))})
	}
	return h
}

// produce writes one record to topic's partition and returns it as written.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, value []byte, s stamp) *kgo.Record {
	t.Helper()
	rec := &kgo.Record{Topic: topic, Partition: partition, Value: value, Headers: s.headers()}
	require.NoError(t, cl.ProduceSync(t.Context(), rec).FirstErr())
	return rec
}

// spans is an OTLP traces request of n spans of service, starting at start
// one millisecond apart, each 1 ms long.
func spans(t *testing.T, service string, n int, start time.Time) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i)})
		at := start.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
	}
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

// gauge is an OTLP metrics request with n gauge points of service.
func gauge(t *testing.T, service string, n int, at time.Time) []byte {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("g")
	g := m.SetEmptyGauge()
	for i := range n {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Second)))
		dp.SetIntValue(int64(i))
	}
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	require.NoError(t, err)
	return b
}

// logsJSON is an OTLP/JSON logs request with one record per service.
func logsJSON(t *testing.T, at time.Time, services ...string) []byte {
	t.Helper()
	ld := plog.NewLogs()
	for _, s := range services {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", s)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		lr.Body().SetStr("hello")
	}
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	return b
}

// commit commits offset for group on topic's partition, as a replay
// consumer would.
func commit(t *testing.T, cl *kgo.Client, group, topic string, partition int32, offset int64) {
	t.Helper()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: partition, At: offset, LeaderEpoch: -1})
	resp, err := kadm.NewClient(cl).CommitOffsets(t.Context(), group, offs)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

// readAll returns every record of topic.
func readAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr)
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), topic)
	require.NoError(t, err)
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	consumer := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for int64(len(recs)) < want {
		fetches := consumer.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %s: %d of %d records", topic, len(recs), want)
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// cli runs the command with env as its whole environment.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = run(t.Context(), args, lookup, &out, &errOut)
	return out.String(), errOut.String(), code
}

// writeConfig writes a collector config into the test's directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	return p
}

// header returns rec's value of key and whether it has it.
func headerOf(rec *kgo.Record, key string) (string, bool) {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
