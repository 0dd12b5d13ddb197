// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"time"

	"github.com/otelfailover/otelcol-failover/internal/livestate"
)

// failedRecently is how long after its primary failed an attempt (an outage
// class error: a timeout, a refused connection) a live group still counts as
// failing over: a primary that fails one batch in a few under load keeps its
// breaker closed, and the replay should leave it alone meanwhile. Batches
// passed by an open breaker do not count: the breaker's state says it, and
// once a probe found the primary back, the replay need not wait for them.
const failedRecently = time.Second

// liveSource is the group as the replay side of the collector sees it
// (package livestate): a group with a dead-letter member is failing over
// while its first member is open or not started, or failed an attempt
// within failedRecently. dlq_routing holds replayed data back meanwhile.
type liveSource[T any] struct{ g *group[T] }

func (s liveSource[T]) Name() string { return s.g.idStr }

func (s liveSource[T]) FailingOver(now time.Time) bool {
	g := s.g
	// Half-open is not failing over: a probe found the member answering
	// and it takes the next batch. Waiting for that batch would hold the
	// replay for as long as no live data comes.
	if st := g.members[0].state(); st == stateOpen || st == stateUnavailable {
		return true
	}
	return now.UnixNano()-g.primaryFailedAt.Load() < int64(failedRecently)
}

// registerLive makes the group a live source when it has a dead-letter
// member; the returned function undoes it.
func (g *group[T]) registerLive() func() {
	for _, m := range g.members {
		if m.cfg.deadLetter {
			return livestate.Register(liveSource[T]{g: g})
		}
	}
	return func() {}
}

// primaryFailed records a transient failure of the first member.
func (g *group[T]) primaryFailed() { g.primaryFailedAt.Store(time.Now().UnixNano()) }
