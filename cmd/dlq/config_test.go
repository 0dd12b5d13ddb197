// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// The reference configuration: three DLQ topics, each replayed by its
// receiver's consumer group, three poison topics replayed by nobody, all on
// the brokers KAFKA_BROKERS names (or its default).
func TestConfigReference(t *testing.T) {
	s, err := loadConfig(referenceConfig, env("KAFKA_BROKERS", "kafka.example:9093"))
	require.NoError(t, err)
	type row struct{ name, role, signal, encoding, group string }
	var got []row
	for _, tp := range s.topics {
		r := row{tp.name, tp.role, tp.signal, tp.encoding, ""}
		if len(tp.groups) > 0 {
			r.group = tp.groups[0]
		}
		assert.LessOrEqual(t, len(tp.groups), 1, tp.name)
		assert.Equal(t, []string{"kafka.example:9093"}, tp.conn.brokers, tp.name)
		got = append(got, r)
	}
	assert.Equal(t, []row{
		{"otlp_logs_dlq", "dlq", "logs", "otlp_proto", "otelcol-failover-replay-logs"},
		{"otlp_metrics_dlq", "dlq", "metrics", "otlp_proto", "otelcol-failover-replay-metrics"},
		{"otlp_spans_dlq", "dlq", "traces", "otlp_proto", "otelcol-failover-replay-traces"},
		{"otlp_logs_poison", "poison", "logs", "otlp_proto", ""},
		{"otlp_metrics_poison", "poison", "metrics", "otlp_proto", ""},
		{"otlp_spans_poison", "poison", "traces", "otlp_proto", ""},
	}, got)
	assert.Equal(t, []string{"failover_group/ingest kafka/dlq"}, s.topic("otlp_spans_dlq").writers)
	assert.Equal(t, []string{"failover_group/poison kafka/poison"}, s.topic("otlp_spans_poison").writers)
	assert.Same(t, s.topic("otlp_spans_dlq").conn, s.topic("otlp_logs_poison").conn, "one client for one cluster")

	s, err = loadConfig(referenceConfig, env())
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:9092"}, s.topic("otlp_spans_dlq").conn.brokers, "the default of ${env:KAFKA_BROKERS:-...}")
}

// References are expanded as the collector expands them.
func TestConfigEnvExpansion(t *testing.T) {
	x := &expander{lookup: env("A", "alpha", "EMPTY", "", "LIST", "[b1:9092, b2:9092]", "NO", "false")}
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"${env:A}", "alpha"},
		{"${A}", "alpha"},
		{"${env:A:-d}", "alpha"},
		{"${env:UNSET:-d:9092}", "d:9092"},
		{"${env:UNSET}", ""},
		{"${env:EMPTY:-d}", ""}, // set but empty: no default
		{"x-${env:A}-${env:UNSET:-y}", "x-alpha-y"},
		{"$${env:A}", "${env:A}"},
		{"cost: 5$", "cost: 5$"},
		{"${env:LIST}", []any{"b1:9092", "b2:9092"}},
		{"${NO}", false},
	} {
		got, err := x.value(tc.in, "k")
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	// ${NAME:-default} is no env reference to the collector either: NAME
	// is read as a scheme.
	for _, bad := range []string{"${env:A", "${env:1A}", "${http:example.com}", "${UNSET:-y}"} {
		_, err := x.value(bad, "exporters::k")
		assert.Error(t, err, bad)
	}

	// In a config: brokers from a comma-separated variable, topics and
	// dead_letter from variables.
	p := writeConfig(t, `
exporters:
  failover_group:
    members:
      - clickhouse: {endpoint: "http://ch:8123"}
      - kafka/dlq:
          brokers: ${env:BROKERS}
          traces: {topic: "${env:PREFIX}_spans"}
      - kafka/poison:
          brokers: [ "${BROKER1}" ]
          traces: {topic: "poison_${env:PREFIX:-x}"}
        dead_letter: ${env:DEAD}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [failover_group]}
`)
	s, err := loadConfig(p, env("BROKERS", "k1:9092,k2:9092", "PREFIX", "p", "BROKER1", "k3:9092", "DEAD", "false"))
	require.NoError(t, err)
	require.NotNil(t, s.topic("p_spans"))
	assert.Equal(t, roleDLQ, s.topic("p_spans").role)
	assert.Equal(t, []string{"k1:9092", "k2:9092"}, s.topic("p_spans").conn.brokers)
	require.NotNil(t, s.topic("poison_p"))
	assert.Equal(t, rolePoison, s.topic("poison_p").role)
	assert.Equal(t, []string{"k3:9092"}, s.topic("poison_p").conn.brokers)
}

