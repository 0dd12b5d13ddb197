// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// The DLQ path under the failures that used to lose data: batches larger
// than a Kafka record, a single item that fits no record, bad data mixed
// with good, and every member down for longer than any retry budget.

// encodedSize is a recorded batch's OTLP protobuf size.
func encodedSize(t *testing.T, data any) int {
	t.Helper()
	switch d := data.(type) {
	case ptrace.Traces:
		return (&ptrace.ProtoMarshaler{}).TracesSize(d)
	case pmetric.Metrics:
		return (&pmetric.ProtoMarshaler{}).MetricsSize(d)
	case plog.Logs:
		return (&plog.ProtoMarshaler{}).LogsSize(d)
	}
	t.Fatalf("not a batch: %T", data)
	return 0
}

// A kafka member gets a batch larger than producer::max_message_bytes in
// parts that each fit one record, every part stamped like the whole; the
// client sees success and every item is parked once.
func TestOversizedBatchIsParkedInParts(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/primary:
  - kafka/dlq:
      producer: {max_message_bytes: 2000}
`)
		h.waitReady()
		h.member("primary").always(fail(errRefused))
		items := ids("big", 200) // about 10 kB encoded
		require.NoError(t, h.send(items...))

		calls := h.member("dlq").callList()
		require.Greater(t, len(calls), 3, "split into several records")
		var parked []string
		for _, c := range calls {
			// The budget of a record with this call's headers: the DLQ
			// stamp the group adds to include_metadata_keys.
			stamped := client.NewContext(t.Context(), client.Info{Metadata: client.NewMetadata(c.md)})
			budget := membersOf(h.exp)[1].valueBudget(stamped)
			require.Less(t, budget, membersOf(h.exp)[1].valueBudget(t.Context()), "the stamp headers take room")
			assert.LessOrEqual(t, encodedSize(t, c.data), budget, "each part fits one record")
			assert.Equal(t, []string{"transient:connection_refused"}, c.md[dlqmeta.KeyReason], "each part is stamped like the whole")
			assert.Equal(t, []string{"failover_group/ingest"}, c.md[dlqmeta.KeyGroup])
			parked = append(parked, c.ids...)
		}
		assert.Equal(t, items, parked, "every item parked once, in order")
		assert.Equal(t, stateClosed, h.breaker(1).state())
		assert.EqualValues(t, 200, h.sum("failover_group_delivered_items", memberAttr("kafka/dlq")))
	})
}

// One item that cannot fit a record even alone is the one thing a DLQ
// member cannot park: it is refused with a permanent error naming the limit
// and the key that raises it; the rest is parked; the DLQ breaker is not
// charged (repeated, that would open it in the middle of an outage). The
// client is told not to retry (400 / InvalidArgument): a retry would park
// the rest again and fail on the same item.
func TestItemLargerThanARecordIsRefused(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/primary:
  - kafka/dlq:
      producer: {max_message_bytes: 1000}
circuit_breaker: {failure_threshold: 1}
`)
		h.waitReady()
		h.member("primary").always(fail(errRefused))
		huge := strings.Repeat("x", 3000)
		for range 3 {
			err := h.send("small-1", huge, "small-2")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "members[1] kafka/dlq: permanent:too_large")
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "refused: the client must not send it again")
			assert.True(t, consumererror.IsPermanent(err))
			assert.Equal(t, stateClosed, h.breaker(1).state(), "a too-large item never charges the DLQ breaker")
		}
		assert.Equal(t, []string{"small-1", "small-2", "small-1", "small-2", "small-1", "small-2"}, h.member("dlq").acceptedIDs())
		lines := h.logLines(zapcore.WarnLevel, "No member accepted the data")
		require.NotEmpty(t, lines)
		detail := lines[0].ContextMap()["error"].(string)
		assert.Contains(t, detail, "larger than one record of members[1] kafka/dlq can carry")
		assert.Contains(t, detail, "raise producer::max_message_bytes of kafka/dlq")
		assert.EqualValues(t, 3, h.sum("failover_group_attempts", memberAttr("kafka/dlq"), outcomeAttr("partial")))
	})
}

