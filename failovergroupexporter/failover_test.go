// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// twoMembers is the group most tests use: a primary and a DLQ.
const twoMembers = `
members:
  - testmember/primary:
  - testmember/dlq:
    dead_letter: true
attempt_timeout: 2s
circuit_breaker:
  failure_threshold: 3
  open_duration: 10s
  backoff_multiplier: 2
  max_open_duration: 35s
  success_threshold: 1
`

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// Healthy primary: every batch goes to the primary only.
func TestHealthyPrimaryTakesEverything(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers)
		var sent []string
		for i := range 20 {
			batch := ids(fmt.Sprintf("b%d", i), 3)
			sent = append(sent, batch...)
			require.NoError(t, h.send(batch...))
		}
		assert.Equal(t, sent, h.member("primary").receivedIDs())
		assert.Zero(t, h.member("dlq").numCalls(), "the DLQ member is never called while the primary is healthy")
		for _, c := range h.member("primary").callList() {
			assert.Empty(t, c.md, "no DLQ stamp on data for the primary")
			assert.Equal(t, sig.name, c.signal)
		}
		assert.Equal(t, stateClosed, h.breaker(0).state())
		assert.EqualValues(t, 20, h.sum("failover_group_attempts", memberAttr("testmember/primary"), outcomeAttr("success")))
		assert.EqualValues(t, 60, h.sum("failover_group_delivered_items", memberAttr("testmember/primary")))
		assert.Zero(t, h.sum("failover_group_failovers", memberAttr("testmember/primary")))
	})
}

// A transient failure fails over in the same call; the trip rule opens
// the breaker; an open primary is skipped without I/O; after the open period
// a probe goes to it; failure reopens it for longer (capped); success
// closes it.
func TestTransientFailoverAndBreakerCycle(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers, withClock())
		primary, dlq := h.member("primary"), h.member("dlq")
		primary.always(fail(errRefused))

		// Same call: the caller sees success, the DLQ has the batch.
		require.NoError(t, h.send("a1", "a2"))
		assert.Equal(t, []string{"a1", "a2"}, primary.receivedIDs())
		assert.Equal(t, []string{"a1", "a2"}, dlq.receivedIDs())
		assert.Equal(t, stateClosed, h.breaker(0).state())

		// Third consecutive failure opens the breaker.
		require.NoError(t, h.send("a3"))
		require.NoError(t, h.send("a4"))
		assert.Equal(t, stateOpen, h.breaker(0).state())
		assert.Equal(t, 3, primary.numCalls())

		// Open: skipped with no I/O until the period ends.
		for i := range 10 {
			require.NoError(t, h.send(fmt.Sprintf("open-%d", i)))
		}
		h.clock.Advance(10*time.Second - time.Millisecond)
		require.NoError(t, h.send("still-open"))
		assert.Equal(t, 3, primary.numCalls(), "an open member gets no call")
		assert.Equal(t, 14, dlq.numCalls())
		assert.EqualValues(t, 11, h.sum("failover_group_skipped", memberAttr("testmember/primary"), reasonAttr("breaker_open")))

		// The period ends: the next batch probes the primary; it fails and
		// the breaker reopens for twice as long.
		h.clock.Advance(time.Millisecond)
		require.NoError(t, h.send("probe-1"))
		assert.Equal(t, 4, primary.numCalls(), "one probe")
		assert.Equal(t, stateOpen, h.breaker(0).state())
		assert.Equal(t, 20*time.Second, h.breaker(0).openPeriod())
		h.clock.Advance(20*time.Second - time.Millisecond)
		require.NoError(t, h.send("x"))
		assert.Equal(t, 4, primary.numCalls(), "open for the longer period")
		h.clock.Advance(time.Millisecond)
		require.NoError(t, h.send("probe-2"))
		assert.Equal(t, 35*time.Second, h.breaker(0).openPeriod(), "capped at max_open_duration")
		h.clock.Advance(35 * time.Second)
		require.NoError(t, h.send("probe-3"))
		assert.Equal(t, 35*time.Second, h.breaker(0).openPeriod(), "stays at the cap")
		assert.Equal(t, 6, primary.numCalls())

		// The primary recovers: the next probe succeeds and closes it.
		primary.always(succeed())
		h.clock.Advance(35 * time.Second)
		dlqBefore := dlq.numCalls()
		require.NoError(t, h.send("probe-ok"))
		assert.Equal(t, stateClosed, h.breaker(0).state())
		for i := range 5 {
			require.NoError(t, h.send(fmt.Sprintf("after-%d", i)))
		}
		assert.Equal(t, dlqBefore, dlq.numCalls(), "closed: the DLQ is not used")
		assert.Equal(t, 12, primary.numCalls())

		// Every batch reached exactly one member that accepted it.
		assert.Len(t, dlq.receivedIDs(), 19)
	})
}

