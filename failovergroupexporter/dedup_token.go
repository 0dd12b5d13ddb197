// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/collector/client"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// dedupToken is a batch's deduplication token: the
// insert_deduplication_token of its ClickHouse inserts. It is given once,
// when the batch enters the group, and stays with the batch: every member's
// attempt, the DLQ record's header (dlqmeta.KeyDedupToken) and every replay
// of that record carry it, so ClickHouse drops a second copy of an insert it
// already committed (a live insert the group gave up on that committed
// later, a record replayed again after a crash).
//
// A part of a batch sent on its own (a record-sized part, a half while
// isolating refused items, what a member did not take) carries the batch's
// token with the hash of the part's content: the same rows under the same
// batch always get the same token, and different rows never share one,
// however the batch is cut (the cut depends on timing, budgets and record
// headers, and a subset may come back under the batch's token: a stalled
// record's refused part, a retried failed part). A part never carries its
// batch's own token, which would make ClickHouse drop it as a copy of the
// whole.
//
// A generated token is formatted only when it is needed as text (a DLQ
// stamp): the healthy path writes it into a reused buffer (tokenSlot)
// and allocates only the call's own small context.
type dedupToken struct {
	// given is a token the data came with (a replayed record's header);
	// empty for one this process generated.
	given string
	// seq numbers a generated token within this process.
	seq uint64
	// part is the hash of a part's content (partSeparator, then hex), ""
	// for a whole batch.
	part string
}

// partSeparator separates a batch's token from a part's content hash. A
// generated token has hex and base-36 digits and one '-'.
const partSeparator = "~"

// tokenPrefix makes this process's generated tokens unique among
// collectors and restarts: 96 random bits, then a sequence number.
var tokenPrefix = newTokenPrefix()

func newTokenPrefix() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// tokenSeq numbers the tokens of all groups of this process.
var tokenSeq atomic.Uint64

func newDedupToken() dedupToken { return dedupToken{seq: tokenSeq.Add(1)} }

// set reports whether the batch has a token.
func (t dedupToken) set() bool { return t.given != "" || t.seq != 0 }

// appendTo appends the token's text to b.
func (t dedupToken) appendTo(b []byte) []byte {
	if t.given != "" {
		b = append(b, t.given...)
	} else {
		b = append(b, tokenPrefix...)
		b = append(b, '-')
		b = strconv.AppendUint(b, t.seq, 36)
	}
	return append(b, t.part...)
}

// String returns the token's text; "" when the batch has none.
func (t dedupToken) String() string {
	if !t.set() {
		return ""
	}
	if t.part == "" && t.given != "" {
		return t.given
	}
	return string(t.appendTo(make([]byte, 0, len(tokenPrefix)+16+len(t.part))))
}

// partToken returns the token of data, a part of the batch whose token is
// tok: tok with the hash of data's content (OTLP protobuf, which is
// deterministic for the same pdata). Hashing costs one marshaling of the
// part, only on the paths that cut batches (failures, oversized records).
// A part that cannot be encoded gets no token (ClickHouse then deduplicates
// it by content), never its batch's.
func (g *group[T]) partToken(tok dedupToken, data T) dedupToken {
	if !tok.set() {
		return tok
	}
	b, err := g.sig.marshal(data)
	if err != nil {
		return dedupToken{}
	}
	sum := sha256.Sum256(b)
	tok.part = partSeparator + hex.EncodeToString(sum[:16])
	return tok
}

// giveToken sets the token of a batch entering the group: the one its
// client metadata carries (a replayed record's header: the token it was
// parked with), else a new one when the group gives tokens. Data replayed
// without a token (parked by a version without tokens) gets none: ClickHouse
// then deduplicates its inserts by their content, which is as stable as the
// record.
//
// A group without a member that takes tokens (a poison group of kafka
// members) still keeps the token data comes with, so that the parts it
// splits a batch into get tokens of their own.
//
// stale reports a token the data came with that the group does not use
// (tokens off, or its queue merged or split what came with it): it no
// longer stands for this data and must not travel on with it (a DLQ or
// poison record, parts of it).
//
// The loop guard's answer, when this asks the same question (did the data
// come from a DLQ?), is kept in d: it is not asked twice per batch.
func (g *group[T]) giveToken(ctx context.Context, d *delivery[T]) (stale bool) {
	md := client.FromContext(ctx).Metadata
	given := dlqmeta.DedupToken(md)
	switch {
	case !g.cfg.Deduplication.Tokens || (given != "" && g.regroups):
		return given != ""
	case given != "":
		d.token = dedupToken{given: given}
	case g.takesTokens:
		d.replayedValue, d.replayedKnown = dlqmeta.Replayed(md, g.dlqTopics, true), true
		if !d.replayedValue {
			d.token = newDedupToken()
		}
	}
	return false
}
