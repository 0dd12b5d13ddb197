// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"crypto/rand"
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
// isolating refused items, what a member did not take) carries a token
// derived from the batch's by a suffix: the same batch cut the same way gets
// the same tokens, and a part never carries its batch's token, which would
// make ClickHouse drop the part as a copy of the whole.
//
// A generated token is formatted only when it is needed as text (a DLQ
// stamp, a derived part): the healthy path writes it into a reused buffer
// (tokenSlot) without allocating.
type dedupToken struct {
	// given is a token the data came with (a replayed record's header);
	// empty for one this process generated.
	given string
	// seq numbers a generated token within this process.
	seq uint64
	// path is the derivation suffix of a part, "" for a whole batch.
	path string
}

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
	return append(b, t.path...)
}

// String returns the token's text; "" when the batch has none.
func (t dedupToken) String() string {
	if !t.set() {
		return ""
	}
	if t.path == "" && t.given != "" {
		return t.given
	}
	return string(t.appendTo(make([]byte, 0, len(tokenPrefix)+16+len(t.path))))
}

// Derivation steps. The separators cannot be confused with each other or
// with a generated token's own text (hex and base-36 digits, one '-').
const (
	// derivePart: part i of a batch split to fit a member's records.
	derivePart = ".p"
	// deriveHalf: the first (0) or second (1) half while isolating refused
	// items.
	deriveHalf = ".h"
	// deriveRest: what a member did not take of the batch (a partial
	// success), moving on to the next member.
	deriveRest = ".r"
)

// derive returns the token of a part of the batch.
func (t dedupToken) derive(step string, i int) dedupToken {
	if !t.set() {
		return t
	}
	t.path += step + strconv.Itoa(i)
	return t
}

// tokenOf returns the token of a batch entering the group: the one its
// client metadata carries (a replayed record's header: the token it was
// parked with), else a new one when the group gives tokens. Data replayed
// without a token (parked by a version without tokens) gets none: ClickHouse
// then deduplicates its inserts by their content, which is as stable as the
// record.
//
// A group without a member that takes tokens (a poison group of kafka
// members) still keeps the token data comes with, so that the parts it
// splits a batch into get tokens of their own.
func (g *group[T]) tokenOf(ctx context.Context) dedupToken {
	if !g.cfg.Deduplication.Tokens {
		return dedupToken{}
	}
	md := client.FromContext(ctx).Metadata
	if t := dlqmeta.DedupToken(md); t != "" {
		if g.regroups {
			// The group's queue merged or split what came with this
			// token: it no longer stands for this data.
			return dedupToken{}
		}
		return dedupToken{given: t}
	}
	if !g.takesTokens || dlqmeta.Replayed(md, g.dlqTopics, true) {
		return dedupToken{}
	}
	return newDedupToken()
}