// Partial success: only the failed part moves to the next member.
func TestPartialSuccessMovesOnlyFailedPart(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, twoMembers)
		h.member("primary").always(partial("b", "d"))
		require.NoError(t, h.send("a", "b", "c", "d", "e"))
		assert.Equal(t, []string{"a", "b", "c", "d", "e"}, h.member("primary").receivedIDs())
		assert.Equal(t, []string{"b", "d"}, h.member("dlq").receivedIDs(), "only the failed part")
		assert.EqualValues(t, 1, h.sum("failover_group_attempts", memberAttr("testmember/primary"), outcomeAttr("partial")))
		assert.EqualValues(t, 3, h.sum("failover_group_delivered_items", memberAttr("testmember/primary")))
		assert.EqualValues(t, 2, h.sum("failover_group_delivered_items", memberAttr("testmember/dlq")))

		// When the next member fails too, the error upstream carries only
		// the part still undelivered, so an upstream retry resends only it.
		h.member("dlq").always(fail(errors.New("kafka: broker down")))
		err := h.send("a", "b", "c", "d", "e")
		require.Error(t, err)
		failed, ok := sig.failedIDs(err)
		require.True(t, ok, "the error carries the failed part: %v", err)
		assert.Equal(t, []string{"b", "d"}, failed)
		assert.False(t, consumererror.IsPermanent(err))
	})
}

// Permanent errors (bad data) do not charge the breaker and go to the
// next member by default, or back upstream with on_permanent_error: return.
func TestPermanentError(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		t.Run("next_member", func(t *testing.T) {
			h := newHarness(t, sig, twoMembers)
			// The clickhouse exporter marks nothing permanent: the group
			// classifies the server's exception code itself.
			h.member("primary").always(fail(errors.New(`insert: [HTTP 500] response body: "Code: 53. DB::Exception: Type mismatch. (TYPE_MISMATCH)"`)))
			for i := range 10 {
				require.NoError(t, h.send(fmt.Sprintf("bad-%d", i)))
			}
			assert.Equal(t, stateClosed, h.breaker(0).state(), "bad data says nothing about the member's health")
			assert.Equal(t, 10, h.member("primary").numCalls(), "never skipped")
			assert.Len(t, h.member("dlq").receivedIDs(), 10, "parked in the next member")
			assert.EqualValues(t, 10, h.sum("failover_group_attempts", memberAttr("testmember/primary"), outcomeAttr("permanent_error")))
			c := h.member("dlq").callList()[0]
			assert.Equal(t, []string{"permanent:clickhouse_53"}, c.md[dlqmeta.KeyReason])

			// Every member refusing the data as bad: a permanent error.
			h.member("dlq").always(fail(errBadData))
			err := h.send("bad-everywhere")
			require.Error(t, err)
			assert.True(t, consumererror.IsPermanent(err), "only permanent failures: %v", err)
		})
		t.Run("return", func(t *testing.T) {
			h := newHarness(t, sig, twoMembers+"on_permanent_error: return\n")
			h.member("primary").always(fail(errBadData))
			err := h.send("bad")
			require.Error(t, err)
			assert.True(t, consumererror.IsPermanent(err))
			assert.Contains(t, err.Error(), "members[0] testmember/primary")
			assert.Zero(t, h.member("dlq").numCalls(), "returned, not parked")
			assert.Equal(t, stateClosed, h.breaker(0).state())

			// Transient errors still fail over.
			h.member("primary").always(fail(errRefused))
			require.NoError(t, h.send("outage"))
			assert.Equal(t, []string{"outage"}, h.member("dlq").receivedIDs())
		})
	})
}

