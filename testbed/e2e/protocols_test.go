// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The clickhouse members speak either of ClickHouse's protocols: the HTTP
// interface (endpoint http://HOST:8123) or the native TCP protocol
// (tcp://HOST:9000). devclickhouse serves both from one engine, and the
// scenarios that depend on how a failing ClickHouse shows up to the members
// (stopped, hung, down at start, refusing data) run over each.
//
// What differs between the two, as the group sees it (clickhouse-go
// v2.46.0, contrib clickhouse exporter v0.155.0):
//   - ClickHouse stopped: over HTTP every attempt dials and is refused.
//     Over native the server closed the pool's idle connections when it
//     stopped; clickhouse-go checks a pooled connection before it uses it
//     and drops a closed one, so the attempt dials too and is refused: the
//     same transient:connection_refused on both.
//   - ClickHouse hung (SIGSTOP, the kernel still accepts connections): an
//     HTTP attempt ends at its context's deadline (attempt_timeout). Over
//     native, a query on a pooled connection ends at the context's deadline
//     too (clickhouse-go sets it on the socket), but a new connection's
//     handshake is bounded by dial_timeout alone (default 30 s), not by the
//     context: once the first attempts have closed their timed-out
//     connections, every later attempt (a half-open breaker's trial batch)
//     dials again and, without dial_timeout, holds its clients about 28 s
//     instead of 5 s (measured with a 30 s hang under load: transient
//     attempts of 5.0 s each over HTTP, 5 s then about 28 s over native).
//     The native endpoint therefore sets dial_timeout to attempt_timeout
//     (stack.NativeDialTimeout); with it both protocols measured 5.0 s per
//     failed attempt. Every DLQ record's reason is the same either way
//     (transient:timeout, then transient:breaker_open).
//   - A refused insert: over HTTP the exception is the error body's text
//     ("Code: 469. DB::Exception: ..."), over native a *proto.Exception
//     with the code; errclass reads both, the verdict and its reason
//     (permanent:clickhouse_469) are the same.

// forEachProtocol runs test as a subtest per protocol, HTTP first: one
// scenario, both protocols, not a copy of the test per protocol.
func forEachProtocol(t *testing.T, test func(t *testing.T, protocol string)) {
	t.Helper()
	for _, protocol := range stack.Protocols {
		t.Run(protocol, func(t *testing.T) { test(t, protocol) })
	}
}

// nativeConnections counts the established TCP connections to the native
// port of devclickhouse, from the server's side (/proc/net/tcp of this
// network namespace: local address the native port, state 01). The tests
// query ClickHouse over HTTP only, so any are the collector's.
func (e *env) nativeConnections() (int, error) {
	_, port, err := net.SplitHostPort(e.ch.NativeAddr)
	if err != nil {
		return 0, err
	}
	var p int
	if _, err = fmt.Sscan(port, &p); err != nil {
		return 0, err
	}
	local := fmt.Sprintf("0100007F:%04X", p) // 127.0.0.1:port
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == local && f[3] == "01" {
			n++
		}
	}
	return n, nil
}

// dlqReasons counts the DLQ records of every topic by their reason header
// (dlqmeta.KeyReason), e.g. {"transient:connection_refused": 3}.
func (e *env) dlqReasons(ctx context.Context) (map[string]int, error) {
	reasons := map[string]int{}
	for _, topic := range stack.DLQTopics {
		recs, err := e.kafka.ReadAll(ctx, topic)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			reasons[recordHeaders(r)[dlqmeta.KeyReason]]++
		}
	}
	return reasons, nil
}

// requireTransientReasons fails the test unless every DLQ record says its
// data was parked for a transient reason: an outage or a hang never counts
// as bad data, over either protocol.
func requireTransientReasons(t *testing.T, reasons map[string]int) {
	t.Helper()
	for _, reason := range slices.Sorted(maps.Keys(reasons)) {
		if !strings.HasPrefix(reason, "transient:") {
			t.Errorf("%d DLQ records parked with reason %q, want transient reasons only: %v", reasons[reason], reason, reasons)
		}
	}
}