// A record the member still refuses as too large (its encoding is larger
// than measured, or the broker's limit is lower) is halved until it fits.
func TestTooLargeRefusalIsHalved(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers)
		h.waitReady()
		h.member("primary").always(fail(errRefused))
		tooLarge := consumererror.NewPermanent(fmt.Errorf("error exporting to topic %q: %w", "dlq", kerr.MessageTooLarge))
		h.member("dlq").set(func(_ context.Context, got []string) result {
			if len(got) > 10 {
				return fail(tooLarge)
			}
			return succeed()
		})
		items := ids("r", 40)
		require.NoError(t, h.send(items...))
		assert.Equal(t, items, h.member("dlq").acceptedIDs())
		assert.Equal(t, stateClosed, h.breaker(1).state())
	})
}

// A batch a member refuses as bad data, whole (ClickHouse refuses a whole
// insert for one bad row), is halved until the refused items are found: the
// good ones are taken, only the refused ones move on, within 2·log2(n)
// extra calls.
func TestBadDataIsIsolated(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers)
		h.waitReady()
		h.member("primary").set(func(_ context.Context, got []string) result {
			if slices.Contains(got, "r-37") {
				return fail(errBadData)
			}
			return succeed()
		})
		items := ids("r", 100)
		require.NoError(t, h.send(items...))
		assert.Equal(t, []string{"r-37"}, h.member("dlq").receivedIDs(), "only the refused item moves on")
		assert.Equal(t, slices.DeleteFunc(slices.Clone(items), func(id string) bool { return id == "r-37" }), h.member("primary").acceptedIDs(), "in order")
		assert.LessOrEqual(t, h.member("primary").numCalls(), 1+isolateBudget(100))
		assert.Equal(t, []string{"permanent:clickhouse_53"}, h.member("dlq").callList()[0].md[dlqmeta.KeyReason])
		assert.Equal(t, stateClosed, h.breaker(0).state())
		assert.EqualValues(t, 99, h.sum("failover_group_delivered_items", memberAttr("testmember/primary")))
	})
}

// Isolation is bounded: with bad items everywhere it gives up after its
// budget and moves what it could not resolve on with the refused items.
func TestBadDataIsolationIsBounded(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers)
	h.waitReady()
	h.member("primary").set(func(_ context.Context, got []string) result {
		for _, id := range got {
			if id[len(id)-1]%2 == 0 { // every other item is bad
				return fail(errBadData)
			}
		}
		return succeed()
	})
	items := ids("r", 64)
	require.NoError(t, h.send(items...))
	assert.Equal(t, 1+isolateBudget(64), h.member("primary").numCalls())
	got := append(h.member("primary").acceptedIDs(), h.member("dlq").receivedIDs()...)
	assert.ElementsMatch(t, items, got, "every item taken by exactly one member")
}

// The answer upstream: retryable (gRPC Unavailable, OTLP/HTTP 503) unless
// every member refused the data as bad (InvalidArgument, 400); a member's
// own permanent mark on an outage (kafka marks non-retriable broker errors
// so) never makes it permanent.
func TestUpstreamAnswer(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers)
		h.waitReady()
		h.member("primary").always(fail(errRefused))
		h.member("dlq").always(fail(consumererror.NewPermanent(fmt.Errorf("error exporting to topic %q: %w", "dlq", kerr.TopicAuthorizationFailed))))
		err := h.send("x")
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err))
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.NotContains(t, err.Error(), "127.0.0.1", "no addresses reach the client")
		assert.NotContains(t, err.Error(), "dlq\"", "no topics either")

		h.member("primary").always(fail(errBadData))
		h.member("dlq").always(fail(errBadData))
		err = h.send("y")
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err))
		assert.Equal(t, codes.InvalidArgument, status.Code(err))
		assert.True(t, strings.HasSuffix(err.Error(), "failover_group/ingest: no member accepted the data: "+
			"members[0] testmember/primary: permanent:clickhouse_53; members[1] testmember/dlq: permanent:clickhouse_53"), err.Error())
	})
}

