// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap/zapcore"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// These tests use the real contrib clickhouse exporter as a member, failing
// the ways a ClickHouse outage makes it fail, with no server: a closed port
// refuses connections at once; a listener that accepts and never answers
// hangs every request. Most count what live batches alone do to the
// member's breaker, so they turn the background probe off (withoutProbes;
// the probes against real servers are tested in probe_*_test.go).

func clickhouseGroup(addr string, createSchema bool) string {
	return fmt.Sprintf(`
members:
  - clickhouse/live:
      endpoint: http://%s
      create_schema: %t
  - testmember/dlq:
attempt_timeout: 300ms
circuit_breaker: {failure_threshold: 3, open_duration: 1h, max_open_duration: 1h}
member_start: {timeout: 500ms, initial_interval: 50ms, max_interval: 100ms}
`, addr, createSchema)
}

// 2 + 8. A clickhouse member whose server refuses connections fails in the
// call itself (its own async queue is off), so the batch fails over in the
// same call, and the breaker trips. With the exporter's default queue the
// call would have "succeeded" into memory and never failed over.
func TestRealClickHouseConnectionRefused(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, clickhouseGroup(closedPort(t), false), withoutProbes())
		h.waitReady() // create_schema false: Start does no I/O
		for i := range 3 {
			require.NoError(t, h.send(fmt.Sprintf("r%d", i)), "refused, and failed over in the same call")
		}
		calls := h.member("dlq").callList()
		require.Len(t, calls, 3)
		assert.Equal(t, []string{"transient:connection_refused"}, calls[0].md[dlqmeta.KeyReason])
		assert.Equal(t, []string{"clickhouse/live"}, calls[0].md[dlqmeta.KeyFailedMember])
		assert.Equal(t, stateOpen, h.breaker(0).state())
		assert.EqualValues(t, 3, h.sum("failover_group_attempts", memberAttr("clickhouse/live"), outcomeAttr("transient_error")))
		// exporterhelper's per-batch "Exporting failed" ERROR is demoted:
		// the group logs the breaker opening once instead. The demotion
		// keys on exporterhelper's message: if an upstream change renames
		// it, the DEBUG lines are gone and this fails.
		assert.Empty(t, h.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("Exporting failed").All())
		assert.Len(t, h.logs.FilterLevelExact(zapcore.DebugLevel).FilterMessageSnippet("Exporting failed").All(), 3)
		assert.Len(t, h.logLines(zapcore.WarnLevel, "circuit breaker opened"), 1)
	})
}

// A clickhouse member whose server never answers: the member's own
// timeout (set to attempt_timeout by the group) ends the attempt, and the
// batch fails over. The caller's deadline (3s) comes before the exporter's
// default timeout (5s): the batch reaching the DLQ within it shows the
// attempt ended at attempt_timeout.
func TestRealClickHouseHangs(t *testing.T) {
	h := newHarness(t, allSignals[0], clickhouseGroup(silentListener(t), false), withoutProbes())
	h.waitReady()
	assert.True(t, h.exp.(tracesGroup).members[0].ownDeadline, "the exporter's own timeout is the attempt deadline")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	require.NoError(t, h.sendCtx(ctx, "slow"))
	calls := h.member("dlq").callList()
	require.Len(t, calls, 1)
	assert.Equal(t, []string{"transient:timeout"}, calls[0].md[dlqmeta.KeyReason])
}

// The exporters the group trusts to bound every call with their own
// `timeout` (typesWithOwnDeadline) really do, at the pinned versions: each,
// as a member with a destination that accepts connections and never
// answers, ends the attempt by itself (the group adds no deadline for
// them) before a caller deadline that comes well after attempt_timeout and
// well before the exporters' default timeout (5s). The breaker opening
// (failure_threshold 1) shows the attempt ended, not the caller's wait: a
// caller giving up is never charged.
func TestOwnDeadlineOfRealMembers(t *testing.T) {
	for _, tc := range []struct {
		member, config string
		// resetWhileStarting: the exporter's Start talks to the server
		// (clickhouse reads the logs table's columns); let it fail fast.
		resetWhileStarting bool
	}{
		{"clickhouse/live", "endpoint: http://%s\n      create_schema: false", true},
		{"otlp_grpc/peer", "endpoint: %s\n      tls: {insecure: true}", false},
	} {
		t.Run(tc.member, func(t *testing.T) {
			t.Parallel()
			addr, silent := closingListener(t)
			doc := fmt.Sprintf(`
members:
  - %s:
      %s
attempt_timeout: 300ms
circuit_breaker: {failure_threshold: 1, open_duration: 1h, max_open_duration: 1h}
`, tc.member, fmt.Sprintf(tc.config, addr))
			forEachSignal(t, func(t *testing.T, sig signalCase) {
				silent.Store(!tc.resetWhileStarting)
				h := newHarness(t, sig, doc, withRealKafka(), withoutProbes())
				h.waitReady()
				silent.Store(true)
				require.True(t, membersOf(h.exp)[0].ownDeadline(), "%s is trusted to bound its calls", tc.member)
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()
				err := h.sendCtx(ctx, "x")
				require.Error(t, err)
				assert.Regexp(t, "members\\[0\\] "+tc.member+": transient:(timeout|grpc_DeadlineExceeded)$", err.Error())
				assert.Equal(t, stateOpen, h.breaker(0).state(), "the member's own timeout ended the attempt, before the caller gave up")
			})
		})
	}
}