// A hung member: the attempt ends at attempt_timeout and fails over; a
// caller's own sooner deadline is respected too and does not charge the
// breaker.
func TestHungMember(t *testing.T) {
	forEachSignalParallel(t, func(t *testing.T, sig signalCase) {
		t.Run("attempt_timeout", func(t *testing.T) {
			h := newHarness(t, sig, strings.Replace(twoMembers, "attempt_timeout: 2s", "attempt_timeout: 200ms", 1))
			h.waitReady()
			h.member("primary").always(hang())
			began := time.Now()
			require.NoError(t, h.send("h1"))
			assert.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "the hung attempt ended at its deadline")
			assert.Equal(t, []string{"h1"}, h.member("dlq").receivedIDs())
			c := h.member("primary").callList()[0]
			require.True(t, c.hasDeadline, "the attempt has a deadline")
			// Set when the attempt began, between the send and the member's
			// call: attempt_timeout after a moment in [began, c.at].
			assert.False(t, c.deadline.Before(began.Add(200*time.Millisecond)), "deadline %v is sooner than attempt_timeout", c.deadline)
			assert.False(t, c.deadline.After(c.at.Add(200*time.Millisecond)), "deadline %v is later than attempt_timeout", c.deadline)
			assert.Equal(t, []string{"transient:timeout"}, h.member("dlq").callList()[0].md[dlqmeta.KeyReason])
			assert.EqualValues(t, 1, h.sum("failover_group_attempts", memberAttr("testmember/primary"), outcomeAttr("transient_error")))
		})
		t.Run("caller_deadline_is_shared", func(t *testing.T) {
			// The caller's deadline is shorter than attempt_timeout for
			// each member: each member still to try gets an equal share,
			// so a hung primary leaves time for the DLQ, and is charged.
			h := newHarness(t, sig, twoMembers) // attempt_timeout 2s
			h.waitReady()
			h.member("primary").always(hang())
			ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
			defer cancel()
			callerDeadline, _ := ctx.Deadline()
			require.NoError(t, h.sendCtx(ctx, "c"), "the DLQ took it within the caller's deadline")
			assert.Equal(t, []string{"c"}, h.member("dlq").receivedIDs())
			c := h.member("primary").callList()[0]
			require.True(t, c.hasDeadline)
			assert.True(t, c.deadline.Before(callerDeadline), "the primary got a share of the caller's time, not all of it")
			assert.EqualValues(t, 1, h.sum("failover_group_attempts", memberAttr("testmember/primary"), outcomeAttr("transient_error")), "charged: it hung for its whole share")
		})
		t.Run("caller_gives_up", func(t *testing.T) {
			// Both members hang: the last one's time is the caller's own,
			// and the caller giving up is not that member's fault.
			h := newHarness(t, sig, twoMembers)
			h.waitReady()
			h.member("primary").always(hang())
			h.member("dlq").always(hang())
			for i := range 3 {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				callerDeadline, _ := ctx.Deadline()
				err := h.sendCtx(ctx, fmt.Sprintf("c%d", i))
				cancel()
				require.Error(t, err)
				c := h.member("dlq").callList()[i]
				require.True(t, c.hasDeadline)
				assert.Equal(t, callerDeadline, c.deadline, "the last member gets what is left of the caller's time")
				assert.Contains(t, err.Error(), "members[1] testmember/dlq: transient:timeout")
				assert.False(t, consumererror.IsPermanent(err))
			}
			assert.Equal(t, stateClosed, h.breaker(1).state(), "the caller giving up is not the last member's fault")
			assert.Equal(t, stateOpen, h.breaker(0).state(), "the primary hung for its whole share three times")
		})
	})
}

