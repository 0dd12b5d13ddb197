// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// The double tokenmember takes tokens as clickhouse members do (its calls
// record the token their context carries as ClickHouse insert settings);
// testmember does not.

//nolint:gosec // G101: a test config, not a credential
const groupWithTokens = `
members:
  - tokenmember/live:
  - kafka/dlq:
`

// generatedToken is the shape of a token this process gives: 96 random
// bits in hex, then a base-36 sequence number.
var generatedToken = regexp.MustCompile(`^[0-9a-f]{24}-[0-9a-z]+$`)

// replayedCtx is the context of data read back from the DLQ: the stamp, and
// the token the record was parked with (none when token is "").
func parkedCtx(ctx context.Context, token string) context.Context {
	md := map[string][]string{dlqmeta.KeyGroup: {"failover_group/ingest"}}
	if token != "" {
		md[dlqmeta.KeyDedupToken] = []string{token}
	}
	return client.NewContext(ctx, client.Info{Metadata: client.NewMetadata(md)})
}

// A batch gets one token when it enters the group: the clickhouse-like
// member's attempt carries it, and when that member fails, the DLQ record
// carries the same token as a header. Each batch has its own.
func TestTokenFollowsTheBatchIntoTheDLQ(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, groupWithTokens)
		h.waitReady()
		h.member("live").always(fail(errRefused))
		require.NoError(t, h.send("a"))
		require.NoError(t, h.send("b"))

		live, dlq := h.member("live").callList(), h.member("dlq").callList()
		require.Len(t, live, 2)
		require.Len(t, dlq, 2)
		for i := range live {
			assert.Regexp(t, generatedToken, live[i].token)
			assert.Equal(t, []string{live[i].token}, dlq[i].md[dlqmeta.KeyDedupToken], "the record keeps the token the live insert carried")
			assert.Empty(t, dlq[i].token, "a kafka member takes the token as a header only")
		}
		assert.NotEqual(t, live[0].token, live[1].token, "one token per batch")
	})
}

// Replayed data keeps the token its record was parked with, on every
// replay, so ClickHouse drops a second copy. Data parked without a token
// (an older version) gets none: ClickHouse then deduplicates by content,
// which a new token per replay would defeat.
func TestReplayedDataKeepsItsToken(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - tokenmember/replay:
`)
		h.waitReady()
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "parked-token-1"), "r"))
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "parked-token-1"), "r"))
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), ""), "old"))
		calls := h.member("replay").callList()
		require.Len(t, calls, 3)
		assert.Equal(t, "parked-token-1", calls[0].token)
		assert.Equal(t, "parked-token-1", calls[1].token, "the same on every replay")
		assert.Empty(t, calls[2].token, "no token of its own for data parked without one")
	})
}

// contentToken is the token a part of the batch with token base gets:
// base, then the hash of the part's OTLP encoding.
func contentToken(t *testing.T, base string, data any) string {
	t.Helper()
	var b []byte
	var err error
	switch d := data.(type) {
	case ptrace.Traces:
		b, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(d)
	case pmetric.Metrics:
		b, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(d)
	case plog.Logs:
		b, err = (&plog.ProtoMarshaler{}).MarshalLogs(d)
	default:
		t.Fatalf("not a batch: %T", data)
	}
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return base + "~" + hex.EncodeToString(sum[:16])
}

// oneTokenOneContent checks the invariant that makes tokens safe: rows
// taken under a token are the only rows any call carries under it
// (ClickHouse would drop other rows as a copy). A token may be tried with
// other rows before anything was taken under it: the batch's own token,
// when a refused subset comes back under it, was refused as a whole.
func oneTokenOneContent(t *testing.T, calls []testCall, tokenOf func(testCall) string, taken func(testCall) bool) {
	t.Helper()
	takenRows := map[string]string{}
	for i := range calls {
		c := &calls[i]
		if tok := tokenOf(*c); tok != "" && taken(*c) {
			rows := strings.Join(c.ids, ",")
			if prev, ok := takenRows[tok]; ok && prev != rows {
				t.Errorf("token %s took [%s] and [%s]", tok, prev, rows)
			}
			takenRows[tok] = rows
		}
	}
	for i := range calls {
		c := &calls[i]
		tok := tokenOf(*c)
		if rows, ok := takenRows[tok]; ok && rows != strings.Join(c.ids, ",") {
			t.Errorf("token %s took [%s] and carried [%s] in another call", tok, rows, strings.Join(c.ids, ","))
		}
	}
}

func headerToken(c testCall) string {
	if v := c.md[dlqmeta.KeyDedupToken]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// A batch split to fit the DLQ's records is parked in parts, each with the
// batch's token and the hash of its content: never the batch's own token
// (ClickHouse would drop every part after the first as a copy), the same
// for the same rows, and different for different rows however the batch is
// cut: here the cuts move, because the records' headers differ in size.
func TestPartsGetContentTokens(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - kafka/poison:
      producer: {max_message_bytes: 2000}
      include_metadata_keys: [padding]
    dead_letter: false
`)
		h.waitReady()
		items := ids("big", 200) // about 10 kB encoded
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "T"), items...))
		first := len(h.member("poison").callList())
		require.Greater(t, first, 3, "split into several records")
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "T"), items...))
		padded := client.NewContext(t.Context(), client.Info{Metadata: client.NewMetadata(map[string][]string{
			dlqmeta.KeyGroup: {"failover_group/ingest"}, dlqmeta.KeyDedupToken: {"T"}, "padding": {strings.Repeat("p", 600)},
		})})
		require.NoError(t, h.sendCtx(padded, items...))

		calls := h.member("poison").callList()
		for _, c := range calls {
			assert.Equal(t, contentToken(t, "T", c.data), headerToken(c))
		}
		assert.Equal(t, headerToken(calls[0]), headerToken(calls[first]), "the same rows: the same token")
		oneTokenOneContent(t, calls, headerToken, func(testCall) bool { return true })
	})
}

