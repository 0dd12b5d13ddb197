// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadatatest"
	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// errConstraint is what clickhouse-go reports for a row refused by a table
// constraint over HTTP; errclass classes it permanent (code 469).
var errConstraint = errors.New(`sending request: [HTTP 500] response body: "Code: 469. DB::Exception: Constraint ` +
	"`no_poison`" + ` for table otel.otel_traces is violated at row 1. (VIOLATED_CONSTRAINT)"`)

// errRefused is a transient outage.
var errRefused = fmt.Errorf("dial tcp 127.0.0.1:9: %w", syscall.ECONNREFUSED)

func TestErrorFixturesAreClassifiedAsIntended(t *testing.T) {
	require.True(t, errclass.IsPermanent(errConstraint))
	require.False(t, errclass.IsPermanent(errRefused))
}

func topicsCfg(t *testing.T) *Config {
	cfg := createDefaultConfig()
	cfg.ReplayPipelines = pids(t, "traces/replay")
	cfg.DefaultPipelines = pids(t, "traces/live")
	cfg.Match.Topics = []string{"otlp_spans_dlq"}
	cfg.Match.DLQHeader = false
	return cfg
}

// Matched data goes only to replay, other data only to default.
func TestRoutesWholeBatchesByTopic(t *testing.T) {
	replay, live := &tracesPipe{}, &tracesPipe{}
	c := mustTracesConnector(t, topicsCfg(t), nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": live})

	dlqBatch := testTraces(3, "svc")
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), dlqBatch))
	liveBatch := testTraces(5, "svc")
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans", nil), liveBatch))
	// No kafka metadata at all (e.g. OTLP ingest): not replayed.
	require.NoError(t, c.ConsumeTraces(t.Context(), testTraces(2, "svc")))

	assert.Equal(t, 1, replay.batches())
	assert.Equal(t, 3, replay.spans())
	assert.Equal(t, 2, live.batches())
	assert.Equal(t, 7, live.spans())
	// The very batch is handed on: no copy, no split.
	assert.Equal(t, dlqBatch, replay.got[0])
	assert.Equal(t, liveBatch, live.got[0])
	assert.False(t, dlqBatch.IsReadOnly(), "a single non-mutating route must not mark or copy the data")
}

func TestMatchCriteria(t *testing.T) {
	tests := []struct {
		name      string
		topics    []string
		header    bool
		ctx       context.Context
		wantRoute string
	}{
		{"header only, header present", nil, true, kafkaCtx("anything", dlqHeaders), "replay"},
		{"header only, header absent", nil, true, kafkaCtx("otlp_spans_dlq", nil), "live"},
		{"header only, empty header value still marks DLQ data", nil, true, kafkaCtx("x", map[string]string{dlqmeta.KeyGroup: ""}), "replay"},
		{"header key is case-insensitive", nil, true, kafkaCtx("x", map[string]string{"OtelCol-Failover-Group": "g"}), "replay"},
		{"header disabled ignores header", []string{"dlq"}, false, kafkaCtx("live", dlqHeaders), "live"},
		{"topic matches", []string{"a", "dlq"}, false, kafkaCtx("dlq", nil), "replay"},
		{"topic match is exact", []string{"dlq"}, false, kafkaCtx("dlq2", nil), "live"},
		{"any criterion: topic", []string{"dlq"}, true, kafkaCtx("dlq", nil), "replay"},
		{"any criterion: header", []string{"dlq"}, true, kafkaCtx("other", dlqHeaders), "replay"},
		{"any criterion: none", []string{"dlq"}, true, kafkaCtx("other", map[string]string{"unrelated": "1"}), "live"},
		{"no metadata", []string{"dlq"}, true, t.Context(), "live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.ReplayPipelines = pids(t, "traces/replay")
			cfg.DefaultPipelines = pids(t, "traces/live")
			cfg.Match.Topics = tt.topics
			cfg.Match.DLQHeader = tt.header
			replay, live := &tracesPipe{}, &tracesPipe{}
			c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": live})
			require.NoError(t, c.ConsumeTraces(tt.ctx, testTraces(1, "svc")))
			if tt.wantRoute == "replay" {
				assert.Equal(t, 1, replay.batches())
				assert.Equal(t, 0, live.batches())
			} else {
				assert.Equal(t, 0, replay.batches())
				assert.Equal(t, 1, live.batches())
			}
		})
	}
}