// A kafka member whose broker goes away while a produce request is in
// flight: the kafka exporter's idempotent producer never gives the record
// up (the broker may have written it), past its own timeout and the call's
// context, until the broker is back. The group ends the attempt at
// attempt_timeout anyway (untilDone): the caller's deadline (3s) is still
// far, and the breaker is charged, which a caller giving up never is.
func TestRealKafkaProduceInFlightWhenBrokerDies(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "otlp_spans"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	var produces atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		// kfake drops the connection: to the client, the broker went
		// away with the request in flight.
		return nil, errors.New("broker went away mid-request"), true
	})
	h := newHarness(t, allSignals[0], fmt.Sprintf(`
members:
  - kafka/dlq: {brokers: [%s]}
attempt_timeout: 500ms
circuit_breaker: {failure_threshold: 1, open_duration: 1h, max_open_duration: 1h}
`, c.ListenAddrs()[0]), withRealKafka(), withoutProbes())
	h.waitReady()
	require.False(t, membersOf(h.exp)[0].ownDeadline(), "the group bounds a kafka member's calls")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.sendCtx(ctx, "x") }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		// Unbounded, the call waits for the broker (here: forever);
		// the group's Shutdown at cleanup closes the client.
		t.Fatal("the call still waits 30s later, past the caller's 3s deadline: the group did not bound the member's call")
	}
	require.Error(t, err)
	assert.Regexp(t, "members\\[0\\] kafka/dlq: transient:timeout$", err.Error())
	assert.Equal(t, stateOpen, h.breaker(0).state(), "the attempt ended at attempt_timeout, before the caller gave up")
	assert.NotZero(t, produces.Load(), "the produce request reached the broker")
}

// A clickhouse member whose Start fails (create_schema against a closed
// port) does not stop the group; its data goes to the next member and it is
// started again in the background.
func TestRealClickHouseStartFails(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, clickhouseGroup(closedPort(t), true)) // Start does not fail
		h.waitMemberReady(1)
		require.NoError(t, h.send("a"))
		calls := h.member("dlq").callList()
		require.Len(t, calls, 1)
		assert.Equal(t, []string{"transient:unavailable"}, calls[0].md[dlqmeta.KeyReason])
		require.Eventually(t, func() bool {
			return len(h.logLines(zapcore.WarnLevel, "Member could not start")) >= 2
		}, waitFor, 5*time.Millisecond, "retried in the background")
		assert.Contains(t, h.logLines(zapcore.WarnLevel, "Member could not start")[0].ContextMap()["error"], "connection refused")
	})
}

// A clickhouse member whose Start hangs (the server accepts and never
// answers: create_schema blocks for its whole context) does not delay the
// group's start.
func TestRealClickHouseStartHangs(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(clickhouseGroup(silentListener(t), true), "timeout: 500ms", "timeout: 3s", 1)
	h := newHarnessNoStart(t, allSignals[0], doc)
	startFailed := func() int { return len(h.logLines(zapcore.WarnLevel, "Member could not start")) }
	h.start()
	require.Zero(t, startFailed(), "the group's Start returned before the member's Start (3s) gave up")
	h.waitMemberReady(1)
	require.NoError(t, h.send("a"))
	assert.Zero(t, startFailed(), "the first batch went on before the member's Start gave up: it waited at most attempt_timeout")
	assert.Equal(t, []string{"a"}, h.member("dlq").receivedIDs())
	assert.Equal(t, []string{"transient:unavailable"}, h.member("dlq").callList()[0].md[dlqmeta.KeyReason])
	require.Eventually(t, func() bool { return startFailed() >= 1 }, waitFor, 5*time.Millisecond,
		"the hung start is given up after member_start::timeout and retried")
}

// The replay wiring: a group of one clickhouse member. The plain
// exporter would stop the collector from starting while ClickHouse is down;
// in the group, Start succeeds and each batch gets a retryable error.
func TestRealClickHouseGroupOfOne(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarnessNoStart(t, sig, fmt.Sprintf(`
members:
  - clickhouse/replay: {endpoint: "http://%s"}
attempt_timeout: 300ms
member_start: {timeout: 500ms, initial_interval: 50ms, max_interval: 100ms}
`, closedPort(t)))
		h.start()
		err := h.send("r")
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "retryable: the kafka receiver keeps the record")
		assert.Contains(t, err.Error(), "members[0] clickhouse/replay: not tried: transient:unavailable")
	})
}

