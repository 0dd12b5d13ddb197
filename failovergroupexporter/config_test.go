// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"errors"
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
	assert.Equal(t, DeduplicationConfig{Tokens: true, TableWindow: 10000}, cfg.Deduplication, "exactly once by default")
	assert.False(t, cfg.QueueConfig.HasValue(), "the group's own queue is off by default: it answers synchronously")
	assert.False(t, cfg.BackOffConfig.Enabled, "the group's own retry is off by default")
	assert.False(t, cfg.needsHelper())
	// Valid apart from the members.
	err := confmap.Validate(cfg)
	require.ErrorIs(t, err, errNoMembers)
	assert.Equal(t, []string{"members"}, errorKeys(err), "nothing else is wrong")
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
	assert.False(t, ch.Enabled, "clickhouse's own retries are turned off")
	assert.Equal(t, 3*time.Second, ch.TimeoutSettings.Timeout, "timeout = attempt_timeout")
	assert.Equal(t, "3s", ch.ConnectionParams["dial_timeout"], "dial_timeout = attempt_timeout: the native protocol dials outside the attempt's deadline")

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
	assert.False(t, k.Enabled)
	assert.Equal(t, 3*time.Second, k.TimeoutSettings.Timeout)
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.HeaderKeys...), k.IncludeMetadataKeys, "the user's keys are kept, the DLQ keys added")

	dbg := cfg.Members[4].Config().(*debugexporter.Config)
	assert.False(t, dbg.QueueConfig.HasValue())

	assert.Equal(t, -1, int(k.Producer.RequiredAcks), "a parked record is the only copy: every in-sync replica acknowledges it")

	// Which members bound their own calls (so the group adds no deadline).
	assert.True(t, ownsDeadline(&cfg.Members[0], cfg.AttemptTimeout), "clickhouse")
	assert.True(t, ownsDeadline(&cfg.Members[1], cfg.AttemptTimeout), "otlp_grpc")
	assert.False(t, ownsDeadline(&cfg.Members[2], cfg.AttemptTimeout), "otlp_http: its timeout is the HTTP client's")
	assert.False(t, ownsDeadline(&cfg.Members[3], cfg.AttemptTimeout), "kafka: a produce in flight when its broker goes away outlives its timeout")
	assert.False(t, ownsDeadline(&cfg.Members[4], cfg.AttemptTimeout), "debug has no timeout")
	assert.False(t, ownsDeadline(&cfg.Members[5], cfg.AttemptTimeout), "file has no timeout")

	// Which members are dead letters by default: kafka only.
	for i, want := range []bool{false, false, false, true, false, false} {
		assert.Equal(t, want, cfg.Members[i].DeadLetter(), "%s", cfg.Members[i].ID())
	}
}

// The dead_letter member option, written next to the member's id.
func TestDeadLetterOption(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
members:
  - clickhouse/live: {endpoint: "http://127.0.0.1:8123"}
  - clickhouse/standby: {endpoint: "http://127.0.0.2:8123"}
    dead_letter: false
  - kafka/poison: {brokers: ["127.0.0.1:9092"]}
    dead_letter: false
  - otlp_grpc/dlq: {endpoint: "127.0.0.1:4317"}
    dead_letter: true
`)
	require.NoError(t, err)
	for i, want := range []bool{false, false, false, true} {
		assert.Equal(t, want, cfg.Members[i].DeadLetter(), "%s", cfg.Members[i].ID())
	}
	out := confmap.New()
	require.NoError(t, out.Marshal(cfg))
	members := out.Get("members").([]any)
	assert.NotContains(t, members[0].(map[string]any), "dead_letter", "an option left at its default is not printed")
	assert.Equal(t, false, members[2].(map[string]any)["dead_letter"])
	assert.Equal(t, true, members[3].(map[string]any)["dead_letter"])

	_, err = decodeConfig(t, NewFactory(), `
members:
  - kafka/dlq: {brokers: ["127.0.0.1:9092"]}
    dead_letter: sometimes
`)
	require.ErrorIs(t, err, errNotABool)
	assert.Contains(t, errorKeys(err), "members[0] kafka/dlq::dead_letter")
}

// A kafka member keeps a required_acks the user set.
func TestKafkaRequiredAcksKeptWhenSet(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
members:
  - kafka/a: {brokers: ["127.0.0.1:9092"], producer: {required_acks: 1}}
  - kafka/b: {brokers: ["127.0.0.1:9092"], producer: {required_acks: all, max_message_bytes: 2000000}}
  - kafka/c: {brokers: ["127.0.0.1:9092"], producer: {max_message_bytes: 2000000}}
`)
	require.NoError(t, err)
	acks := func(i int) int { return int(cfg.Members[i].Config().(*kafkaexporter.Config).Producer.RequiredAcks) }
	assert.Equal(t, 1, acks(0))
	assert.Equal(t, -1, acks(1))
	assert.Equal(t, -1, acks(2), "other producer keys do not count as setting required_acks")
	assert.Equal(t, 2000000, cfg.Members[2].Config().(*kafkaexporter.Config).Producer.MaxMessageBytes)
	assert.Equal(t, 2000000, cfg.Members[2].facts.recordLimit)
	assert.Equal(t, 1000000, cfg.Members[0].facts.recordLimit)
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
      connection_params: {dial_timeout: 2s, read_timeout: 9s}
  - clickhouse/c:
      endpoint: "tcp://127.0.0.1:9000?dial_timeout=1s"