func TestUnmatchedWithoutDefaultPipelinesIsAnError(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.DefaultPipelines = nil
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	replay := &tracesPipe{}
	c := mustTracesConnector(t, cfg, tel, map[string]consumer.Traces{"traces/replay": replay})

	err := c.ConsumeTraces(kafkaCtx("otlp_spans", nil), testTraces(4, "svc"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `kafka.topic "otlp_spans" is not in match::topics [otlp_spans_dlq]`)
	assert.Contains(t, err.Error(), "default_pipelines is empty")
	assert.True(t, consumererror.IsPermanent(err), "routing will never change for this data: the receiver must treat it as permanent")
	assert.Equal(t, 0, replay.batches())

	err = c.ConsumeTraces(t.Context(), testTraces(1, "svc"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no kafka.topic metadata")

	metadatatest.AssertEqualDlqRoutingUnmatchedItems(t, tel, []metricdata.DataPoint[int64]{
		{Value: 5, Attributes: attribute.NewSet(attribute.String("otelcol.signal", "traces"))},
	}, metricdatatest.IgnoreTimestamp())
}

// Replayed data keeps its client metadata, DLQ keys included.
func TestClientMetadataPassesThroughUntouched(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.Match.DLQHeader = true
	cfg.PoisonPipelines = pids(t, "traces/poison")
	replay := &tracesPipe{err: func(td ptrace.Traces) error {
		if td.ResourceSpans().At(0).Resource().Attributes().AsRaw()["service.name"] == "poison" {
			return errConstraint
		}
		return nil
	}}
	live, poison := &tracesPipe{}, &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": live, "traces/poison": poison})

	ctx := kafkaCtx("otlp_spans_dlq", dlqHeaders)
	require.NoError(t, c.ConsumeTraces(ctx, testTraces(1, "good")))
	require.NoError(t, c.ConsumeTraces(ctx, testTraces(1, "poison")))
	liveCtx := kafkaCtx("otlp_spans", map[string]string{"x-tenant": "t1"})
	require.NoError(t, c.ConsumeTraces(liveCtx, testTraces(1, "good")))

	check := func(got, want context.Context) {
		t.Helper()
		gotMD, wantMD := client.FromContext(got).Metadata, client.FromContext(want).Metadata
		n := 0
		for k := range wantMD.Keys() {
			n++
			assert.Equal(t, wantMD.Get(k), gotMD.Get(k), "metadata key %q", k)
		}
		m := 0
		for range gotMD.Keys() {
			m++
		}
		assert.Equal(t, n, m, "metadata keys added or removed")
	}
	require.Len(t, replay.ctxs, 2)
	check(replay.ctxs[0], ctx)
	check(replay.ctxs[1], ctx)
	require.Len(t, poison.ctxs, 1)
	// Poison keeps every key and adds why the replay refused it.
	poisonMD := client.FromContext(poison.ctxs[0]).Metadata
	for k := range client.FromContext(ctx).Metadata.Keys() {
		assert.Equal(t, client.FromContext(ctx).Metadata.Get(k), poisonMD.Get(k), "metadata key %q", k)
	}
	assert.Equal(t, []string{"permanent:clickhouse_469"}, poisonMD.Get(dlqmeta.KeyPoisonReason))
	require.Len(t, poisonMD.Get(dlqmeta.KeyPoisonTime), 1)
	_, err := time.Parse(time.RFC3339Nano, poisonMD.Get(dlqmeta.KeyPoisonTime)[0])
	require.NoError(t, err)
	require.Len(t, live.ctxs, 1)
	check(live.ctxs[0], liveCtx)
	// The loop guard's view of it.
	assert.True(t, dlqmeta.IsDeadLettered(replay.ctxs[0]))
	assert.True(t, dlqmeta.IsDeadLettered(poison.ctxs[0]))
}

// Transient errors go back to the receiver, untouched by poison.
func TestTransientReplayErrorIsReturned(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	replay, poison := &tracesPipe{err: failWith(errRefused)}, &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}, "traces/poison": poison})

	err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(2, "svc"))
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "replay pipelines failed (transient")
	assert.Equal(t, 0, poison.batches(), "transient failures must not be poisoned")
}