// Every member failed: one error upstream naming each member's failure.
func TestAllMembersFailed(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/primary:
  - testmember/second:
  - testmember/dlq:
circuit_breaker: {failure_threshold: 1, open_duration: 1h, max_open_duration: 1h}
`)
		h.member("primary").always(fail(errRefused))
		h.member("second").always(fail(errors.New("clickhouse: too many parts")))
		h.member("dlq").always(fail(fmt.Errorf("kafka: %w", context.DeadlineExceeded)))
		err := h.send("x", "y")
		require.Error(t, err)
		// What the client is told: each member and the class of its miss,
		// nothing of the members' own error text (addresses, brokers).
		assert.Equal(t, "failover_group/ingest: no member accepted the data: "+
			"members[0] testmember/primary: transient:connection_refused; "+
			"members[1] testmember/second: transient:error; "+
			"members[2] testmember/dlq: transient:timeout", err.Error())
		assert.False(t, consumererror.IsPermanent(err), "an outage is retryable")
		assert.NotErrorIs(t, err, errRefused, "the members' own errors (and their marks) stay out of the answer")
		assert.Equal(t, codes.Unavailable, status.Code(err), "OTLP/HTTP 503, gRPC Unavailable")
		// What the log says: every member's own error, once.
		lines := h.logLines(zapcore.WarnLevel, "No member accepted the data")
		require.Len(t, lines, 1)
		detail := lines[0].ContextMap()["error"].(string)
		assert.Contains(t, detail, "members[0] testmember/primary: dial tcp 127.0.0.1:9000: connect: connection refused")
		assert.Contains(t, detail, "members[1] testmember/second: clickhouse: too many parts")
		assert.Contains(t, detail, "members[2] testmember/dlq: kafka: context deadline exceeded")
		assert.EqualValues(t, 1, h.sum("failover_group_exhausted_batches"))
		assert.EqualValues(t, 2, h.sum("failover_group_exhausted_items"))

		// All breakers now open (failure_threshold 1): the error says so,
		// and no member is called.
		calls := h.member("primary").numCalls() + h.member("second").numCalls() + h.member("dlq").numCalls()
		err = h.send("z")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "members[0] testmember/primary: not tried: transient:breaker_open")
		assert.Contains(t, err.Error(), "members[2] testmember/dlq: not tried: transient:breaker_open")
		assert.Equal(t, calls, h.member("primary").numCalls()+h.member("second").numCalls()+h.member("dlq").numCalls())
		assert.EqualValues(t, 2, h.sum("failover_group_exhausted_batches"))
		assert.Len(t, h.logLines(zapcore.WarnLevel, "No member accepted the data"), 1, "at most one line per interval")
	})
}

// Data for a non-primary member carries the DLQ metadata; existing client
// metadata is kept.
func TestDLQMetadata(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/primary:
  - testmember/second:
  - testmember/dlq:
circuit_breaker: {failure_threshold: 1, open_duration: 1h, max_open_duration: 1h}
`)
		ctx := client.NewContext(t.Context(), client.Info{
			Metadata: client.NewMetadata(map[string][]string{"tenant": {"acme"}, "x-scope": {"a", "b"}}),
		})
		h.member("primary").always(fail(errRefused))
		h.member("second").always(fail(errBadData))
		before := time.Now()
		require.NoError(t, h.sendCtx(ctx, "m1"))
		after := time.Now()

		p := h.member("primary").callList()[0]
		assert.Equal(t, map[string][]string{"tenant": {"acme"}, "x-scope": {"a", "b"}}, p.md, "the primary gets the caller's metadata, unstamped")

		s := h.member("second").callList()[0]
		assert.Equal(t, []string{"acme"}, s.md["tenant"], "existing metadata is kept")
		assert.Equal(t, []string{"a", "b"}, s.md["x-scope"])
		assert.Equal(t, []string{"failover_group/ingest"}, s.md[dlqmeta.KeyGroup])
		assert.Equal(t, []string{"testmember/primary"}, s.md[dlqmeta.KeyFailedMember])
		assert.Equal(t, []string{"transient:connection_refused"}, s.md[dlqmeta.KeyReason])
		require.Len(t, s.md[dlqmeta.KeyTime], 1)
		ts, err := time.Parse(time.RFC3339Nano, s.md[dlqmeta.KeyTime][0])
		require.NoError(t, err)
		assert.False(t, ts.Before(before.Truncate(time.Millisecond)) || ts.After(after), "time %v within the call (millisecond precision)", ts)
		assert.Equal(t, "UTC", ts.Location().String())

		d := h.member("dlq").callList()[0]
		assert.Equal(t, []string{"testmember/second"}, d.md[dlqmeta.KeyFailedMember], "the stamp names the member that missed last")
		assert.Equal(t, []string{"permanent:clickhouse_53"}, d.md[dlqmeta.KeyReason])
		assert.Equal(t, []string{"acme"}, d.md["tenant"])
		assert.Len(t, d.md, 6)

		// The primary's breaker is now open: the stamp says so.
		require.NoError(t, h.sendCtx(t.Context(), "m2"))
		s = h.member("second").callList()[1]
		assert.Equal(t, []string{"transient:breaker_open"}, s.md[dlqmeta.KeyReason])
		assert.Len(t, s.md, 4, "only the stamp when the caller had no metadata")
	})
}