// When no member takes a batch, the group says so in the log, but not once
// per batch: the first at once, then one line per interval with counts.
func TestExhaustionLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	clock := newFakeClock()
	l := newExhaustionLog(zap.New(core), clock.Now)
	e := &noMemberTookIt{group: "failover_group/ingest", failures: []attemptFailure{{index: 0, member: "clickhouse/live", err: errRefused, verdict: skipVerdicts[skipBreakerOpen]}}}
	for range 5 {
		l.record(10, e)
	}
	require.Equal(t, 1, logs.Len())
	assert.EqualValues(t, 1, logs.All()[0].ContextMap()["batches"])
	clock.Advance(exhaustionLogInterval)
	l.record(10, e)
	require.Equal(t, 2, logs.Len())
	assert.EqualValues(t, 5, logs.All()[1].ContextMap()["batches"], "the four held back and this one")
	assert.EqualValues(t, 50, logs.All()[1].ContextMap()["items"])
}

// A group with a queue never drops a queued batch while its members are
// down, however long: the breakers run on a fake clock advanced by thirty
// days across hundreds of retries (the retry itself is exporterhelper's,
// with max_elapsed_time 0: no time limit), and the batch is delivered when a
// member comes back.
func TestQueuedBatchIsNeverDropped(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarnessNoStart(t, sig, `
members: [{testmember/primary: {}}, {testmember/dlq: {}}]
circuit_breaker: {failure_threshold: 1, open_duration: 1m, max_open_duration: 1h}
sending_queue: {}
retry_on_failure: {initial_interval: 1ms, max_interval: 2ms, randomization_factor: 0}
`, withClock())
		require.True(t, h.cfg.BackOffConfig.Enabled, "a queue turns the group's retry on")
		require.Zero(t, h.cfg.BackOffConfig.MaxElapsedTime, "with no time limit")
		h.start()
		h.member("primary").always(fail(errRefused))
		h.member("dlq").always(fail(errRefused))
		require.NoError(t, h.send("queued"), "accepted into the queue")

		exhausted := func() int64 { return h.sum("failover_group_exhausted_batches") }
		for day := 1; day <= 30; day++ {
			before := exhausted()
			require.Eventually(t, func() bool { return exhausted() >= before+10 }, waitFor, time.Millisecond, "still retried on day %d", day)
			h.clock.Advance(24 * time.Hour)
		}
		assert.Empty(t, h.logs.FilterMessageSnippet("Dropping data").All(), "never dropped")

		h.member("dlq").always(succeed())
		require.Eventually(t, func() bool { return slices.Contains(h.member("dlq").acceptedIDs(), "queued") }, waitFor, time.Millisecond)
		assert.Empty(t, h.logs.FilterMessageSnippet("Dropping data").All())
	})
}

// A refusal joined from several results (the clickhouse exporter inserts
// each metric type on its own and joins their errors) may come after part
// of the batch was written: it is not isolated, the batch moves on whole.
func TestJoinedRefusalIsNotIsolated(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers)
	h.waitReady()
	h.member("primary").always(fail(errors.Join(errBadData, errors.New("sum metric insert: ok"))))
	require.NoError(t, h.send(ids("j", 8)...))
	assert.Equal(t, 1, h.member("primary").numCalls(), "no halves sent again")
	assert.Equal(t, ids("j", 8), h.member("dlq").receivedIDs())
}