func TestReplayErrorMarkedPermanentButTransientByClassIsReturnedAsRetryable(t *testing.T) {
	// The OTLP exporters mark Unauthenticated permanent; errclass says the
	// destination is misconfigured, not that the data is bad.
	unauth := consumererror.NewPermanent(status.Error(codes.Unauthenticated, "bad token"))
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	poison := &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{
		"traces/replay": &tracesPipe{err: failWith(unauth)}, "traces/live": &tracesPipe{}, "traces/poison": poison,
	})
	err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc"))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "the receiver must retry, not skip or pause")
	assert.Contains(t, err.Error(), "Unauthenticated")
	var te *transientError
	require.ErrorAs(t, err, &te)
	assert.ErrorIs(t, te.Cause(), unauth)
	assert.Equal(t, 0, poison.batches())
}

func TestPermanentReplayErrorGoesToPoisonAndIsAcknowledged(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	replay, poison := &tracesPipe{err: failWith(errConstraint)}, &tracesPipe{}
	c := mustTracesConnector(t, cfg, tel, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}, "traces/poison": poison})

	td := testTraces(3, "svc")
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), td))
	require.Equal(t, 1, poison.batches())
	assert.Equal(t, 3, poison.spans())
	assert.Equal(t, td, poison.got[0], "the poison pipelines get the rejected batch itself")

	metadatatest.AssertEqualDlqRoutingRoutedItems(t, tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: routeAttrs("replay", "permanent_error")},
		{Value: 3, Attributes: routeAttrs("poison", "accepted")},
	}, metricdatatest.IgnoreTimestamp())
}

// Without poison pipelines, refused replay data has nowhere to be kept: it
// stays in the DLQ (a retryable error: the receiver neither commits nor,
// with on_permanent_error, skips it), and the stall is loud.
func TestPermanentReplayErrorWithoutPoisonIsKeptInTheDLQ(t *testing.T) {
	cfg := topicsCfg(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	c, host, logs := startedTracesConnector(t, cfg, tel, map[string]consumer.Traces{"traces/replay": &tracesPipe{err: failWith(errConstraint)}, "traces/live": &tracesPipe{}})
	for range 3 {
		err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc"))
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "the kafka receiver must keep the record")
		assert.Contains(t, err.Error(), "poison_pipelines is empty")
	}
	assert.Len(t, logs.FilterMessageSnippet("cannot be kept").All(), 1, "one line per stall, not per retry")
	require.NotNil(t, host.last())
	assert.Equal(t, componentstatus.StatusRecoverableError, host.last().Status())
	assert.ErrorIs(t, host.last().Err(), errNoPoisonPipelines)
	metadatatest.AssertEqualDlqRoutingPoisonStalled(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("otelcol.signal", "traces"))},
	}, metricdatatest.IgnoreTimestamp())
}