// A batch the clickhouse-like member refuses as bad data is halved to find
// the bad items: each half is inserted with the batch's token and its
// content's hash, and what is refused moves on with a token of its own.
// When the refused part comes back under the batch's token (a stalled
// record's refused part, a retried failed part), no token stands for two
// sets of rows.
func TestIsolatedHalvesGetContentTokens(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, groupWithTokens)
		h.waitReady()
		h.member("live").set(func(_ context.Context, ids []string) result {
			if slices.Contains(ids, "bad") {
				return fail(errBadData)
			}
			return succeed()
		})
		require.NoError(t, h.send("a", "b", "c", "bad"))
		calls := h.member("live").callList()
		require.Len(t, calls, 5, "the batch, its halves, the refused half's halves")
		whole := calls[0].token
		assert.Regexp(t, generatedToken, whole)
		for _, c := range calls[1:] {
			assert.Equal(t, contentToken(t, whole, c.data), c.token)
		}
		assert.Equal(t, []string{"a", "b", "c"}, h.member("live").acceptedIDs())

		dlq := h.member("dlq").callList()
		require.Len(t, dlq, 1)
		assert.Equal(t, []string{"bad"}, dlq[0].ids)
		assert.Equal(t, contentToken(t, whole, dlq[0].data), headerToken(dlq[0]), "what member 0 did not take: not the batch's token")

		// The same rows come back, and subsets of them, under a token of
		// their own (as replayed data; the refused item is then returned,
		// the DLQ member never takes replayed data).
		for _, batch := range [][]string{{"a", "b", "c", "bad"}, {"c", "bad"}, {"b", "c", "bad"}} {
			require.Error(t, h.sendCtx(parkedCtx(t.Context(), "R"), batch...))
		}
		oneTokenOneContent(t, h.member("live").callList(), func(c testCall) string { return c.token },
			func(c testCall) bool { return !slices.Contains(c.ids, "bad") })
	})
}

// With tokens off, and in groups without a member that takes them, nothing
// carries a token.
func TestNoTokens(t *testing.T) {
	for name, doc := range map[string]string{
		"tokens off": groupWithTokens + "deduplication: {tokens: false}\n",
		"no clickhouse member": `
members:
  - testmember/live:
  - kafka/dlq:
`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, allSignals[0], doc)
			h.waitReady()
			h.member("live").always(fail(errRefused))
			require.NoError(t, h.send("a"))
			assert.Empty(t, h.member("live").callList()[0].token)
			assert.NotContains(t, h.member("dlq").callList()[0].md, dlqmeta.KeyDedupToken)
		})
	}
}

// Tokens are written into reused buffers: concurrent batches each carry
// their own token, never another's (run with -race).
func TestConcurrentBatchesCarryTheirOwnTokens(t *testing.T) {
	h := newHarness(t, allSignals[0], groupWithTokens)
	h.waitReady()
	var mu sync.Mutex
	seen := map[string]string{} // token -> item
	h.member("live").set(func(ctx context.Context, ids []string) result {
		tok := tokenIn(ctx)
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := seen[tok]; dup {
			t.Errorf("token %s given to %v and %s", tok, ids, prev)
		}
		seen[tok] = ids[0]
		return succeed()
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				assert.NoError(t, h.send("w"+strconv.Itoa(w)+"-"+strconv.Itoa(i)))
			}
		})
	}
	wg.Wait()
	assert.Len(t, seen, 8*200)
	for _, c := range h.member("live").callList() {
		assert.Equal(t, c.ids[0], seen[c.token], "the token recorded by the call is the one the member saw")
	}
}