// Kafka members are DLQs unless dead_letter: false; topics and encodings
// default as in the kafka exporter; only signals of the pipelines a group
// is in count, and groups no pipeline uses do not.
func TestConfigPoisonVsDLQ(t *testing.T) {
	p := writeConfig(t, `
receivers:
  kafka/replay:
    group_id: replayers
    traces: {topics: ["^otlp_.*"]}
  kafka/unused:
    group_id: nobody
exporters:
  failover_group/a:
    members:
      - otlp_grpc: {endpoint: "x:4317"}
      - kafka:
      - kafka/explicit:
          traces: {topic: explicit, encoding: otlp_json}
        dead_letter: true
      - kafka/poison:
          traces: {topic: bad}
          logs: {topic: bad_logs}
        dead_letter: false
  failover_group/unused:
    members:
      - kafka: {traces: {topic: never}}
  kafka/plain:
    traces: {topic: not_a_member}
service:
  pipelines:
    traces: {receivers: [kafka/replay], exporters: [failover_group/a]}
    logs/x: {receivers: [otlp], exporters: [failover_group/a]}
`)
	s, err := loadConfig(p, env())
	require.NoError(t, err)
	roles := map[string]string{}
	for _, tp := range s.topics {
		roles[tp.name] = tp.role + " " + tp.signal + " " + tp.encoding
	}
	assert.Equal(t, map[string]string{
		"otlp_spans": "dlq traces otlp_proto",
		"otlp_logs":  "dlq logs otlp_proto",
		"explicit":   "dlq traces otlp_json",
		"bad":        "poison traces otlp_proto",
		"bad_logs":   "poison logs otlp_proto",
	}, roles)
	assert.Equal(t, []string{"localhost:9092"}, s.topic("otlp_spans").conn.brokers, "the exporter's default brokers")
	assert.Equal(t, []string{"replayers"}, s.topic("otlp_spans").groups, "a regular expression topic of the receiver")
	assert.Empty(t, s.topic("explicit").groups)
	assert.Empty(t, s.topic("bad").groups, "poison topics are not replayed")
}

func TestConfigWithoutDLQ(t *testing.T) {
	p := writeConfig(t, `
exporters:
  failover_group/replay:
    members:
      - clickhouse/replay: {endpoint: "http://ch:8123"}
  failover_group/poison:
    members:
      - kafka/poison: {}
        dead_letter: false
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [failover_group/replay, failover_group/poison]}
`)
	_, err := loadConfig(p, env())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no DLQ")
	assert.Contains(t, err.Error(), "dead_letter: false")

	_, stderr, code := cli(t, nil, "stats", "--config", p)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "has no DLQ")
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"not YAML", "exporters:\n  a: [1, 2\n", "does not parse as YAML"},
		{"not a map", "- a\n- b\n", "is not a YAML map"},
		{"members not a list", "exporters:\n  failover_group:\n    members: {kafka: {}}\n", "members must be a list"},
		{"dead_letter not a bool", "exporters:\n  failover_group:\n    members:\n      - kafka: {}\n        dead_letter: sometimes\n", "members[0]::dead_letter must be true or false"},
		{"two ids in a member", "exporters:\n  failover_group:\n    members:\n      - {kafka: {}, debug: {}}\n", "members[0]: each member must be a map with one `type[/name]: {config}` key"},
		{"empty brokers", "exporters:\n  failover_group:\n    members:\n      - kafka: {brokers: \"${env:NOPE}\"}\n", "brokers is empty"},
		{"unsupported SASL", "exporters:\n  failover_group:\n    members:\n      - kafka: {auth: {sasl: {mechanism: AWS_MSK_IAM_OAUTHBEARER}}}\n", `mechanism "AWS_MSK_IAM_OAUTHBEARER" is not supported`},
		{"kerberos", "exporters:\n  failover_group:\n    members:\n      - kafka: {auth: {kerberos: {service_name: kafka}}}\n", "auth::kerberos is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.yaml)
			_, err := loadConfig(p, env())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), p, "the error names the file")
		})
	}
	_, stderr, code := cli(t, nil, "peek", "--config", "/nonexistent/otelcol.yaml")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no such file or directory")
	assert.Contains(t, stderr, "--config")
}

// SASL and TLS settings are read as the kafka exporter reads them, and a
// password never shows in an error, even one about its own section.
func TestConfigAuth(t *testing.T) {
	p := writeConfig(t, `
exporters:
  failover_group:
    members:
      - kafka:
          auth:
            sasl: {mechanism: SCRAM-SHA-512, username: u, password: "${env:PASS}"}
          tls: {insecure_skip_verify: true}
      - kafka/old:
          traces: {topic: old}
          auth:
            plain_text: {username: v, password: hunter2-plain}
            tls: {insecure: true}
`)
	s, err := loadConfig(p, env("PASS", "hunter2-scram"))
	require.NoError(t, err)
	c := s.topic("otlp_spans").conn
	assert.Equal(t, "SCRAM-SHA-512", c.mechanism)
	assert.Equal(t, "hunter2-scram", c.password)
	require.NotNil(t, c.tls)
	assert.True(t, c.tls.InsecureSkipVerify)
	old := s.topic("old").conn
	assert.Equal(t, "PLAIN", old.mechanism)
	require.NotNil(t, old.tls, "auth::tls, the deprecated spelling")
	assert.True(t, old.tls.Insecure)
	assert.ElementsMatch(t, []string{"hunter2-scram", "hunter2-plain"}, s.secrets)

	p = writeConfig(t, `
exporters:
  failover_group:
    members:
      - kafka:
          auth:
            sasl: {password: hunter2-bad, mechanism: "${env:MECH}", username: u}
`)
	_, err = loadConfig(p, env("MECH", "hunter2-bad"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2-bad")
	assert.Contains(t, err.Error(), "[REDACTED]")
}