// A retry the user turns on in a member is still bounded by the attempt
// deadline: the group keeps its own deadline for such a member, and the
// batch fails over at attempt_timeout instead of after max_elapsed_time.
func TestRealClickHouseUserRetryBounded(t *testing.T) {
	h := newHarness(t, allSignals[0], fmt.Sprintf(`
members:
  - clickhouse/live:
      endpoint: http://%s
      create_schema: false
      retry_on_failure: {enabled: true, initial_interval: 20ms, max_interval: 50ms, max_elapsed_time: 60s}
  - testmember/dlq:
attempt_timeout: 300ms
`, closedPort(t)))
	h.waitReady()
	assert.False(t, h.exp.(tracesGroup).members[0].ownDeadline, "own retries: the group's deadline is needed")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	began := time.Now()
	require.NoError(t, h.sendCtx(ctx, "r"), "cut at attempt_timeout, long before max_elapsed_time (60s)")
	assert.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "the member retried within the attempt")
	assert.Equal(t, []string{"r"}, h.member("dlq").receivedIDs())
	reason := h.member("dlq").callList()[0].md[dlqmeta.KeyReason]
	require.Len(t, reason, 1)
	assert.True(t, strings.HasPrefix(reason[0], "transient:"), reason[0])
	assert.Equal(t, stateClosed, h.breaker(0).state(), "one failed attempt, below failure_threshold")
}

// The clickhouse exporter refuses a metric without a data type before it
// writes anything, with a plain error that errclass knows by its text: this
// pins that text against the real exporter. Bad data, so the breaker is not
// charged and the batch moves on (here: back, as the only member refused it).
func TestClickHouseExporterRefusals(t *testing.T) {
	h := newHarness(t, allSignals[1], fmt.Sprintf(`
members:
  - clickhouse/live: {endpoint: "http://%s", create_schema: false}
circuit_breaker: {failure_threshold: 1}
`, closedPort(t)), withoutProbes())
	h.waitReady()
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetName("no data type")
	err := h.exp.(metricsGroup).ConsumeMetrics(t.Context(), md)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "bad data: %v", err)
	assert.Contains(t, err.Error(), "members[0] clickhouse/live: permanent:clickhouse_metrics_type_unset")
	assert.Equal(t, stateClosed, h.breaker(0).state(), "bad data is not the member's fault")
}

// The kafka exporter logs an ERROR for every failed produce; as a member,
// that line is demoted to DEBUG (the group logs the breaker and, rate-limited,
// the batches no member took). This pins the exporter's message.
func TestRealKafkaMemberFailureLogIsDemoted(t *testing.T) {
	h := newHarness(t, allSignals[0], fmt.Sprintf(`
members:
  - kafka/dlq: {brokers: [%s]}
attempt_timeout: 300ms
`, closedPort(t)), withRealKafka(), withoutProbes())
	h.waitReady()
	require.Error(t, h.send("x"))
	assert.Empty(t, h.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("kafka records export failed").All())
	assert.Len(t, h.logs.FilterLevelExact(zapcore.DebugLevel).FilterMessageSnippet("kafka records export failed").All(), 1)
}

// The real clickhouse exporter sends the batch's token with its insert:
// the context the group gives the member reaches clickhouse-go's
// PrepareBatch, which sends it as the insert_deduplication_token query
// setting (a URL parameter over HTTP), with async_insert_deduplicate=1. The
// server here records every request and refuses each with a ClickHouse
// exception, so the batch moves on to the DLQ member, whose record carries
// the same token. (That ClickHouse then drops a second insert with the token
// is shown against the real engine in testbed/e2e.)
func TestRealClickHouseInsertCarriesToken(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		var mu sync.Mutex
		var requests []url.Values
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			requests = append(requests, r.URL.Query())
			mu.Unlock()
			w.Header().Set("X-ClickHouse-Exception-Code", "60")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "Code: 60. DB::Exception: Unknown table expression identifier. (UNKNOWN_TABLE)\n")
		}))
		t.Cleanup(srv.Close)
		h := newHarness(t, sig, fmt.Sprintf(`
members:
  - clickhouse/live: {endpoint: "%s", create_schema: false}
  - testmember/dlq:
`, srv.URL), withoutProbes())
		h.waitReady()
		require.NoError(t, h.send("a"))
		dlq := h.member("dlq").callList()
		require.Len(t, dlq, 1)
		token := dlq[0].md[dlqmeta.KeyDedupToken]
		require.Len(t, token, 1, "the parked record carries the token")

		mu.Lock()
		defer mu.Unlock()
		var carried int
		for _, q := range requests {
			if q.Get("insert_deduplication_token") == "" {
				continue
			}
			carried++
			assert.Equal(t, token[0], q.Get("insert_deduplication_token"), "the live insert's token is the record's")
			assert.Equal(t, "1", q.Get("async_insert_deduplicate"))
		}
		assert.Positive(t, carried, "no request of the member carried the token: %v", requests)
	})
}
