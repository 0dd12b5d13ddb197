// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/testbed/testservers"
)

// unmarshalInto decodes a user-style config map over a factory's defaults
// and validates it, as the collector does with YAML.
func unmarshalInto(t *testing.T, factory component.Factory, raw map[string]any) component.Config {
	t.Helper()
	cfg := factory.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	return cfg
}

// replayReceiverConfig is the kafka receiver configuration the README
// recommends for at-least-once replay from the DLQ.
func replayReceiverConfig(broker, group string, topics ...string) map[string]any {
	return map[string]any{
		"brokers":        []string{broker},
		"group_id":       group,
		"initial_offset": "earliest",
		"traces":         map[string]any{"topics": topics, "encoding": "otlp_proto"},
		"message_marking": map[string]any{
			"after":              true,
			"on_error":           false,
			"on_permanent_error": false,
		},
		"error_backoff": map[string]any{
			"enabled":          true,
			"initial_interval": "50ms",
			"max_interval":     "500ms",
			"max_elapsed_time": "0s",
		},
		"autocommit": map[string]any{"enable": true, "interval": "100ms"},
	}
}

// startKafkaReceiver creates the real contrib kafka receiver from its
// factory, feeding next, and starts it.
func startKafkaReceiver(t *testing.T, raw map[string]any, next consumer.Traces) {
	t.Helper()
	f := kafkareceiver.NewFactory()
	cfg := unmarshalInto(t, f, raw)
	set := receivertest.NewNopSettings(f.Type())
	set.Logger = zaptest.NewLogger(t)
	r, err := f.CreateTraces(t.Context(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) //nolint:usetesting // a cleanup runs after t.Context() is cancelled
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	})
}

// startKafkaExporter creates the real contrib kafka exporter, synchronous
// (no queue, no retry), writing traces to topic and turning the DLQ
// metadata keys into record headers.
func startKafkaExporter(t *testing.T, broker, topic string) exporter.Traces {
	t.Helper()
	f := kafkaexporter.NewFactory()
	cfg := unmarshalInto(t, f, map[string]any{
		"brokers":               []string{broker},
		"traces":                map[string]any{"topic": topic, "encoding": "otlp_proto"},
		"include_metadata_keys": dlqmeta.Keys,
		"sending_queue":         map[string]any{"enabled": false},
		"retry_on_failure":      map[string]any{"enabled": false},
	})
	set := exportertest.NewNopSettings(f.Type())
	set.Logger = zaptest.NewLogger(t)
	e, err := f.CreateTraces(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, e.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e
}

// produceOTLP writes td as one OTLP-proto record with franz-go.
func produceOTLP(t *testing.T, cl *kgo.Client, topic string, td ptrace.Traces, headers map[string]string) {
	t.Helper()
	payload, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	rec := &kgo.Record{Topic: topic, Value: payload}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, rec).FirstErr())
}

// serviceOf is the service.name of a test batch (one resource each).
func serviceOf(td ptrace.Traces) string {
	v, _ := td.ResourceSpans().At(0).Resource().Attributes().Get("service.name")
	return v.Str()
}

func waitCommitted(t *testing.T, k *testservers.Kafka, group, topic string, want int64) {
	t.Helper()
	testservers.WaitFor(t, 60*time.Second, "group "+group+" to commit every record of "+topic, func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		n, err := k.CommittedCountE(ctx, group, topic)
		if err != nil {
			return false, err.Error()
		}
		return n == want, "committed " + itoa(n) + " of " + itoa(want)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
