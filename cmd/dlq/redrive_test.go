// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// poisoned fills the poison topics: two traces records refused for one
// reason (an hour apart), one for another, one metrics record; the DLQ
// holds one record of its own.
func poisoned(t *testing.T, addr string) (t0 time.Time, recs []*kgo.Record) {
	t.Helper()
	cl := newClient(t, addr)
	t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	base := stamp{reason: "transient:timeout", member: "clickhouse/live", at: t0}
	for i, r := range []struct {
		topic  string
		p      int32
		reason string
		at     time.Time
	}{
		{"otlp_spans_poison", 0, "permanent:clickhouse_27", t0},
		{"otlp_spans_poison", 1, "permanent:clickhouse_27", t0.Add(time.Hour)},
		{"otlp_spans_poison", 1, "permanent:clickhouse_53", t0.Add(2 * time.Hour)},
		{"otlp_metrics_poison", 0, "permanent:clickhouse_27", t0.Add(time.Hour)},
	} {
		s := base
		s.token = "tok-" + string(rune('a'+i))
		s.poisonReason, s.poisonAt = r.reason, r.at
		value := spans(t, "payments", 3, t0)
		if strings.HasPrefix(r.topic, "otlp_metrics") {
			value = gauge(t, "cart", 2, t0)
		}
		recs = append(recs, produce(t, cl, r.topic, r.p, value, s))
	}
	produce(t, cl, "otlp_spans_dlq", 0, spans(t, "checkout", 1, t0), stamp{reason: "transient:timeout", member: "clickhouse/live", token: "tok-dlq", at: t0})
	return t0, recs
}

func TestRedriveDryRunWritesNothing(t *testing.T) {
	addr := startKafka(t)
	poisoned(t, addr)
	env := map[string]string{"KAFKA_BROKERS": addr}

	stdout, stderr, code := cli(t, env, "redrive", "--config", referenceConfig, "--from", "poison", "--to", "dlq")
	require.Equal(t, 0, code, stderr)
	t.Logf("\n%s", stdout)
	assert.Contains(t, stdout, "would copy otlp_spans_poison/0/0 -> otlp_spans_dlq (poison reason permanent:clickhouse_27, poisoned 2026-11-26T10:00:00.000Z)\n")
	assert.Contains(t, stdout, "would copy otlp_metrics_poison/0/0 -> otlp_metrics_dlq")
	assert.Regexp(t, `\notlp_spans_poison +otlp_spans_dlq +3 +0 +3 +0\n`, stdout)
	assert.Contains(t, stdout, "dry run: nothing written; run again with --apply to copy 4 records\n")
	assert.Len(t, readAll(t, addr, "otlp_spans_dlq"), 1, "the DLQ's own record only")
	assert.Empty(t, readAll(t, addr, "otlp_metrics_dlq"))
}

// --apply copies each record once, with its origin in a header, its stamp
// and deduplication token, without the poison stamp; a second run copies
// nothing.
func TestRedriveApplyIsIdempotent(t *testing.T) {
	addr := startKafka(t)
	_, src := poisoned(t, addr)
	env := map[string]string{"KAFKA_BROKERS": addr}

	stdout, stderr, code := cli(t, env, "redrive", "--config", referenceConfig, "--from", "poison", "--to", "dlq", "--apply")
	require.Equal(t, 0, code, stderr)
	t.Logf("\n%s", stdout)
	assert.Contains(t, stdout, "copy otlp_spans_poison/1/1 -> otlp_spans_dlq")
	assert.Contains(t, stdout, "copied 4 records\n")

	dlq := readAll(t, addr, "otlp_spans_dlq")
	require.Len(t, dlq, 4, "the DLQ's own record and 3 copies")
	copies := map[string]*kgo.Record{}
	for _, r := range dlq {
		if from, ok := headerOf(r, headerRedrivenFrom); ok {
			copies[from] = r
		}
	}
	require.Len(t, copies, 3)
	for i, from := range []string{"otlp_spans_poison/0/0", "otlp_spans_poison/1/0", "otlp_spans_poison/1/1"} {
		c := copies[from]
		require.NotNil(t, c, from)
		assert.Equal(t, src[i].Value, c.Value, from)
		token, _ := headerOf(c, dlqmeta.KeyDedupToken)
		assert.Equal(t, "tok-"+string(rune('a'+i)), token, "%s: the replay deduplicates by the token", from)
		for _, k := range []string{dlqmeta.KeyGroup, dlqmeta.KeyFailedMember, dlqmeta.KeyReason, dlqmeta.KeyTime} {
			want, _ := headerOf(src[i], k)
			got, ok := headerOf(c, k)
			assert.True(t, ok, "%s keeps %s", from, k)
			assert.Equal(t, want, got, "%s: %s", from, k)
		}
		for _, k := range []string{dlqmeta.KeyPoisonReason, dlqmeta.KeyPoisonTime} {
			_, ok := headerOf(c, k)
			assert.False(t, ok, "%s: %s dropped", from, k)
		}
		assert.Len(t, c.Headers, 6, "%s: the stamp, the token and the origin", from)
	}
	metrics := readAll(t, addr, "otlp_metrics_dlq")
	require.Len(t, metrics, 1)
	from, _ := headerOf(metrics[0], headerRedrivenFrom)
	assert.Equal(t, "otlp_metrics_poison/0/0", from)

	// Again: everything is there already.
	stdout, stderr, code = cli(t, env, "redrive", "--config", referenceConfig, "--from", "poison", "--to", "dlq", "--apply")
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, stdout, "copy otlp")
	assert.Regexp(t, `\notlp_spans_poison +otlp_spans_dlq +3 +3 +0 +0\n`, stdout)
	assert.Contains(t, stdout, "copied 0 records\n")
	assert.Len(t, readAll(t, addr, "otlp_spans_dlq"), 4)
	assert.Len(t, readAll(t, addr, "otlp_metrics_dlq"), 1)
}

