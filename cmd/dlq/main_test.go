// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

// closedPort is an address of 127.0.0.1 nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentBroker accepts connections and never answers: a hung broker.
func silentBroker(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// Brokers that are down or hung are an error within the timeout, naming the
// brokers and the variable they come from; every command checks first.
func TestUnreachableBrokers(t *testing.T) {
	for name, addr := range map[string]string{"refused": closedPort(t), "hung": silentBroker(t)} {
		for _, cmd := range [][]string{{"stats"}, {"peek"}, {"redrive", "--from", "poison", "--to", "dlq"}} {
			t.Run(name+"/"+cmd[0], func(t *testing.T) {
				began := time.Now()
				stdout, stderr, code := cli(t, map[string]string{"KAFKA_BROKERS": addr},
					append(cmd, "--config", referenceConfig, "--timeout", "1s")...)
				took := time.Since(began)
				t.Logf("after %v: %s", took, stderr)
				assert.Equal(t, 1, code)
				assert.Empty(t, stdout)
				assert.Less(t, took, 5*time.Second, "a dead cluster must fail fast, not hang")
				assert.Contains(t, stderr, "kafka brokers ["+addr+"]")
				if name == "refused" {
					assert.Contains(t, stderr, "connection refused")
					assert.Contains(t, stderr, "${env:KAFKA_BROKERS:-127.0.0.1:9092}", "names the variable to set")
				} else {
					assert.Contains(t, stderr, "did not answer within 1s")
				}
			})
		}
	}
}

// A topic of the config that the brokers lack is named with the fix, the
// other topics are still shown, and dlq never creates it (the brokers here
// would create topics on request).
func TestMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(1, "otlp_spans_dlq", "otlp_metrics_dlq", "otlp_spans_poison", "otlp_metrics_poison", "otlp_logs_poison"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	env := map[string]string{"KAFKA_BROKERS": addr}

	for _, cmd := range [][]string{{"stats"}, {"peek"}, {"stats", "--topic", "otlp_logs_dlq"}} {
		stdout, stderr, code := cli(t, env, append(cmd, "--config", referenceConfig)...)
		assert.Equal(t, 1, code, cmd)
		t.Logf("%v: %s", cmd, stderr)
		assert.Contains(t, stderr, `topic "otlp_logs_dlq" (dlq of failover_group/ingest kafka/dlq) does not exist on brokers [`+addr+`]`, cmd)
		assert.Contains(t, stderr, "create it, or fix the member's logs::topic", cmd)
		if cmd[0] == "stats" && len(cmd) == 1 {
			assert.Contains(t, stdout, "otlp_spans_dlq", "the topics that exist are shown")
		}
	}
	cl := newClient(t, addr)
	topics, err := kadm.NewClient(cl).ListTopics(t.Context())
	require.NoError(t, err)
	assert.False(t, topics.Has("otlp_logs_dlq"), "dlq created the topic it looked for")
}

// SASL logins as the member's, and no password in any output.
func TestSASL(t *testing.T) {
	const phrase = "pw-7f3a9c-secret"
	addr := startKafka(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "otel", phrase))
	p := writeConfig(t, fmt.Sprintf(`
exporters:
  failover_group:
    members:
      - kafka:
          brokers: [%q]
          traces: {topic: otlp_spans_dlq}
          auth:
            sasl: {mechanism: SCRAM-SHA-256, username: otel, password: "${env:KAFKA_PASSWORD}"}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [failover_group]}
`, addr))
	stdout, stderr, code := cli(t, map[string]string{"KAFKA_PASSWORD": phrase}, "stats", "--config", p)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "otlp_spans_dlq")
	assert.NotContains(t, stdout+stderr, phrase)

	const wrongPhrase = "pw-wrong-0d1e"
	stdout, stderr, code = cli(t, map[string]string{"KAFKA_PASSWORD": wrongPhrase}, "stats", "--config", p, "--timeout", "2s")
	assert.Equal(t, 1, code)
	t.Logf("wrong password: %s", stderr)
	assert.Contains(t, stderr, "SASL")
	assert.Contains(t, stderr, "password")
	assert.NotContains(t, stdout+stderr, wrongPhrase)
	assert.NotContains(t, stdout+stderr, phrase)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"peek", "-n", "0"}, 2, "-n must be at least 1"},
		{[]string{"stats", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"stats", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"stats", "--timeout", "0s"}, 2, "--timeout must be positive"},
		{[]string{"help"}, 0, "dlq redrive"},
		{[]string{"version"}, 0, "dlq dev"},
	} {
		stdout, stderr, code := cli(t, nil, tc.args...)
		assert.Equal(t, tc.code, code, tc.args)
		assert.Contains(t, stdout+stderr, tc.out, tc.args)
	}
	// The default config is the image's.
	_, stderr, code := cli(t, nil, "stats")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, defaultConfig)
}