// The DLQ keys are a public contract: their names must not change.
func TestDLQKeyNames(t *testing.T) {
	assert.Equal(t, []string{
		"otelcol-failover-group", "otelcol-failover-failed-member", "otelcol-failover-reason", "otelcol-failover-time",
		"otelcol-failover-dedup-token",
	}, dlqmeta.Keys)
}

func replayedCtx() context.Context {
	return client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{
		dlqmeta.KeyGroup:        {"failover_group/ingest"},
		dlqmeta.KeyFailedMember: {"clickhouse/live"},
		dlqmeta.KeyReason:       {"transient:connection_refused"},
		"kafka.topic":           {"otlp_spans_dlq"},
	})})
}

// Loop guard: data replayed from the DLQ is never written to a
// dead-letter member (dead_letter: true; every kafka member by default),
// whatever the wiring; the call fails so that the source retries later.
func TestLoopGuard(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		t.Run("a dead-letter member", func(t *testing.T) {
			h := newHarness(t, sig, twoMembers)
			// A healthy primary takes replayed data.
			require.NoError(t, h.sendCtx(replayedCtx(), "r1"))
			assert.Equal(t, []string{"r1"}, h.member("primary").receivedIDs())

			h.member("primary").always(fail(errRefused))
			err := h.sendCtx(replayedCtx(), "r2")
			require.Error(t, err, "not parked in the DLQ again: the source must retry")
			assert.False(t, consumererror.IsPermanent(err), "transient, so the kafka receiver keeps the record uncommitted")
			assert.Contains(t, err.Error(), "members[1] testmember/dlq: not tried: transient:loop_guard")
			assert.Zero(t, h.member("dlq").numCalls())
			assert.EqualValues(t, 1, h.sum("failover_group_skipped", memberAttr("testmember/dlq"), reasonAttr("loop_guard")))

			// Ordinary data still fails over.
			require.NoError(t, h.send("ordinary"))
			assert.Equal(t, []string{"ordinary"}, h.member("dlq").receivedIDs())
		})
		t.Run("a kafka member is a dead-letter member even as primary", func(t *testing.T) {
			h := newHarness(t, sig, `
members:
  - kafka/main:
  - testmember/other:
    dead_letter: true
`)
			views := membersOf(h.exp)
			assert.True(t, views[0].deadLetter)
			assert.True(t, views[1].deadLetter)
			err := h.sendCtx(replayedCtx(), "r")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "members[0] kafka/main: not tried")
			assert.Zero(t, h.member("main").numCalls())
			assert.Zero(t, h.member("other").numCalls())
			require.NoError(t, h.send("fresh"))
			assert.Equal(t, []string{"fresh"}, h.member("main").receivedIDs())
		})
		t.Run("replayed data fails over to a second member that is not a dead letter", func(t *testing.T) {
			h := newHarness(t, sig, `
members:
  - testmember/replay:
  - testmember/standby:
  - kafka/dlq:
`)
			views := membersOf(h.exp)
			assert.False(t, views[1].deadLetter, "a second ClickHouse, say")
			h.member("replay").always(fail(errRefused))
			require.NoError(t, h.sendCtx(replayedCtx(), "r"))
			assert.Equal(t, []string{"r"}, h.member("standby").receivedIDs())
			h.member("standby").always(fail(errRefused))
			err := h.sendCtx(replayedCtx(), "r2")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "members[2] kafka/dlq: not tried: transient:loop_guard")
			assert.Zero(t, h.member("dlq").numCalls())
		})
		t.Run("data read from the group's own DLQ topic, without the stamp", func(t *testing.T) {
			h := newHarness(t, sig, `
members:
  - testmember/primary:
  - kafka/dlq:
      traces: {topic: my_spans_dlq}
      metrics: {topic: my_metrics_dlq}
      logs: {topic: my_logs_dlq}
`)
			topic := map[string]string{"traces": "my_spans_dlq", "metrics": "my_metrics_dlq", "logs": "my_logs_dlq"}[sig.name]
			fromTopic := func(name string) context.Context {
				return client.NewContext(t.Context(), client.Info{Metadata: client.NewMetadata(map[string][]string{"kafka.topic": {name}})})
			}
			h.member("primary").always(fail(errRefused))
			err := h.sendCtx(fromTopic(topic), "r")
			require.Error(t, err, "read back from this group's own DLQ topic: never written to it again")
			assert.Contains(t, err.Error(), "members[1] kafka/dlq: not tried")
			assert.Zero(t, h.member("dlq").numCalls())
			// Data read from another topic (an ingest topic) still fails over.
			require.NoError(t, h.sendCtx(fromTopic("otlp_spans"), "ingest"))
			assert.Equal(t, []string{"ingest"}, h.member("dlq").receivedIDs())
		})
		t.Run("replay group of one clickhouse-like member", func(t *testing.T) {
			h := newHarness(t, sig, `members: [{testmember/replay: {}}]`)
			assert.False(t, membersOf(h.exp)[0].deadLetter)
			require.NoError(t, h.sendCtx(replayedCtx(), "r"))
			c := h.member("replay").callList()[0]
			assert.Equal(t, []string{"otlp_spans_dlq"}, c.md["kafka.topic"], "replayed metadata passes through untouched")
			assert.Equal(t, []string{"clickhouse/live"}, c.md[dlqmeta.KeyFailedMember])
		})
	})
}

