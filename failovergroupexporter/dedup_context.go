// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouse query settings that carry a batch's token into a clickhouse
// member's inserts. The clickhouse exporter inserts with
// db.PrepareBatch(ctx, …), and clickhouse-go sends the settings carried by
// that context (clickhouse.Context) with the insert: URL parameters over
// HTTP, the query's settings over the native protocol.
const (
	settingDedupToken = "insert_deduplication_token" //nolint:gosec // G101: a setting's name, not a credential
	// async_insert (on by default in the clickhouse exporter) deduplicates
	// only with this setting on; it does nothing to synchronous inserts.
	settingAsyncDedup = "async_insert_deduplicate"
)

// tokenSlot carries one token into a member call as ClickHouse query
// settings: the settings and their context are built once per slot, the
// token's text is written into the slot's buffer, and slots are reused, so
// that a batch does not pay for a settings map and two contexts.
//
// A slot goes back to the pool only after a call that returned:
// clickhouse-go formats the settings (fmt.Sprint of tokenText) while the
// call runs, never after. The context a call gets (tokenContext) is its own,
// never reused: a context package timer that fires at the call's deadline
// may still read it, from its own goroutine, after the call returned.
type tokenSlot struct {
	text tokenText
	// opts is a context holding the clickhouse QueryOptions whose settings
	// point at text; built once, never changed.
	opts context.Context
}

// tokenText is the token's text, formatted by clickhouse-go with fmt.Sprint.
type tokenText struct{ buf []byte }

func (t *tokenText) String() string { return string(t.buf) }

// tokenContext is a call's context with a slot's settings: values are
// looked up in the settings first, then in the call's context.
type tokenContext struct {
	context.Context
	slot *tokenSlot
}

func (c *tokenContext) Value(key any) any {
	if v := c.slot.opts.Value(key); v != nil {
		return v
	}
	if _, ok := key.(tokenKey); ok {
		return &c.slot.text
	}
	return c.Context.Value(key)
}

// tokenKey asks a call's context for the token it carries (tokenIn).
type tokenKey struct{}

// tokenIn returns the token a member call's context carries as ClickHouse
// insert settings, or "": for tests and debugging, not on any data path.
func tokenIn(ctx context.Context) string {
	if t, ok := ctx.Value(tokenKey{}).(*tokenText); ok {
		return t.String()
	}
	return ""
}

var tokenSlots = sync.Pool{New: func() any {
	s := &tokenSlot{text: tokenText{buf: make([]byte, 0, 96)}}
	s.opts = clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{
		settingDedupToken: &s.text,
		settingAsyncDedup: 1,
	}))
	return s
}}

// bindToken returns ctx with tok as the ClickHouse insert settings (one
// allocation: the call's own context), and the slot to give back with
// releaseToken once the call returned.
func bindToken(ctx context.Context, tok dedupToken) (context.Context, *tokenSlot) {
	s := tokenSlots.Get().(*tokenSlot)
	s.text.buf = tok.appendTo(s.text.buf[:0])
	return &tokenContext{Context: ctx, slot: s}, s
}

// releaseToken gives a slot back for reuse; the call that used it returned.
func releaseToken(s *tokenSlot) {
	if s != nil {
		tokenSlots.Put(s)
	}
}
