package failovergroupexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// loadGroupConfig decodes and validates one group of a testdata file, as
// `otelcol validate` does.
func loadGroupConfig(t *testing.T, file, id string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", file))
	require.NoError(t, err)
	sub, err := cm.Sub(id)
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestDefaultConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.Empty(t, cfg.Members)
	assert.Equal(t, 5*time.Second, cfg.AttemptTimeout)
	assert.Equal(t, PermanentErrorNextMember, cfg.OnPermanentError)
	assert.Equal(t, BreakerConfig{
		FailureThreshold:  3,
		OpenDuration:      5 * time.Second,
		BackoffMultiplier: 2,
		MaxOpenDuration:   30 * time.Second,
		SuccessThreshold:  1,
	}, cfg.CircuitBreaker)
	assert.Equal(t, MemberStartConfig{Timeout: 30 * time.Second, InitialInterval: time.Second, MaxInterval: 30 * time.Second}, cfg.MemberStart)
	assert.False(t, cfg.QueueConfig.HasValue(), "the group's own queue is off by default: it answers synchronously")
	assert.False(t, cfg.BackOffConfig.Enabled, "the group's own retry is off by default")
	assert.False(t, cfg.needsHelper())
	// Valid apart from the members.
	err := confmap.Validate(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "members: at least one member is required")
	assert.NotContains(t, err.Error(), "attempt_timeout")
	assert.NotContains(t, err.Error(), "circuit_breaker")
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadGroupConfig(t, "config.yaml", "failover_group/ingest")
	require.NoError(t, err)
	require.Len(t, cfg.Members, 2)
	assert.Equal(t, component.MustNewIDWithName("clickhouse", "live"), cfg.Members[0].ID())
	assert.Equal(t, component.MustNewIDWithName("kafka", "dlq"), cfg.Members[1].ID())
	assert.Equal(t, 2*time.Second, cfg.AttemptTimeout)
	assert.Equal(t, 5, cfg.CircuitBreaker.FailureThreshold)
	assert.Equal(t, 10*time.Second, cfg.CircuitBreaker.OpenDuration)
	assert.Equal(t, 2*time.Minute, cfg.CircuitBreaker.MaxOpenDuration)
	assert.Equal(t, 2.0, cfg.CircuitBreaker.BackoffMultiplier, "unset keys keep their defaults")

	ch := cfg.Members[0].Config().(*clickhouseexporter.Config)
	assert.Equal(t, "http://127.0.0.1:8123", ch.Endpoint)
	assert.Equal(t, "s3cret", string(ch.Password))
	assert.True(t, ch.CreateSchema, "member defaults come from its own factory")
	assert.Equal(t, "otel_traces", ch.TracesTableName)

	k := cfg.Members[1].Config().(*kafkaexporter.Config)
	assert.Equal(t, []string{"127.0.0.1:9092"}, k.Brokers)
	assert.Equal(t, "otlp_spans_dlq", k.Traces.Topic)

	replay, err := loadGroupConfig(t, "config.yaml", "failover_group/replay")
	require.NoError(t, err)
	require.Len(t, replay.Members, 1, "a group of one member is valid")
	assert.Equal(t, 5*time.Second, replay.AttemptTimeout)
}

// TestMemberOverrides: the group makes every member report synchronously
// (no own queue), bounds its retries (off; the attempt deadline stops any
// the user turns on) and its timeout (attempt_timeout), and adds the DLQ
// keys to kafka's include_metadata_keys, unless the user set them.
func TestMemberOverrides(t *testing.T) {
	f := NewFactory()
	cfg, err := decodeConfig(t, f, `
attempt_timeout: 3s
members:
  - clickhouse/live: {endpoint: "http://127.0.0.1:8123"}
  - otlp_grpc/a: {endpoint: "127.0.0.1:4317"}
  - otlp_http/b: {endpoint: "http://127.0.0.1:4318"}
  - kafka/dlq: {brokers: ["127.0.0.1:9092"], include_metadata_keys: [tenant]}
  - debug: {}
  - file: {path: /tmp/x.json}
`)
	require.NoError(t, err)

	ch := cfg.Members[0].Config().(*clickhouseexporter.Config)
	assert.False(t, ch.QueueSettings.HasValue(), "clickhouse's own async queue is turned off")
	assert.False(t, ch.BackOffConfig.Enabled, "clickhouse's own retries are turned off")
	assert.Equal(t, 3*time.Second, ch.TimeoutSettings.Timeout, "timeout = attempt_timeout")

	grpc := cfg.Members[1].Config().(*otlpexporter.Config)
	assert.False(t, grpc.QueueConfig.HasValue())
	assert.False(t, grpc.RetryConfig.Enabled)
	assert.Equal(t, 3*time.Second, grpc.TimeoutConfig.Timeout)

	httpc := cfg.Members[2].Config().(*otlphttpexporter.Config)
	assert.False(t, httpc.QueueConfig.HasValue())
	assert.False(t, httpc.RetryConfig.Enabled)
	assert.Equal(t, 3*time.Second, httpc.ClientConfig.Timeout)

	k := cfg.Members[3].Config().(*kafkaexporter.Config)
	assert.False(t, k.QueueBatchConfig.HasValue())
	assert.False(t, k.BackOffConfig.Enabled)
	assert.Equal(t, 3*time.Second, k.TimeoutSettings.Timeout)
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.Keys...), k.IncludeMetadataKeys, "the user's keys are kept, the DLQ keys added")

	dbg := cfg.Members[4].Config().(*debugexporter.Config)
	assert.False(t, dbg.QueueConfig.HasValue())

	// Which members bound their own calls (so the group adds no deadline).
	assert.True(t, enforcesTimeout(cfg.Members[0].Config(), cfg.AttemptTimeout), "clickhouse")
	assert.True(t, enforcesTimeout(cfg.Members[1].Config(), cfg.AttemptTimeout), "otlp_grpc")
	assert.False(t, enforcesTimeout(cfg.Members[2].Config(), cfg.AttemptTimeout), "otlp_http: its timeout is the HTTP client's")
	assert.True(t, enforcesTimeout(cfg.Members[3].Config(), cfg.AttemptTimeout), "kafka")
	assert.False(t, enforcesTimeout(cfg.Members[4].Config(), cfg.AttemptTimeout), "debug has no timeout")
	assert.False(t, enforcesTimeout(cfg.Members[5].Config(), cfg.AttemptTimeout), "file has no timeout")
}

