package failovergroupexporter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap/zapcore"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// These tests use the real contrib clickhouse exporter as a member, failing
// the ways a ClickHouse outage makes it fail, with no server: a closed port
// refuses connections at once; a listener that accepts and never answers
// hangs every request.

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
		h := newHarness(t, sig, clickhouseGroup(closedPort(t), false))
		h.waitReady() // create_schema false: Start does no I/O
		for i := range 3 {
			began := time.Now()
			require.NoError(t, h.send(fmt.Sprintf("r%d", i)))
			assert.Less(t, time.Since(began), time.Second, "refused at once, failed over in the same call")
		}
		calls := h.member("dlq").callList()
		require.Len(t, calls, 3)
		assert.Equal(t, []string{"transient:connection_refused"}, calls[0].md[dlqmeta.KeyReason])
		assert.Equal(t, []string{"clickhouse/live"}, calls[0].md[dlqmeta.KeyFailedMember])
		assert.Equal(t, stateOpen, h.breaker(0).current())
		assert.EqualValues(t, 3, h.sum("failover_group_attempts", memberAttr("clickhouse/live"), outcomeAttr("transient_error")))
		// exporterhelper's per-batch "Exporting failed" ERROR is demoted:
		// the group logs the breaker opening once instead.
		assert.Empty(t, h.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("Exporting failed").All())
		assert.Len(t, h.logLines(zapcore.WarnLevel, "circuit breaker opened"), 1)
	})
}

// 5. A clickhouse member whose server never answers: the member's own
// timeout (set to attempt_timeout by the group) ends the attempt, and the
// batch fails over.
func TestRealClickHouseHangs(t *testing.T) {
	h := newHarness(t, allSignals[0], clickhouseGroup(silentListener(t), false))
	h.waitReady()
	assert.True(t, h.exp.(tracesGroup).members[0].enforcesTimeout, "the exporter's own timeout is the attempt deadline")
	began := time.Now()
	require.NoError(t, h.send("slow"))
	took := time.Since(began)
	assert.GreaterOrEqual(t, took, 250*time.Millisecond)
	assert.Less(t, took, 3*time.Second, "ended at attempt_timeout (300ms), not the exporter's default 5s")
	calls := h.member("dlq").callList()
	require.Len(t, calls, 1)
	assert.Equal(t, []string{"transient:timeout"}, calls[0].md[dlqmeta.KeyReason])
}

// 7. A clickhouse member whose Start fails (create_schema against a closed
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

// 7. A clickhouse member whose Start hangs (the server accepts and never
// answers: create_schema blocks for its whole context) does not delay the
// group's start.
func TestRealClickHouseStartHangs(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(clickhouseGroup(silentListener(t), true), "timeout: 500ms", "timeout: 3s", 1)
	h := newHarnessNoStart(t, allSignals[0], doc)
	began := time.Now()
	h.start()
	assert.Less(t, time.Since(began), time.Second, "the collector's start is not delayed by a Start that blocks for 3s")
	h.waitMemberReady(1)
	require.NoError(t, h.send("a"))
	assert.Less(t, time.Since(began), 2*time.Second, "the first batch waited at most attempt_timeout")
	assert.Equal(t, []string{"a"}, h.member("dlq").receivedIDs())
	require.Eventually(t, func() bool {
		return len(h.logLines(zapcore.WarnLevel, "Member could not start")) >= 1
	}, waitFor, 5*time.Millisecond, "the hung start is given up after member_start::timeout and retried")
}

// 14. The replay wiring: a group of one clickhouse member. The plain
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
		assert.Contains(t, err.Error(), "members[0] clickhouse/replay: not tried: not started")
	})
}

// 8. A retry the user turns on in a member is still bounded by the attempt
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
	assert.False(t, h.exp.(tracesGroup).members[0].enforcesTimeout, "own retries: the group's deadline is needed")
	began := time.Now()
	require.NoError(t, h.send("r"))
	took := time.Since(began)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond, "the member retried within the attempt")
	assert.Less(t, took, 3*time.Second, "cut at attempt_timeout, not max_elapsed_time (60s)")
	assert.Equal(t, []string{"r"}, h.member("dlq").receivedIDs())
	reason := h.member("dlq").callList()[0].md[dlqmeta.KeyReason]
	require.Len(t, reason, 1)
	assert.True(t, strings.HasPrefix(reason[0], "transient:"), reason[0])
	assert.Equal(t, stateClosed, h.breaker(0).current(), "one failed attempt, below failure_threshold")
}