// A group of one member supervises a single exporter: lazy start,
// breaker, error classes, telemetry, and no failover.
func TestGroupOfOne(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		members := &testMembers{}
		only := members.get("only")
		only.failStart(errStartDown)
		h := newHarness(t, sig, `
members: [{testmember/only: {}}]
circuit_breaker: {failure_threshold: 2, open_duration: 1h, max_open_duration: 1h}
member_start: {initial_interval: 10ms, max_interval: 20ms}
`, withMembers(members), withClock())
		// Start did not fail although the member's did.
		err := h.send("early")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "members[0] testmember/only: not tried: transient:unavailable")
		assert.False(t, consumererror.IsPermanent(err))

		only.okStart()
		h.waitReady()
		require.NoError(t, h.send("ok"))
		assert.Equal(t, []string{"ok"}, only.receivedIDs())

		only.always(fail(errBadData))
		err = h.send("bad")
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err), "bad data is permanent upstream")

		only.always(fail(errRefused))
		for range 2 {
			err = h.send("down")
			require.Error(t, err)
			assert.False(t, consumererror.IsPermanent(err))
		}
		assert.Equal(t, stateOpen, h.breaker(0).state())
		calls := only.numCalls()
		err = h.send("skipped")
		require.ErrorContains(t, err, "transient:breaker_open")
		assert.Equal(t, calls, only.numCalls(), "open: no I/O")
		assert.Zero(t, h.sum("failover_group_failovers", memberAttr("testmember/only")), "nothing to fail over to")
		assert.EqualValues(t, 1, h.sum("failover_group_attempts", memberAttr("testmember/only"), outcomeAttr("success")))
		assert.EqualValues(t, 5, h.sum("failover_group_exhausted_batches"))
	})
}

// A caller whose context is already done: nothing is attempted.
func TestCallerContextAlreadyDone(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.sendCtx(ctx, "x")
	require.ErrorContains(t, err, "members[0] testmember/primary: not tried: transient:canceled")
	assert.Contains(t, err.Error(), "members[1] testmember/dlq: not tried: transient:canceled")
	assert.Zero(t, h.member("primary").numCalls())
	assert.Zero(t, h.member("dlq").numCalls())
	assert.Equal(t, stateClosed, h.breaker(0).state())
}