func TestMemberOverridesKeepUserSettings(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
attempt_timeout: 3s
members:
  - clickhouse/live:
      endpoint: "http://127.0.0.1:8123"
      timeout: 10s
      retry_on_failure: {enabled: true, max_elapsed_time: 60s}
      sending_queue: {enabled: true, wait_for_result: true, block_on_overflow: true}
  - clickhouse/b:
      endpoint: "http://127.0.0.1:8123"
      timeout: 1s
      sending_queue: {enabled: false}
`)
	require.NoError(t, err, "a queue that waits for the result is synchronous; an explicit `enabled: false` is fine")
	ch := cfg.Members[0].Config().(*clickhouseexporter.Config)
	assert.True(t, ch.QueueSettings.HasValue())
	assert.True(t, ch.QueueSettings.Get().WaitForResult)
	assert.True(t, ch.BackOffConfig.Enabled, "an explicit retry is kept; the attempt deadline bounds it")
	assert.Equal(t, 60*time.Second, ch.BackOffConfig.MaxElapsedTime)
	assert.Equal(t, 10*time.Second, ch.TimeoutSettings.Timeout)
	assert.False(t, enforcesTimeout(ch, cfg.AttemptTimeout), "own retries and a longer timeout: the group's deadline is needed")

	b := cfg.Members[1].Config().(*clickhouseexporter.Config)
	assert.False(t, b.QueueSettings.HasValue())
	assert.False(t, b.BackOffConfig.Enabled)
	assert.Equal(t, time.Second, b.TimeoutSettings.Timeout)
	assert.True(t, enforcesTimeout(b, cfg.AttemptTimeout), "a shorter own timeout bounds the attempt too")
}

func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		id   string
		want []string // substrings of the error
	}{
		{"no_members", []string{"members: at least one member is required"}},
		{"empty_members", []string{"members: at least one member is required"}},
		{"members_not_a_list", []string{"members: must be a list of one-key maps"}},
		{"member_not_a_map", []string{"members[0]", "each member must be a one-key map", "got string"}},
		{"member_two_keys", []string{"members[0]", "each member must be a one-key map"}},
		{"member_config_not_a_map", []string{"members[0] debug: member config must be a map"}},
		{"bad_member_id", []string{"members[0]", `invalid member id "debug/"`}},
		{"unknown_type", []string{`members[0] nosuch/x: unknown member type "nosuch"`, "known types: clickhouse, debug, file, kafka, otlp, otlp_grpc, otlp_http, otlphttp"}},
		{"duplicate_ids", []string{"members[1] debug/a: duplicate member id, already used by members[0]"}},
		{"invalid_member_config", []string{"members[0] clickhouse/live: endpoint must be specified"}},
		{"unknown_member_key", []string{"members[0] clickhouse/live:", "no_such_key"}},
		{"nested_group", []string{"members[0] failover_group/inner: a member cannot itself be a failover_group"}},
		{"async_queue", []string{"members[0] clickhouse/live: sending_queue: a member's asynchronous queue hides its failures", "wait_for_result: true", "put the queue on the group itself"}},
		{"async_queue_implicit", []string{"members[0] kafka/dlq: sending_queue: a member's asynchronous queue"}},
		{"attempt_timeout_zero", []string{"attempt_timeout: must be positive, got 0s"}},
		{"attempt_timeout_negative", []string{"attempt_timeout: must be positive, got -1s"}},
		{"open_duration_zero", []string{"circuit_breaker: open_duration: must be positive"}},
		{"max_open_shorter", []string{"circuit_breaker: max_open_duration: must not be shorter than open_duration"}},
		{"failure_threshold_zero", []string{"circuit_breaker: failure_threshold: must be at least 1, got 0"}},
		{"success_threshold_negative", []string{"circuit_breaker: success_threshold: must be at least 1, got -1"}},
		{"multiplier_below_one", []string{"circuit_breaker: backoff_multiplier: must be at least 1"}},
		{"member_start_zero", []string{"member_start: timeout: must be positive", "initial_interval: must be positive"}},
		{"member_start_interval_order", []string{"member_start: max_interval: must not be shorter than initial_interval"}},
		{"on_permanent_error_bogus", []string{`on_permanent_error: must be "next_member" or "return", got "drop"`}},
		{"unknown_group_key", []string{"attempt_timout"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			_, err := loadGroupConfig(t, "invalid.yaml", "failover_group/"+tt.id)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestInvalidMemberConfigNamedOnce: a member's validation error is
// reported once, prefixed with its index and id, without a `-` path segment.
func TestInvalidMemberConfigNamedOnce(t *testing.T) {
	_, err := loadGroupConfig(t, "invalid.yaml", "failover_group/invalid_member_config")
	require.Error(t, err)
	msg := err.Error()
	assert.Equal(t, 1, countSubstr(msg, "endpoint must be specified"), msg)
	assert.NotContains(t, msg, "::-")
}

func countSubstr(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}

// TestConfigMarshal: print-config shows the members, with secrets redacted.
func TestConfigMarshal(t *testing.T) {
	cfg, err := loadGroupConfig(t, "config.yaml", "failover_group/ingest")
	require.NoError(t, err)
	out := confmap.New()
	require.NoError(t, out.Marshal(cfg))
	members, ok := out.Get("members").([]any)
	require.True(t, ok, "members: %#v", out.Get("members"))
	require.Len(t, members, 2)
	first := members[0].(map[string]any)
	live, ok := first["clickhouse/live"].(map[string]any)
	require.True(t, ok, "%#v", first)
	assert.Equal(t, "http://127.0.0.1:8123", live["endpoint"])
	assert.Equal(t, "[REDACTED]", live["password"])
	assert.Contains(t, members[1].(map[string]any), "kafka/dlq")
	assert.EqualValues(t, 2*time.Second, out.Get("attempt_timeout"))
}

// TestConfigAliases: the OTLP exporters' deprecated type names still work
// as member types.
func TestConfigAliases(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
members:
  - otlp/a: {endpoint: "127.0.0.1:4317"}
  - otlphttp/b: {endpoint: "http://127.0.0.1:4318"}
`)
	require.NoError(t, err)
	assert.IsType(t, &otlpexporter.Config{}, cfg.Members[0].Config())
	assert.IsType(t, &otlphttpexporter.Config{}, cfg.Members[1].Config())
}