func TestRedriveFilters(t *testing.T) {
	addr := startKafka(t)
	t0, _ := poisoned(t, addr)
	env := map[string]string{"KAFKA_BROKERS": addr}
	redrive := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := cli(t, env, append([]string{"redrive", "--config", referenceConfig}, args...)...)
		require.Equal(t, 0, code, stderr)
		return stdout
	}

	// --reason: exactly one reason, or a pattern.
	out := redrive("--from", "otlp_spans_poison", "--to", "otlp_spans_dlq", "--reason", "permanent:clickhouse_53")
	assert.Regexp(t, `\notlp_spans_poison +otlp_spans_dlq +1 +0 +1 +2\n`, out)
	assert.Contains(t, out, "would copy otlp_spans_poison/1/1 ")
	out = redrive("--from", "poison", "--to", "dlq", "--reason", "permanent:*")
	assert.Contains(t, out, "to copy 4 records")

	// --since: poisoned at or after the time.
	out = redrive("--from", "poison", "--to", "dlq", "--since", t0.Add(time.Hour).Format(time.RFC3339))
	assert.Regexp(t, `\notlp_spans_poison +otlp_spans_dlq +2 +0 +2 +1\n`, out)
	assert.Regexp(t, `\notlp_metrics_poison +otlp_metrics_dlq +1 +0 +1 +0\n`, out)

	// Both, applied: only that record is copied, and a wider run later
	// copies the rest only.
	out = redrive("--from", "poison", "--to", "dlq", "--since", t0.Add(time.Hour).Format(time.RFC3339), "--reason", "*_27", "--apply")
	assert.Contains(t, out, "copied 2 records")
	out = redrive("--from", "poison", "--to", "dlq", "--apply")
	assert.Regexp(t, `\notlp_spans_poison +otlp_spans_dlq +3 +1 +2 +0\n`, out)
	assert.Len(t, readAll(t, addr, "otlp_spans_dlq"), 4)

	// A duration back from now takes everything poisoned since.
	out = redrive("--from", "poison", "--to", "dlq", "--since", "1h")
	assert.Contains(t, out, "to copy 0 records", "poisoned in 2026-11-26 morning, long before")
}

func TestRedriveUsage(t *testing.T) {
	addr := startKafka(t)
	env := map[string]string{"KAFKA_BROKERS": addr}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--to", "dlq"}, 2, "--from and --to are required"},
		{[]string{"--from", "poison", "--to", "dlq", "--since", "yesterday"}, 2, "--since yesterday is neither a time"},
		{[]string{"--from", "otlp_spans_dlq", "--to", "dlq"}, 1, `--from "otlp_spans_dlq" is not a poison topic`},
		{[]string{"--from", "poison", "--to", "otlp_spans_poison"}, 1, `--to "otlp_spans_poison" is not a DLQ topic`},
		{[]string{"--from", "otlp_logs_poison", "--to", "otlp_spans_dlq"}, 1, "no DLQ topic of ../../testdata/otelcol-failover.yaml takes logs"},
		{[]string{"--from", "poison", "--to", "dlq", "--reason", "[x"}, 1, "is not a valid pattern"},
	} {
		_, stderr, code := cli(t, env, append([]string{"redrive", "--config", referenceConfig}, tc.args...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, tc.args)
	}
}
