// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"

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

// A batch split to fit the DLQ's records is parked in parts, each with a
// token derived from the batch's: never the batch's own (ClickHouse would
// drop every part after the first as a copy), and the same for the same
// batch split the same way (a poison group re-parking a replayed batch).
func TestPartsGetDerivedTokens(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - kafka/poison:
      producer: {max_message_bytes: 2000}
    dead_letter: false
`)
		h.waitReady()
		items := ids("big", 200) // about 10 kB encoded
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "T"), items...))
		first := h.member("poison").callList()
		require.Greater(t, len(first), 3, "split into several records")
		require.NoError(t, h.sendCtx(parkedCtx(t.Context(), "T"), items...))
		second := h.member("poison").callList()[len(first):]

		var tokens []string
		for i, c := range first {
			tok := c.md[dlqmeta.KeyDedupToken]
			require.Len(t, tok, 1)
			assert.Equal(t, "T.p"+strconv.Itoa(i), tok[0])
			tokens = append(tokens, tok[0])
		}
		require.Len(t, second, len(first))
		for i, c := range second {
			assert.Equal(t, []string{tokens[i]}, c.md[dlqmeta.KeyDedupToken], "the same batch cut the same way: the same tokens")
		}
	})
}

// A batch the clickhouse-like member refuses as bad data is halved to find
// the bad items: each half is inserted with a token derived from the
// batch's, and what is refused moves on with a token of its own.
func TestIsolatedHalvesGetDerivedTokens(t *testing.T) {
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
		assert.Equal(t, []string{whole + ".h0", whole + ".h1", whole + ".h1.h0", whole + ".h1.h1"},
			[]string{calls[1].token, calls[2].token, calls[3].token, calls[4].token})
		assert.Equal(t, []string{"a", "b", "c"}, h.member("live").acceptedIDs())

		dlq := h.member("dlq").callList()
		require.Len(t, dlq, 1)
		assert.Equal(t, []string{"bad"}, dlq[0].ids)
		assert.Equal(t, []string{whole + ".r0"}, dlq[0].md[dlqmeta.KeyDedupToken], "what member 0 did not take: not the batch's token")
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
	assert.Empty(t, dedupToken{}.derive(derivePart, 3).String(), "no token, no derived token")
	g := newDedupToken()
	assert.Regexp(t, generatedToken, g.String())
	assert.True(t, strings.HasPrefix(g.String(), tokenPrefix+"-"))
	assert.Equal(t, g.String()+".p2.h1", g.derive(derivePart, 2).derive(deriveHalf, 1).String())
	assert.Equal(t, "given", dedupToken{given: "given"}.String())
	assert.Equal(t, "given.r1", dedupToken{given: "given"}.derive(deriveRest, 1).String())
	assert.Equal(t, g.String(), string(g.appendTo(nil)))
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
