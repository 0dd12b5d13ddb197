// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/otelfailover/otelcol-failover/dlqroutingconnector/internal/metadata"
)

// loadConfig unmarshals testdata/config.yaml's entry for id over the
// factory's default config, as the collector does.
func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewIDWithName(metadata.Type, name)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, sub.Unmarshal(cfg)
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, []pipeline.ID{
		pipeline.NewIDWithName(pipeline.SignalTraces, "replay"),
		pipeline.NewIDWithName(pipeline.SignalMetrics, "replay"),
		pipeline.NewIDWithName(pipeline.SignalLogs, "replay"),
	}, cfg.ReplayPipelines)
	assert.Equal(t, []pipeline.ID{pipeline.NewIDWithName(pipeline.SignalTraces, "live")}, cfg.DefaultPipelines)
	assert.Equal(t, []pipeline.ID{pipeline.NewIDWithName(pipeline.SignalTraces, "poison")}, cfg.PoisonPipelines)
	assert.Equal(t, []string{"otlp_spans_dlq", "otlp_logs_dlq"}, cfg.Match.Topics)
	assert.False(t, cfg.Match.DLQHeader)

	minimal, err := loadConfig(t, "minimal")
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(minimal))
	assert.True(t, minimal.Match.DLQHeader, "match::dlq_header defaults to true")
	assert.Empty(t, minimal.Match.Topics)
	assert.Empty(t, minimal.DefaultPipelines)
	assert.Empty(t, minimal.PoisonPipelines)
}

func TestDefaultConfigIsRefusedUntilReplayPipelinesAreSet(t *testing.T) {
	err := confmap.Validate(NewFactory().CreateDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replay_pipelines: must list at least one pipeline")
}

func TestConfigValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		// every string must appear in the error
		want []string
	}{
		{"no_replay", []string{"replay_pipelines: must list at least one pipeline", "e.g. [traces/replay]"}},
		{"replay_twice", []string{`replay_pipelines: pipeline "traces/replay" is listed twice; list each pipeline once`}},
		{"replay_and_default", []string{`default_pipelines: pipeline "traces/replay" is also in replay_pipelines`, "remove it from one of them"}},
		{"poison_is_replay", []string{`poison_pipelines: pipeline "traces/replay" is also in replay_pipelines`, "sent back to a pipeline that rejected it"}},
		{"poison_is_default", []string{`poison_pipelines: pipeline "traces/live" is also in default_pipelines`, "mixed into the data of the default pipelines"}},
		{"empty_match", []string{"match: no criterion is configured", "match::topics", "match::dlq_header", `"otelcol-failover-group"`}},
		{"empty_match_topics", []string{"match: no criterion is configured"}},
		{"blank_topic", []string{"match::topics[1]: topic name is empty"}},
		{"topic_twice", []string{`match::topics: topic "otlp_spans_dlq" is listed twice`}},
		{"profiles", []string{`replay_pipelines: pipeline "profiles/replay": signal "profiles" is not supported`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(t, tt.name)
			require.NoError(t, err, "unmarshal")
			err = confmap.Validate(cfg)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigUnmarshalErrorsNameTheKey(t *testing.T) {
	_, err := loadConfig(t, "bad_pipeline_id")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replay_pipelines")
	assert.Contains(t, err.Error(), "spans")

	_, err = loadConfig(t, "unknown_key")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "topic")
	assert.Contains(t, err.Error(), "invalid keys")
}

func TestValidateReportsEveryMistake(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DefaultPipelines = []pipeline.ID{pipeline.NewID(pipeline.SignalTraces), pipeline.NewID(pipeline.SignalTraces)}
	cfg.Match.DLQHeader = false
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replay_pipelines: must list")
	assert.Contains(t, err.Error(), "default_pipelines: pipeline \"traces\" is listed twice")
	assert.Contains(t, err.Error(), "match: no criterion")
}
