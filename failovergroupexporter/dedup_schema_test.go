// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// The schema step's decisions, without a server (the step against the real
// engine is in testbed/e2e/dedup_test.go: the tables the collector creates
// get the window).

func clickhouseConfig(t *testing.T, conf map[string]any) *clickhouseexporter.Config {
	t.Helper()
	cfg := clickhouseexporter.NewFactory().CreateDefaultConfig().(*clickhouseexporter.Config)
	require.NoError(t, confmap.NewFromStringMap(conf).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestTableSetupOf(t *testing.T) {
	on := DeduplicationConfig{Tokens: true, TableWindow: 10000}
	cfg := clickhouseConfig(t, map[string]any{"endpoint": "http://ch:8123", "database": "otel", "cluster_name": "c1"})
	s := newTableSetup(cfg, "traces", on)
	require.NotNil(t, s)
	assert.Equal(t, "otel", s.db)
	assert.Equal(t, []string{"otel_traces"}, s.tables)
	assert.True(t, s.alter, "create_schema is on by default")
	assert.Equal(t, "ALTER TABLE `otel`.`otel_traces` ON CLUSTER `c1` MODIFY SETTING non_replicated_deduplication_window = 10000", s.alterStatement("otel_traces"))
	assert.Empty(t, s.opt.Auth.Database, "system tables are read without a database (it may not exist yet)")

	metrics := newTableSetup(cfg, "metrics", on)
	assert.Equal(t, []string{"otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_summary", "otel_metrics_histogram", "otel_metrics_exponential_histogram"}, metrics.tables)

	fromPath := newTableSetup(clickhouseConfig(t, map[string]any{"endpoint": "tcp://ch:9000/telemetry", "create_schema": false}), "logs", on)
	assert.Equal(t, "telemetry", fromPath.db, "the endpoint's database, as the exporter picks it")
	assert.False(t, fromPath.alter, "create_schema: false: warn only")

	assert.Nil(t, newTableSetup(cfg, "traces", DeduplicationConfig{Tokens: true, TableWindow: 0}), "0 leaves tables alone")
	assert.Nil(t, newTableSetup(cfg, "traces", DeduplicationConfig{Tokens: false, TableWindow: 10000}), "no tokens, no step")
}

func TestTableWindowOf(t *testing.T) {
	assert.Equal(t, 0, tableInfo{engineFull: "MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName) SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"}.windowOf(0))
	assert.Equal(t, 100, tableInfo{engineFull: "MergeTree ORDER BY a SETTINGS index_granularity = 8192"}.windowOf(100), "the server's default")
	assert.Equal(t, 500, tableInfo{engineFull: "MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 500, index_granularity = 8192"}.windowOf(0))
	for engine, plain := range map[string]bool{
		"MergeTree": true, "ReplacingMergeTree": true, "SummingMergeTree": true,
		"ReplicatedMergeTree": false, "SharedMergeTree": false, "Distributed": false, "MaterializedView": false,
	} {
		assert.Equal(t, plain, plainMergeTree.MatchString(engine), engine)
	}
	for engine, byDefault := range map[string]bool{
		"ReplicatedMergeTree": true, "ReplicatedReplacingMergeTree": true, "SharedMergeTree": true,
		"MergeTree": false, "Distributed": false,
	} {
		assert.Equal(t, byDefault, dedupsByDefault.MatchString(engine), engine)
	}
	assert.Equal(t, "`we\\`ird\\\\`", quoteIdentifier("we`ird\\"))
}