// When the poison pipelines fail, in any way, the record is not committed
// (poison is never lost), the stall is reported once, and its end too.
func TestPoisonFailureIsJoinedWithTheOriginalError(t *testing.T) {
	for _, tt := range []struct {
		name      string
		poisonErr error
	}{
		{"poison down", errRefused},
		{"poison refuses it", consumererror.NewPermanent(errors.New("poison sink refuses it"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := topicsCfg(t)
			cfg.PoisonPipelines = pids(t, "traces/poison")
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			poison := &tracesPipe{err: failWith(tt.poisonErr)}
			c, host, logs := startedTracesConnector(t, cfg, tel, map[string]consumer.Traces{
				"traces/replay": &tracesPipe{err: failWith(errConstraint)}, "traces/live": &tracesPipe{}, "traces/poison": poison,
			})
			for range 3 {
				err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc"))
				require.Error(t, err, "data the poison pipeline did not take must not be acknowledged")
				assert.Contains(t, err.Error(), "Code: 469")
				assert.Contains(t, err.Error(), tt.poisonErr.Error())
				assert.Contains(t, err.Error(), "poison pipelines failed too")
				assert.False(t, consumererror.IsPermanent(err), "retryable, whatever the poison failure says: never skipped")
			}
			assert.Equal(t, 3, poison.batches())
			assert.Len(t, logs.FilterLevelExact(zapcore.ErrorLevel).All(), 1, "one line per stall, not per retry")
			assert.Equal(t, componentstatus.StatusRecoverableError, host.last().Status())
			assert.ErrorIs(t, host.last().Err(), errPoisonFailed)

			poison.mu.Lock()
			poison.err = nil
			poison.mu.Unlock()
			require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc")))
			assert.Equal(t, componentstatus.StatusOK, host.last().Status(), "the stall's end is reported")
			assert.Len(t, logs.FilterMessageSnippet("replays again").All(), 1)
			metadatatest.AssertEqualDlqRoutingPoisonStalled(t, tel, []metricdata.DataPoint[int64]{
				{Value: 0, Attributes: attribute.NewSet(attribute.String("otelcol.signal", "traces"))},
			}, metricdatatest.IgnoreTimestamp())
		})
	}
}

func TestOnlyTheFailedPartIsPoisoned(t *testing.T) {
	failed := testTraces(2, "poison")
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	poison := &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{
		"traces/replay": &tracesPipe{err: failWith(consumererror.NewTraces(errConstraint, failed))}, "traces/live": &tracesPipe{}, "traces/poison": poison,
	})
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(10, "svc")))
	require.Equal(t, 1, poison.batches())
	assert.Equal(t, 2, poison.spans())
	assert.Equal(t, failed, poison.got[0])
}

// A record whose refused part could not be kept is delivered again by the
// receiver: the replay pipelines took the rest already, so they get only the
// refused part again (no row written twice), and the stall ends when that
// part is kept or taken.
func TestStalledRecordReplaysOnlyItsRefusedPart(t *testing.T) {
	refused := testTraces(1, "poison")
	replay := &tracesPipe{err: func(td ptrace.Traces) error {
		if td.SpanCount() > 1 {
			return consumererror.NewTraces(errConstraint, refused) // took all but one
		}
		return errConstraint
	}}
	t.Run("kept in poison", func(t *testing.T) {
		cfg := topicsCfg(t)
		cfg.PoisonPipelines = pids(t, "traces/poison")
		replay.mu.Lock()
		replay.got = nil
		replay.mu.Unlock()
		poison := &tracesPipe{err: failWith(errRefused)}
		c, host, logs := startedTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}, "traces/poison": poison})
		record := kafkaCtx("otlp_spans_dlq", nil)
		for range 3 {
			require.Error(t, c.ConsumeTraces(record, testTraces(10, "svc")))
		}
		assert.Equal(t, 10+1+1, replay.spans(), "the rest of the record is not replayed again")
		poison.mu.Lock()
		poison.err = nil
		poison.mu.Unlock()
		require.NoError(t, c.ConsumeTraces(record, testTraces(10, "svc")))
		assert.Equal(t, 10+1+1+1, replay.spans())
		assert.Equal(t, componentstatus.StatusOK, host.last().Status())
		assert.Len(t, logs.FilterMessageSnippet("replays again").All(), 1)
		// Another record of the partition is replayed whole.
		require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", map[string]string{}), testTraces(1, "ok")))
	})
	t.Run("taken once the refusal is fixed", func(t *testing.T) {
		cfg := topicsCfg(t) // no poison pipelines
		fixed := atomic.Bool{}
		replay := &tracesPipe{err: func(td ptrace.Traces) error {
			switch {
			case fixed.Load():
				return nil
			case td.SpanCount() > 1:
				return consumererror.NewTraces(errConstraint, refused)
			default:
				return errConstraint
			}
		}}
		c, host, _ := startedTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}})
		record := kafkaCtx("otlp_spans_dlq", nil)
		require.Error(t, c.ConsumeTraces(record, testTraces(10, "svc")))
		require.Equal(t, componentstatus.StatusRecoverableError, host.last().Status())
		fixed.Store(true)
		require.NoError(t, c.ConsumeTraces(record, testTraces(10, "svc")))
		assert.Equal(t, 10+1, replay.spans(), "only the refused part was replayed again")
		assert.Equal(t, componentstatus.StatusOK, host.last().Status(), "the stall ends when the replay takes it")
	})
}

