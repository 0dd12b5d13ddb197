// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"path/filepath"
	"strings"
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
	assert.InDelta(t, 20000.0, cfg.Replay.MaxItemsPerSecond, 0)
	assert.False(t, cfg.Replay.HoldWhileFailingOver)

	minimal, err := loadConfig(t, "minimal")
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(minimal))
	assert.True(t, minimal.Match.DLQHeader, "match::dlq_header defaults to true")
	assert.Empty(t, minimal.Match.Topics)
	assert.Empty(t, minimal.DefaultPipelines)
	assert.Empty(t, minimal.PoisonPipelines)
	assert.True(t, minimal.Replay.HoldWhileFailingOver, "replay::hold_while_failing_over defaults to true")
	assert.Zero(t, minimal.Replay.MaxItemsPerSecond, "replay::max_items_per_second defaults to no limit")
}

func TestDefaultConfigIsRefusedUntilReplayPipelinesAreSet(t *testing.T) {
	err := confmap.Validate(NewFactory().CreateDefaultConfig())
	require.ErrorIs(t, err, errNoReplayPipelines)
	assert.True(t, strings.HasPrefix(err.Error(), "replay_pipelines: "), err.Error())
}

// TestConfigValidationErrors: each invalid config is refused with the error
// that says what is wrong, at the key at fault.
func TestConfigValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		key  string // the error begins with it
		want error
	}{
		{"no_replay", "replay_pipelines", errNoReplayPipelines},
		{"replay_twice", "replay_pipelines", errListedTwice},
		{"replay_and_default", "default_pipelines", errSharedPipeline},
		{"poison_is_replay", "poison_pipelines", errSharedPipeline},
		{"poison_is_default", "poison_pipelines", errSharedPipeline},
		{"empty_match", "match", errNoMatch},
		{"empty_match_topics", "match", errNoMatch},
		{"blank_topic", "match::topics[1]", errEmptyTopic},
		{"topic_twice", "match::topics", errListedTwice},
		{"profiles", "replay_pipelines", errUnsupportedSignal},
		{"negative_rate", "replay::max_items_per_second", errBadRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(t, tt.name)
			require.NoError(t, err, "unmarshal")
			err = confmap.Validate(cfg)
			require.ErrorIs(t, err, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), tt.key+": "), "the error names %s first: %v", tt.key, err)
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
	require.ErrorIs(t, err, errNoReplayPipelines)
	require.ErrorIs(t, err, errListedTwice)
	require.ErrorIs(t, err, errNoMatch)
}