func TestDedupTokenText(t *testing.T) {
	assert.Empty(t, dedupToken{}.String())
	g := newDedupToken()
	assert.Regexp(t, generatedToken, g.String())
	assert.True(t, strings.HasPrefix(g.String(), tokenPrefix+"-"))
	assert.Equal(t, "given", dedupToken{given: "given"}.String())
	assert.Equal(t, "given~ab", dedupToken{given: "given", part: "~ab"}.String())
	assert.Equal(t, g.String()+"~ab", dedupToken{seq: g.seq, part: "~ab"}.String())
	assert.Equal(t, g.String(), string(g.appendTo(nil)))

	grp := &group[ptrace.Traces]{sig: tracesSignal}
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	assert.Equal(t, dedupToken{}, grp.partToken(dedupToken{}, td), "no token, no part token")
	part := grp.partToken(g, td)
	assert.Equal(t, contentToken(t, g.String(), td), part.String())
	assert.Equal(t, part, grp.partToken(part, td), "a part of a part: the batch's token and the content's hash")
}

// A group whose own queue batches merges and splits what it is given: a
// token data came with no longer stands for the data pushed, so it is not
// used (the loop guard converter refuses such a group in a replay pipeline;
// this is the runtime side). Fresh data still gets tokens, after batching.
func TestBatchingGroupIgnoresGivenTokens(t *testing.T) {
	h := newHarness(t, allSignals[0], `
members:
  - tokenmember/replay:
sending_queue:
  wait_for_result: true
  batch:
    flush_timeout: 10ms
    partition: {metadata_keys: [otelcol-failover-dedup-token]}
`)
	// The group is inside exporterhelper (its queue): the first batch waits
	// for the member's first start.
	require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "T"), "r"))
	require.NoError(t, h.send("fresh"))
	calls := h.member("replay").callList()
	require.Len(t, calls, 2)
	for _, c := range calls {
		assert.NotEqual(t, "T", c.token, "a given token is not used after batching")
		if c.ids[0] == "fresh" {
			assert.Regexp(t, generatedToken, c.token, "fresh data gets a token after batching")
		} else {
			assert.Empty(t, c.token)
		}
	}
}

// A clickhouse member with a sending_queue of its own (wait_for_result) gets
// no token: its queue may split a batch into several inserts under one
// context. Without a queue it takes them.
func TestMemberWithOwnQueueTakesNoTokens(t *testing.T) {
	h := newHarnessNoStart(t, allSignals[0], fmt.Sprintf(`
members:
  - clickhouse/queued:
      endpoint: http://%s
      create_schema: false
      sending_queue: {enabled: true, wait_for_result: true}
  - clickhouse/plain:
      endpoint: http://%s
      create_schema: false
`, closedPort(t), closedPort(t)), withoutProbes())
	members := membersOf(h.exp)
	assert.False(t, members[0].takesTokens, "own queue")
	assert.True(t, members[1].takesTokens)
}

// The clickhouse exporter writes a metrics batch in one insert per metric
// type: a refusal of a batch of several types may come after other tables
// took their part, so the batch is not halved (its halves would write those
// parts again under other tokens); it moves on whole. A batch of one type is
// one insert, and is halved like traces and logs.
func TestSeveralInsertsAreNotIsolated(t *testing.T) {
	refuseBad := func(_ context.Context, ids []string) result {
		if slices.Contains(ids, "bad") {
			return fail(errBadData)
		}
		return succeed()
	}
	const doc = `
members:
  - severalmember/live:
  - testmember/dlq:
`
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, doc)
		h.waitReady()
		h.member("live").set(refuseBad)
		require.NoError(t, h.send("a", "b", "c", "bad"))
		assert.Len(t, h.member("live").callList(), 5, "one insert: halved")
		assert.Equal(t, []string{"bad"}, h.member("dlq").receivedIDs())
	})
	t.Run("metrics of two types", func(t *testing.T) {
		h := newHarness(t, allSignals[1], doc)
		h.waitReady()
		h.member("live").set(refuseBad)
		md := makeMetrics("a", "b", "c", "bad")
		sum := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
		sum.SetName("test.sum")
		sum.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(1)
		require.NoError(t, h.exp.(metricsGroup).ConsumeMetrics(t.Context(), md))
		assert.Len(t, h.member("live").callList(), 1, "two inserts: not halved")
		assert.Equal(t, []string{"a", "b", "c", "bad"}, h.member("dlq").receivedIDs(), "moves on whole")
	})
}

// A real clickhouse member is such a member for metrics.
func TestClickHouseMetricsAreSeveralInserts(t *testing.T) {
	for _, sig := range allSignals {
		h := newHarnessNoStart(t, sig, fmt.Sprintf(`
members:
  - clickhouse/live: {endpoint: "http://%s", create_schema: false}
`, closedPort(t)), withoutProbes())
		assert.Equal(t, sig.name == "metrics", membersOf(h.exp)[0].writesSeveral, sig.name)
	}
}
