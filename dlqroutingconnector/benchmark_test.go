// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// BenchmarkRouting measures the routing decision for one request of 100
// spans, with the consumers doing nothing: matching the metadata, handing
// the batch (uncopied) to one route, counting the items.
func BenchmarkRouting(b *testing.B) {
	cases := []struct {
		name   string
		topics []string
		header bool
		ctx    context.Context
	}{
		{"replay_by_topic", []string{"otlp_spans_dlq"}, false, kafkaCtx("otlp_spans_dlq", nil)},
		{"replay_by_header", nil, true, kafkaCtx("otlp_spans_dlq", dlqHeaders)},
		{"default_topic_and_header_checked", []string{"otlp_spans_dlq"}, true, kafkaCtx("otlp_spans", nil)},
	}
	for _, telemetry := range []string{"nop_telemetry", "sdk_telemetry"} {
		for _, tc := range cases {
			b.Run(telemetry+"/"+tc.name, func(b *testing.B) {
				cfg := createDefaultConfig()
				cfg.ReplayPipelines = pids(b, "traces/replay")
				cfg.DefaultPipelines = pids(b, "traces/live")
				cfg.PoisonPipelines = pids(b, "traces/poison")
				cfg.Match.Topics = tc.topics
				cfg.Match.DLQHeader = tc.header
				var tel *componenttest.Telemetry
				if telemetry == "sdk_telemetry" {
					tel = componenttest.NewTelemetry()
					b.Cleanup(func() { require.NoError(b, tel.Shutdown(context.Background())) })
				}
				c, err := newTracesConnector(b, cfg, tel, map[string]consumer.Traces{
					"traces/replay": consumertest.NewNop(), "traces/live": consumertest.NewNop(), "traces/poison": consumertest.NewNop(),
				})
				require.NoError(b, err)
				td := testTraces(100, "svc")
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := c.ConsumeTraces(tc.ctx, td); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