// TestCustomMemberFactory: NewFactoryWithMembers adds member types.
func TestCustomMemberFactory(t *testing.T) {
	_, err := decodeConfig(t, NewFactory(), `members: [{testmember/a: {}}]`)
	require.ErrorContains(t, err, `unknown member type "testmember"`)
	r := &testMembers{}
	cfg, err := decodeConfig(t, NewFactoryWithMembers(r.factory(testMemberType)), `members: [{testmember/a: {mutates: true}}]`)
	require.NoError(t, err)
	assert.True(t, cfg.Members[0].Config().(*testMemberConfig).Mutates)
}

// TestMemberNullConfig: a member or a queue key with no value keeps defaults.
func TestMemberNullConfig(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), "members:\n  - debug:\n  - clickhouse/x:\n      endpoint: http://h:8123\n      sending_queue:\n")
	require.NoError(t, err, "`debug:` with no value and `sending_queue:` with no value keep defaults")
	require.Len(t, cfg.Members, 2)
	ch := cfg.Members[1].Config().(*clickhouseexporter.Config)
	assert.False(t, ch.QueueSettings.HasValue(), "the default is the group's: no member queue")
	assert.False(t, ch.BackOffConfig.Enabled)
}

// A kafka member with a synchronous batching queue: the DLQ keys the group
// adds to include_metadata_keys are added to the batch partition keys too,
// which kafka requires.
func TestKafkaMemberBatchingQueue(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
members:
  - kafka/dlq:
      brokers: [a:9092]
      sending_queue: {wait_for_result: true, batch: {partition: {metadata_keys: [tenant]}}}
      include_metadata_keys: [tenant]
`)
	require.NoError(t, err)
	k := cfg.Members[0].Config().(*kafkaexporter.Config)
	require.True(t, k.QueueBatchConfig.HasValue())
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.Keys...), k.QueueBatchConfig.Get().Batch.Get().Partition.MetadataKeys)
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.Keys...), k.IncludeMetadataKeys)
}
