// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// stampCache holds a member's last stamped client info.
type stampCache = atomic.Pointer[stampEntry]

// stampEntry is a member's last stamped client info, for data that came
// without client info of its own (the usual case: no metadata, address or
// auth). During an outage every batch is stamped with the same group, member
// and reason, and the time has millisecond precision: within a millisecond
// the info is reused instead of rebuilding two maps and a time string for
// every batch.
type stampEntry struct {
	reason string
	ms     int64
	info   client.Info
}

// stamp adds the DLQ metadata saying which member missed and why, and the
// batch's deduplication token. The time has millisecond precision.
func (g *group[T]) stamp(ctx context.Context, last miss, now time.Time, token dedupToken) context.Context {
	ms := now.UnixMilli()
	info := client.FromContext(ctx)
	// A batch with a token of its own has a stamp of its own.
	bare := !token.set() && info.Addr == nil && info.Auth == nil && !hasMetadata(info.Metadata)
	if bare {
		if e := last.stamps.Load(); e != nil && e.ms == ms && e.reason == last.reason {
			return client.NewContext(ctx, e.info)
		}
	}
	stamped := dlqmeta.WithStamp(ctx, dlqmeta.Stamp{
		Group:        g.idStr,
		FailedMember: last.member,
		Reason:       last.reason,
		Time:         time.UnixMilli(ms),
		DedupToken:   token.String(),
	})
	if bare {
		last.stamps.Store(&stampEntry{reason: last.reason, ms: ms, info: client.FromContext(stamped)})
	}
	return stamped
}

func hasMetadata(md client.Metadata) bool {
	for range md.Keys() {
		return true
	}
	return false
}