// The group's own exporterhelper (sending_queue / retry_on_failure) sits in
// front of the failover decision: with retry on, a batch every member
// refused is retried by the group until a member takes it.
func TestGroupOwnRetry(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarnessNoStart(t, sig, `
members: [{testmember/primary: {}}, {testmember/dlq: {}}]
circuit_breaker: {failure_threshold: 100}
retry_on_failure: {enabled: true, initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 10s}
`)
		h.start()
		n := 0
		h.member("primary").always(fail(errRefused))
		h.member("dlq").set(func(context.Context, []string) result {
			n++
			if n < 3 {
				return fail(errors.New("kafka: broker down"))
			}
			return succeed()
		})
		require.NoError(t, h.send("r1"))
		assert.Equal(t, 3, h.member("dlq").numCalls(), "the group retried the whole decision")
		assert.Equal(t, 3, h.member("primary").numCalls())
	})
}

// The stamp of data without client info of its own is reused within a
// millisecond; data with metadata, an address or auth data is never given a
// cached stamp (which would carry another caller's info).
func TestStampCacheKeepsCallerInfo(t *testing.T) {
	h := newHarness(t, allSignals[0], twoMembers)
	g := h.exp.(tracesGroup).group
	last := miss{member: "testmember/primary", reason: "transient:breaker_open", stamps: &g.members[0].stamps}

	bare1 := g.stamp(t.Context(), last, time.Now(), dedupToken{})
	bare2 := g.stamp(t.Context(), last, time.Now(), dedupToken{})
	for _, ctx := range []context.Context{bare1, bare2} {
		md := client.FromContext(ctx).Metadata
		assert.Equal(t, []string{"failover_group/ingest"}, md.Get(dlqmeta.KeyGroup))
		assert.Equal(t, []string{"transient:breaker_open"}, md.Get(dlqmeta.KeyReason))
	}

	addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 4317}
	withAddr := g.stamp(client.NewContext(t.Context(), client.Info{Addr: addr}), last, time.Now(), dedupToken{})
	assert.Equal(t, addr, client.FromContext(withAddr).Addr, "the caller's address is kept")
	assert.Equal(t, []string{"testmember/primary"}, client.FromContext(withAddr).Metadata.Get(dlqmeta.KeyFailedMember))

	withMD := g.stamp(client.NewContext(t.Context(), client.Info{
		Metadata: client.NewMetadata(map[string][]string{"tenant": {"acme"}}),
	}), last, time.Now(), dedupToken{})
	assert.Equal(t, []string{"acme"}, client.FromContext(withMD).Metadata.Get("tenant"))

	again := g.stamp(t.Context(), last, time.Now(), dedupToken{})
	assert.Nil(t, client.FromContext(again).Addr, "a cached stamp never carries another caller's address")
	assert.Empty(t, client.FromContext(again).Metadata.Get("tenant"))

	other := g.stamp(t.Context(), miss{member: "testmember/primary", reason: "transient:timeout", stamps: last.stamps}, time.Now(), dedupToken{})
	assert.Equal(t, []string{"transient:timeout"}, client.FromContext(other).Metadata.Get(dlqmeta.KeyReason), "another reason is not served from the cache")

	// Each batch has a token of its own: a stamp with a token is never
	// served from the cache, nor does it fill it.
	tok1, tok2 := newDedupToken(), newDedupToken()
	withTok1 := g.stamp(t.Context(), last, time.Now(), tok1)
	withTok2 := g.stamp(t.Context(), last, time.Now(), tok2)
	assert.Equal(t, []string{tok1.String()}, client.FromContext(withTok1).Metadata.Get(dlqmeta.KeyDedupToken))
	assert.Equal(t, []string{tok2.String()}, client.FromContext(withTok2).Metadata.Get(dlqmeta.KeyDedupToken))
	assert.NotEqual(t, tok1.String(), tok2.String())
	assert.Empty(t, client.FromContext(g.stamp(t.Context(), last, time.Now(), dedupToken{})).Metadata.Get(dlqmeta.KeyDedupToken))
}
