// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package livestate lets the replay side of a collector see whether its live
// side is failing over. A failover_group with a dead-letter member (a live
// group: it parks data in the DLQ) registers itself; dlq_routing holds
// replayed data back while one of them is failing over, so that a ClickHouse
// that answers again, or is straining under the drain, is not given the
// backlog on top of the live data (no thundering herd).
//
// The state is per process, as the components that share it are: two
// collectors each pace their own replay by their own live groups.
package livestate

import (
	"sync"
	"sync/atomic"
	"time"
)

// Source is a live group as the replay side sees it.
type Source interface {
	// Name identifies the source in logs, e.g. "failover_group/ingest".
	Name() string
	// FailingOver reports whether the source's primary member is not
	// taking data, or it parked data in a dead-letter member recently.
	// Called on the replay path for every batch: keep it to atomic loads.
	FailingOver(now time.Time) bool
}

var (
	mu      sync.Mutex // serializes Register and unregister
	sources atomic.Pointer[[]Source]
)

// Register adds s until the returned function is called (once; later calls
// do nothing).
func Register(s Source) (unregister func()) {
	mu.Lock()
	defer mu.Unlock()
	sources.Store(withSource(sources.Load(), s))
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			sources.Store(withoutSource(sources.Load(), s))
		})
	}
}

// FailingOver returns the first registered source that is failing over.
func FailingOver(now time.Time) (Source, bool) {
	list := sources.Load()
	if list == nil {
		return nil, false
	}
	for _, s := range *list {
		if s.FailingOver(now) {
			return s, true
		}
	}
	return nil, false
}

// withSource and withoutSource copy the list: readers hold the old one
// without a lock.
func withSource(cur *[]Source, s Source) *[]Source {
	var next []Source
	if cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	return &next
}

func withoutSource(cur *[]Source, s Source) *[]Source {
	var next []Source
	if cur != nil {
		for _, x := range *cur {
			if x != s {
				next = append(next, x)
			}
		}
	}
	return &next
}

// Registered returns the sources registered now (diagnostics and tests).
func Registered() []Source {
	list := sources.Load()
	if list == nil {
		return nil
	}
	return append([]Source(nil), *list...)
}