`)
	require.NoError(t, err, "a queue that waits for the result is synchronous; an explicit `enabled: false` is fine")
	ch := cfg.Members[0].Config().(*clickhouseexporter.Config)
	assert.True(t, ch.QueueSettings.HasValue())
	assert.True(t, ch.QueueSettings.Get().WaitForResult)
	assert.True(t, ch.Enabled, "an explicit retry is kept; the attempt deadline bounds it")
	assert.Equal(t, 60*time.Second, ch.MaxElapsedTime)
	assert.Equal(t, 10*time.Second, ch.TimeoutSettings.Timeout)
	assert.False(t, ownsDeadline(&cfg.Members[0], cfg.AttemptTimeout), "own retries and a longer timeout: the group's deadline is needed")

	b := cfg.Members[1].Config().(*clickhouseexporter.Config)
	assert.False(t, b.QueueSettings.HasValue())
	assert.False(t, b.Enabled)
	assert.Equal(t, time.Second, b.TimeoutSettings.Timeout)
	assert.True(t, ownsDeadline(&cfg.Members[1], cfg.AttemptTimeout), "a shorter own timeout bounds the attempt too")
	assert.Equal(t, map[string]string{"dial_timeout": "2s", "read_timeout": "9s"}, b.ConnectionParams, "the user's connection_params are kept")

	c := cfg.Members[2].Config().(*clickhouseexporter.Config)
	assert.NotContains(t, c.ConnectionParams, "dial_timeout", "a dial_timeout in the endpoint's DSN is kept (connection_params would override it)")
}

// TestInvalidConfigs: each invalid config is refused at the key at fault,
// with the error that says what is wrong.
func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		id   string
		key  string // where the error is reported
		want error  // nil: the member exporter's own error, not one of ours
	}{
		{"no_members", "members", errNoMembers},
		{"empty_members", "members", errNoMembers},
		{"members_not_a_list", "members", errMembersNotList},
		{"member_not_a_map", "members[0]", errMemberShape},
		{"member_two_keys", "members[0]", errMemberShape},
		{"member_config_not_a_map", "members[0] debug", errMemberConfigNotMap},
		{"bad_member_id", "members[0]", errInvalidMemberID},
		{"unknown_type", "members[0] nosuch/x", errUnknownMemberType},
		{"duplicate_ids", "members[1] debug/a", errDuplicateMember},
		{"invalid_member_config", "members[0] clickhouse/live", nil},
		{"unknown_member_key", "members[0] clickhouse/live", nil},
		{"nested_group", "members[0] failover_group/inner", errNestedGroup},
		{"async_queue", "members[0] clickhouse/live::sending_queue", errAsyncMemberQueue},
		{"async_queue_implicit", "members[0] kafka/dlq::sending_queue", errAsyncMemberQueue},
		{"attempt_timeout_zero", "attempt_timeout", errNotPositive},
		{"attempt_timeout_negative", "attempt_timeout", errNotPositive},
		{"attempt_timeout_below_kafka_floor", "attempt_timeout", errTimeoutBelowFloor},
		{"kafka_timeout_below_floor", "members[0] kafka/dlq::timeout", errTimeoutBelowFloor},
		{"attempt_timeout_below_kafka_floor_own_timeout", "attempt_timeout", errTimeoutBelowFloor},
		{"open_duration_zero", "circuit_breaker::open_duration", errNotPositive},
		{"max_open_shorter", "circuit_breaker::max_open_duration", errShorterThan},
		{"failure_threshold_zero", "circuit_breaker::failure_threshold", errBelowOne},
		{"success_threshold_negative", "circuit_breaker::success_threshold", errBelowOne},
		{"multiplier_below_one", "circuit_breaker::backoff_multiplier", errBelowOne},
		{"member_start_zero", "member_start::timeout", errNotPositive},
		{"member_start_interval_order", "member_start::max_interval", errShorterThan},
		{"on_permanent_error_bogus", "on_permanent_error", errOnPermanentError},
		{"queue_without_retry", "retry_on_failure::enabled", errQueueWithoutRetry},
		{"queue_retry_bounded", "retry_on_failure::max_elapsed_time", errQueueRetryBounded},
		{"table_window_negative", "deduplication::table_window", errNegative},
		{"waiting_queue_retry_unbounded", "retry_on_failure::max_elapsed_time", errWaitingQueueRetryUnbounded},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			_, err := loadGroupConfig(t, "invalid.yaml", "failover_group/"+tt.id)
			require.Error(t, err)
			assert.Contains(t, errorKeys(err), tt.key, "%v", err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
	t.Run("unknown_group_key", func(t *testing.T) {
		_, err := loadGroupConfig(t, "invalid.yaml", "failover_group/unknown_group_key")
		require.ErrorContains(t, err, "attempt_timout", "confmap names the unknown key")
	})
	t.Run("every_mistake_at_once", func(t *testing.T) {
		_, err := loadGroupConfig(t, "invalid.yaml", "failover_group/member_start_zero")
		require.Error(t, err)
		assert.Subset(t, errorKeys(err), []string{"member_start::timeout", "member_start::initial_interval"})
	})
}

// errorKeys lists the config keys an error reports, nested keys joined with
// "::", through joined errors.
func errorKeys(err error) []string {
	var keys []string
	var walk func(prefix string, err error)
	walk = func(prefix string, err error) {
		for err != nil {
			// A type assertion, not errors.As: the walk goes down the
			// chain itself, one keyError at a time.
			if ke, ok := err.(*keyError); ok { //nolint:errorlint // see above
				p := ke.key
				if prefix != "" {
					p = prefix + "::" + ke.key
				}
				keys = append(keys, p)
				prefix, err = p, ke.err
				continue
			}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					walk(prefix, e)
				}
				return
			}
			err = errors.Unwrap(err)
		}
	}
	walk("", err)
	return keys
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
	require.ErrorIs(t, err, errUnknownMemberType)
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
	assert.False(t, ch.Enabled)
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
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.HeaderKeys...), k.QueueBatchConfig.Get().Batch.Get().Partition.MetadataKeys)
	assert.Equal(t, append([]string{"tenant"}, dlqmeta.HeaderKeys...), k.IncludeMetadataKeys)
}

// A queue that waits for results leaves the data with its clients: a batch
// no member takes goes back to them, so the group's retry stays off unless
// set (bounded: see waiting_queue_retry_unbounded in invalid.yaml).
func TestWaitingQueueKeepsRetryOff(t *testing.T) {
	cfg, err := decodeConfig(t, NewFactory(), `
members: [{debug: {}}]
sending_queue: {enabled: true, wait_for_result: true, batch: {flush_timeout: 200ms}}
`)
	require.NoError(t, err)
	assert.False(t, cfg.BackOffConfig.Enabled)

	cfg, err = decodeConfig(t, NewFactory(), `
members: [{debug: {}}]
sending_queue: {enabled: true, wait_for_result: true}
retry_on_failure: {enabled: true, initial_interval: 500ms, max_interval: 1s, max_elapsed_time: 2s}
`)
	require.NoError(t, err, "a bounded retry is the user's choice")
	assert.True(t, cfg.BackOffConfig.Enabled)
}