func TestSeveralReplayPipelinesPoisonOnlyIfAllRejectPermanently(t *testing.T) {
	for _, tt := range []struct {
		name         string
		a, b         error
		wantErr      bool
		wantPoisoned int
	}{
		{"one permanent, one transient: retry", errConstraint, errRefused, true, 0},
		{"both permanent: poison", errConstraint, consumererror.NewPermanent(errors.New("bad")), false, 1},
		{"one permanent, one accepted: poison", errConstraint, nil, false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := topicsCfg(t)
			cfg.ReplayPipelines = pids(t, "traces/replay_a", "traces/replay_b")
			cfg.PoisonPipelines = pids(t, "traces/poison")
			poison := &tracesPipe{}
			c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{
				"traces/replay_a": &tracesPipe{err: failWith(tt.a)},
				"traces/replay_b": &tracesPipe{err: failWith(tt.b)},
				"traces/live":     &tracesPipe{},
				"traces/poison":   poison,
			})
			err := c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), testTraces(1, "svc"))
			if tt.wantErr {
				require.Error(t, err)
				assert.False(t, consumererror.IsPermanent(err))
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantPoisoned, poison.batches())
		})
	}
}

// A mutating replay pipeline must not hand altered data to the poison
// pipelines, and a mutating poison pipeline must not alter what a replay
// pipeline may still hold. Run with -race.
func TestPoisonGetsDataUnchangedByMutatingReplayPipeline(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	replay := &tracesPipe{mutates: true, err: failWith(errConstraint)}
	poison := &tracesPipe{mutates: true}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}, "traces/poison": poison})

	td := testTraces(1, "svc")
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), td))
	require.Equal(t, 1, poison.batches())
	_, mutatedOriginal := td.ResourceSpans().At(0).Resource().Attributes().Get("mutated.by")
	assert.False(t, mutatedOriginal, "the replay pipeline changed the batch that went on to poison")
	assert.NotEqual(t, td, replay.got[0], "a mutating replay consumer must get its own copy when poison pipelines may need the original")
	assert.NotEqual(t, td, poison.got[0], "a mutating poison consumer must get its own copy")
}

func TestMutatingReplayPipelineWithoutPoisonGetsTheBatchItself(t *testing.T) {
	replay := &tracesPipe{mutates: true}
	c := mustTracesConnector(t, topicsCfg(t), nil, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}})
	td := testTraces(1, "svc")
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans_dlq", nil), td))
	assert.Equal(t, td, replay.got[0], "no poison route: nothing to protect, no copy")
}

func TestDefaultRouteErrorsAreReturnedAsIs(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	poison := &tracesPipe{}
	c := mustTracesConnector(t, cfg, nil, map[string]consumer.Traces{
		"traces/replay": &tracesPipe{}, "traces/live": &tracesPipe{err: failWith(errConstraint)}, "traces/poison": poison,
	})
	err := c.ConsumeTraces(kafkaCtx("otlp_spans", nil), testTraces(1, "svc"))
	require.ErrorIs(t, err, errConstraint)
	assert.Equal(t, 0, poison.batches(), "poison is for replayed data only")
}