// The failover group classifies what a real ClickHouse server says alike
// over HTTP and the native protocol, for both of its groups: a batch with
// one item that a CHECK constraint refuses (exception 469) is isolated, the
// good items land (the live attempt counts as partial), the bad one is
// parked with reason permanent:clickhouse_469 by clickhouse/live and then
// poisoned with the same reason by clickhouse/replay (permanent_error, not
// transient_error); with ClickHouse stopped a batch is parked with reason
// transient:connection_refused (transient_error) and replayed once
// ClickHouse is back. Nothing is lost.
func TestClickHouseErrorsClassifiedAlikeOverBothProtocols(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		e := newEnv(t, envOptions{protocol: protocol})
		e.warmUp()
		// The members really speak the protocol under test.
		conns, err := e.nativeConnections()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d connections to the native port %s after the warm-up", protocol, conns, e.ch.NativeAddr)
		if (protocol == stack.ProtocolNative) != (conns > 0) {
			t.Fatalf("%s: %d connections to the native port after the warm-up", protocol, conns)
		}
		e.waitReplayConsumers()
		e.addPoisonConstraints(t)

		// Bad data, ClickHouse up: item 3 of each batch is refused.
		const size, bad = 10, 3
		badRun := e.run + "-bad"
		for _, s := range loadgen.AllSignals {
			data := batchOf(s, badRun, size, 0, 0)
			markPoison(data, bad)
			if a := e.exportHTTP(t, s, data); !a.ok() {
				t.Fatalf("%s: batch with one bad item: %v", s, a)
			}
		}
		e.requireAllOf(badRun, size-1, 60*time.Second)
		for i, s := range loadgen.AllSignals {
			poison := e.poisonRecords(t, stack.PoisonTopics[i], 1)
			items, badItems := countItems(t, s, poison[0].Value)
			h := recordHeaders(poison[0])
			if items != 1 || badItems != 1 {
				t.Errorf("%s: poison record of %d items, %d bad; want the bad item alone", s, items, badItems)
			}
			if got := h[dlqmeta.KeyPoisonReason]; got != "permanent:clickhouse_469" {
				t.Errorf("%s: poison reason %q, want permanent:clickhouse_469 (the replay's insert refused by the CHECK constraint)", s, got)
			}
			// The poison record keeps the DLQ stamp of the live attempt.
			if got := h[dlqmeta.KeyReason]; got != "permanent:clickhouse_469" || h[dlqmeta.KeyFailedMember] != liveMember {
				t.Errorf("%s: parked by %q with reason %q, want %s with permanent:clickhouse_469", s, h[dlqmeta.KeyFailedMember], got, liveMember)
			}
		}
		// The exception's text differs between the protocols (the body of
		// an HTTP 500 against clickhouse-go's rendering of the native
		// Exception packet); its code, and so the verdict, does not.
		for line := range strings.SplitSeq(e.collectorLog(), "\n") {
			if strings.Contains(line, "No member accepted the data") && strings.Contains(line, "469") {
				// HTTP: `… insert failed: batch sendStreamQuery: [HTTP 500]
				// response body: "Code: 469. DB::Exception: Constraint …"`;
				// native: `… insert failed: code: 469, message: Constraint …`.
				t.Logf("%s: the replay group logs the refusal as: %s", protocol, logSummary(line))
				break
			}
		}
		// The live attempt wrote the good items (isolation) and counts as
		// partial; the replay of the bad item alone as permanent_error.
		if n := e.metric("otelcol_failover_group_attempts", "member="+liveMember, "outcome=partial"); n == 0 {
			t.Errorf("%s: no attempt counted partial", liveMember)
		}
		if n := e.metric("otelcol_failover_group_attempts", "member="+replayMember, "outcome=permanent_error"); n == 0 {
			t.Errorf("%s: no attempt counted permanent_error", replayMember)
		}
		if n := e.metric("otelcol_failover_group_attempts", "member="+liveMember, "outcome=transient_error"); n != 0 {
			t.Errorf("%s: %v attempts counted transient_error with ClickHouse up: bad data was taken for an outage", liveMember, n)
		}
		// The bad data's records are drained (replayed, then poisoned)
		// before the outage, so that the reasons read below are the
		// outage's alone.
		e.waitDrained(60 * time.Second)
		before, err := e.dlqReasons(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 || before["permanent:clickhouse_469"] == 0 {
			t.Errorf("DLQ records of the bad items by reason: %v, want permanent:clickhouse_469 only", before)
		}

		// Outage: ClickHouse stopped, one batch per signal parked.
		e.stopClickHouse()
		outageRun := e.run + "-outage"
		r := e.loadOpts(t.Context(), loadgen.Options{Run: outageRun, Batches: 1, BatchSize: size, RetryFor: time.Minute})
		requireAccepted(t, r, 1)
		after, err := e.dlqReasons(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		outage := map[string]int{}
		for reason, n := range after {
			if n -= before[reason]; n > 0 {
				outage[reason] = n
			}
		}
		t.Logf("%s: DLQ records parked during the outage by reason: %v", protocol, outage)
		if len(outage) == 0 {
			t.Fatalf("nothing parked during the outage: %v", after)
		}
		requireTransientReasons(t, outage)
		if len(outage) != 1 || outage["transient:connection_refused"] == 0 {
			t.Errorf("%s: DLQ records parked during the outage by reason: %v, want transient:connection_refused only, as over HTTP", protocol, outage)
		}
		if n := e.metric("otelcol_failover_group_attempts", "member="+liveMember, "outcome=transient_error"); n == 0 {
			t.Errorf("%s: no attempt counted transient_error during the outage", liveMember)
		}
		e.startClickHouse()
		e.requireAllOf(outageRun, size, 90*time.Second)
		e.waitDrained(60 * time.Second)
	})
}