// Isolation gives a member that keeps answering the time its answers take:
// each call is bounded by attempt_timeout, not the whole isolation. A slow
// member (30 ms a call, 100 ms attempt_timeout, 15 calls) still has its one
// bad item found, and its breaker is not charged.
func TestIsolationOfASlowMember(t *testing.T) {
	doc := strings.Replace(twoMembers, "attempt_timeout: 2s", "attempt_timeout: 100ms", 1)
	h := newHarness(t, allSignals[0], strings.Replace(doc, "failure_threshold: 3", "failure_threshold: 1", 1))
	h.waitReady()
	h.member("primary").set(func(ctx context.Context, got []string) result {
		select { // a slow member that refuses bad data
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
			return fail(ctx.Err())
		}
		if slices.Contains(got, "i-0") {
			return fail(errBadData)
		}
		return succeed()
	})
	items := ids("i", 200)
	require.NoError(t, h.send(items...))
	assert.Equal(t, []string{"i-0"}, h.member("dlq").receivedIDs(), "only the bad item moved on")
	assert.Equal(t, items[1:], h.member("primary").acceptedIDs())
	assert.Equal(t, stateClosed, h.breaker(0).state(), "answering slowly is not failing")
	for _, c := range h.member("primary").callList() {
		require.True(t, c.hasDeadline)
		assert.False(t, c.deadline.After(c.at.Add(100*time.Millisecond)), "each call within attempt_timeout")
	}
}

// A refusal with on_permanent_error: return is permanent upstream, also
// when an earlier member was passed by.
func TestReturnedRefusalIsPermanent(t *testing.T) {
	h := newHarness(t, allSignals[0], `
members:
  - testmember/down:
  - testmember/picky:
  - testmember/dlq:
on_permanent_error: return
circuit_breaker: {failure_threshold: 1}
`)
	h.waitReady()
	h.member("down").always(fail(errRefused))
	h.member("picky").always(fail(errBadData))
	err := h.send("a")
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err))
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Zero(t, h.member("dlq").numCalls())
}

// Replayed data refused as bad by the only member that may take it is bad
// data, although a dead-letter member was passed by (loop guard): the answer
// is permanent, so that dlq_routing poisons it instead of retrying forever.
func TestLoopGuardDoesNotHideBadData(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers)
	h.waitReady()
	h.member("primary").always(fail(errBadData))
	err := h.sendCtx(replayedCtx(), "r")
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "members[1] testmember/dlq: not tried: transient:loop_guard")
	// Replayed data no member could try stays retryable.
	h.member("primary").always(fail(errRefused))
	err = h.sendCtx(replayedCtx(), "r2")
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
}

// A dead-letter member keeps room in each record for the poison stamp, so
// that what it parked fits a poison record too.
func TestDeadLetterRecordsKeepRoomForThePoisonStamp(t *testing.T) {
	h := newHarness(t, allSignals[0], `
members:
  - kafka/dlq: {producer: {max_message_bytes: 100000}}
  - kafka/poison: {producer: {max_message_bytes: 100000}}
    dead_letter: false
`)
	views := membersOf(h.exp)
	assert.Equal(t, views[1].valueBudget(t.Context())-poisonStampBytes, views[0].valueBudget(t.Context()))
}

// Batches no member took that were held back from the log are logged when a
// member takes data again, not lost with the end of the outage.
func TestExhaustionLogFlushesWhenAMemberTakesDataAgain(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers, withClock())
	h.waitReady()
	h.member("primary").always(fail(errRefused))
	h.member("dlq").always(fail(errRefused))
	for range 4 {
		require.Error(t, h.send("x"))
	}
	require.Len(t, h.logLines(zapcore.WarnLevel, "No member accepted the data"), 1)
	h.member("dlq").always(succeed())
	h.clock.Advance(time.Hour) // the breakers' open periods end
	require.NoError(t, h.send("y"))
	lines := h.logLines(zapcore.WarnLevel, "No member accepted the data for the last batches")
	require.Len(t, lines, 1)
	assert.EqualValues(t, 3, lines[0].ContextMap()["batches"])
}