func TestCreationErrors(t *testing.T) {
	t.Run("replay pipeline not wired to the connector", func(t *testing.T) {
		cfg := topicsCfg(t)
		_, err := newTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/live": &tracesPipe{}, "traces/other": &tracesPipe{}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `pipeline "traces/replay" in replay_pipelines does not list this connector among its receivers`)
	})
	t.Run("poison pipeline not wired", func(t *testing.T) {
		cfg := topicsCfg(t)
		cfg.PoisonPipelines = pids(t, "traces/poison")
		_, err := newTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/live": &tracesPipe{}, "traces/replay": &tracesPipe{}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `pipeline "traces/poison" in poison_pipelines`)
	})
	t.Run("no replay pipeline of the signal", func(t *testing.T) {
		cfg := createDefaultConfig()
		cfg.ReplayPipelines = pids(t, "logs/replay")
		_, err := newTracesConnector(t, cfg, nil, map[string]consumer.Traces{"traces/live": &tracesPipe{}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "replay_pipelines lists no traces pipeline")
	})
	t.Run("not a router", func(t *testing.T) {
		cfg := topicsCfg(t)
		_, err := NewFactory().CreateTracesToTraces(t.Context(), connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a traces router")
	})
}

// One config for all three signals: each instance takes its own pipelines.
func TestMetricsAndLogsRoute(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ReplayPipelines = pids(t, "traces/replay", "metrics/replay", "logs/replay")
	cfg.DefaultPipelines = pids(t, "metrics/live", "logs/live")
	cfg.PoisonPipelines = pids(t, "metrics/poison", "logs/poison")
	require.NoError(t, cfg.Validate())
	set := connectortest.NewNopSettings(metadata.Type)
	dlq := kafkaCtx("whatever", dlqHeaders)
	live := kafkaCtx("otlp_metrics", nil)

	t.Run("metrics", func(t *testing.T) {
		replay, def, poison := new(consumertest.MetricsSink), new(consumertest.MetricsSink), new(consumertest.MetricsSink)
		failing, err := consumer.NewMetrics(func(context.Context, pmetric.Metrics) error { return errConstraint })
		require.NoError(t, err)
		c, err := NewFactory().CreateMetricsToMetrics(t.Context(), set, cfg, connector.NewMetricsRouter(map[pipeline.ID]consumer.Metrics{
			pid(t, "metrics/replay"): replay, pid(t, "metrics/live"): def, pid(t, "metrics/poison"): poison,
		}))
		require.NoError(t, err)
		require.NoError(t, c.ConsumeMetrics(dlq, testMetrics(3)))
		require.NoError(t, c.ConsumeMetrics(live, testMetrics(4)))
		assert.Equal(t, 3, replay.DataPointCount())
		assert.Equal(t, 4, def.DataPointCount())
		assert.Equal(t, 0, poison.DataPointCount())
		require.NoError(t, c.Shutdown(t.Context()))

		c, err = NewFactory().CreateMetricsToMetrics(t.Context(), set, cfg, connector.NewMetricsRouter(map[pipeline.ID]consumer.Metrics{
			pid(t, "metrics/replay"): failing, pid(t, "metrics/live"): def, pid(t, "metrics/poison"): poison,
		}))
		require.NoError(t, err)
		require.NoError(t, c.ConsumeMetrics(dlq, testMetrics(2)))
		assert.Equal(t, 2, poison.DataPointCount())
		require.NoError(t, c.Shutdown(t.Context()))
	})

	t.Run("logs", func(t *testing.T) {
		replay, def, poison := new(consumertest.LogsSink), new(consumertest.LogsSink), new(consumertest.LogsSink)
		failing, err := consumer.NewLogs(func(context.Context, plog.Logs) error { return errRefused })
		require.NoError(t, err)
		c, err := NewFactory().CreateLogsToLogs(t.Context(), set, cfg, connector.NewLogsRouter(map[pipeline.ID]consumer.Logs{
			pid(t, "logs/replay"): replay, pid(t, "logs/live"): def, pid(t, "logs/poison"): poison,
		}))
		require.NoError(t, err)
		require.NoError(t, c.ConsumeLogs(dlq, testLogs(3)))
		require.NoError(t, c.ConsumeLogs(live, testLogs(4)))
		assert.Equal(t, 3, replay.LogRecordCount())
		assert.Equal(t, 4, def.LogRecordCount())
		require.NoError(t, c.Shutdown(t.Context()))

		c, err = NewFactory().CreateLogsToLogs(t.Context(), set, cfg, connector.NewLogsRouter(map[pipeline.ID]consumer.Logs{
			pid(t, "logs/replay"): failing, pid(t, "logs/live"): def, pid(t, "logs/poison"): poison,
		}))
		require.NoError(t, err)
		err = c.ConsumeLogs(dlq, testLogs(2))
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		assert.Equal(t, 0, poison.LogRecordCount())
		require.NoError(t, c.Shutdown(t.Context()))
	})

	t.Run("failed part of metrics and logs", func(t *testing.T) {
		part, ok := failedMetrics(consumererror.NewMetrics(errConstraint, testMetrics(1)))
		require.True(t, ok)
		assert.Equal(t, 1, part.DataPointCount())
		lpart, ok := failedLogs(consumererror.NewLogs(errConstraint, testLogs(2)))
		require.True(t, ok)
		assert.Equal(t, 2, lpart.LogRecordCount())
		_, ok = failedLogs(errors.Join(consumererror.NewLogs(errConstraint, testLogs(2)), errRefused))
		assert.False(t, ok, "a failed part inside a join belongs to one pipeline, not the batch")
	})
}

func TestTelemetryCountsEveryRoute(t *testing.T) {
	cfg := topicsCfg(t)
	cfg.PoisonPipelines = pids(t, "traces/poison")
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	replay := &tracesPipe{err: func(td ptrace.Traces) error {
		switch td.ResourceSpans().At(0).Resource().Attributes().AsRaw()["service.name"] {
		case "poison":
			return errConstraint
		case "down":
			return errRefused
		}
		return nil
	}}
	c := mustTracesConnector(t, cfg, tel, map[string]consumer.Traces{"traces/replay": replay, "traces/live": &tracesPipe{}, "traces/poison": &tracesPipe{}})
	dlq := kafkaCtx("otlp_spans_dlq", nil)
	require.NoError(t, c.ConsumeTraces(dlq, testTraces(5, "good")))
	require.NoError(t, c.ConsumeTraces(dlq, testTraces(2, "poison")))
	require.Error(t, c.ConsumeTraces(dlq, testTraces(3, "down")))
	require.NoError(t, c.ConsumeTraces(kafkaCtx("otlp_spans", nil), testTraces(7, "good")))

	metadatatest.AssertEqualDlqRoutingRoutedItems(t, tel, []metricdata.DataPoint[int64]{
		{Value: 5, Attributes: routeAttrs("replay", "accepted")},
		{Value: 2, Attributes: routeAttrs("replay", "permanent_error")},
		{Value: 3, Attributes: routeAttrs("replay", "transient_error")},
		{Value: 2, Attributes: routeAttrs("poison", "accepted")},
		{Value: 7, Attributes: routeAttrs("default", "accepted")},
	}, metricdatatest.IgnoreTimestamp())
}

// routeAttrs are the attributes of a traces route's point.
func routeAttrs(route, outcome string) attribute.Set {
	return attribute.NewSet(attribute.String("route", route), attribute.String("outcome", outcome), attribute.String("otelcol.signal", "traces"))
}
