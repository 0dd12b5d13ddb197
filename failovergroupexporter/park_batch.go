// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"

	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// parkBatcher merges the batches a dead-letter member takes while every
// member before it passes them by (an open breaker, a member not started)
// into larger DLQ records (dead_letter_batch). A DLQ record is replayed as
// one insert: during an outage the group's batches are as small as its
// flush_timeout makes them at the live rate, and small inserts replay far
// slower than the live path writes. Each caller waits until the merged
// record is in the member (or failed): nothing is acknowledged before it is
// in Kafka.
//
// Only batches that no member tried are merged, so a merged record gets a
// deduplication token of its own without risk: none of its rows was ever
// sent to ClickHouse under another token. Batches with client metadata
// (which the kafka member may turn into record headers) are parked as they
// are.
type parkBatcher[T any] struct {
	g        *group[T]
	m        *member[T]
	linger   time.Duration
	maxItems int

	mu   sync.Mutex
	cur  *parkBatch[T]
	stop chan struct{} // closed at Shutdown: pending batches go at once
	wg   sync.WaitGroup
	once sync.Once
}

// parkBatch is one record being filled.
type parkBatch[T any] struct {
	parts []T
	items int
	last  miss // why the member before the dead-letter one missed
	full  chan struct{}
	done  chan struct{}
	err   error
}

func newParkBatcher[T any](g *group[T], m *member[T], cfg DeadLetterBatchConfig) *parkBatcher[T] {
	return &parkBatcher[T]{g: g, m: m, linger: cfg.Linger, maxItems: cfg.MaxItems, stop: make(chan struct{})}
}

// accepts reports whether the batch may be merged: a member before this one
// passed it by and none tried it, it came without a token, its context
// carries nothing of its own into the record, and the member takes data
// (else the usual path passes it by at once).
func (p *parkBatcher[T]) accepts(ctx context.Context, d *delivery[T]) bool {
	if !d.missed || d.tried || d.token.given != "" || p.m.ready.Load() == nil || p.m.breaker.state() != stateClosed {
		return false
	}
	info := client.FromContext(ctx)
	return info.Auth == nil && !hasMetadata(info.Metadata)
}

// park adds the batch to the record being filled and waits for that record's
// fate: nil once the member took it.
func (p *parkBatcher[T]) park(ctx context.Context, d *delivery[T]) error {
	n := p.g.sig.items(d.data)
	// The caller's batch may be shared (a fan-out) or reused after it
	// returns: the record gets a copy of its own. Only parked data pays.
	part := p.g.sig.clone(d.data)
	p.mu.Lock()
	b := p.cur
	if b == nil || b.last != d.last {
		if b != nil {
			p.sealLocked(b) // a different reason starts a record of its own
		}
		b = &parkBatch[T]{last: d.last, full: make(chan struct{}), done: make(chan struct{})}
		p.cur = b
		p.wg.Add(1)
		go p.flushWhenReady(b)
	}
	b.parts = append(b.parts, part)
	b.items += n
	if b.items >= p.maxItems {
		p.sealLocked(b)
	}
	p.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sealLocked ends the filling of b: it goes to the member now.
func (p *parkBatcher[T]) sealLocked(b *parkBatch[T]) {
	if p.cur == b {
		p.cur = nil
	}
	select {
	case <-b.full:
	default:
		close(b.full)
	}
}

// flushWhenReady writes b once it is full, its linger time is over, or the
// group shuts down.
func (p *parkBatcher[T]) flushWhenReady(b *parkBatch[T]) {
	defer p.wg.Done()
	t := time.NewTimer(p.linger)
	defer t.Stop()
	select {
	case <-b.full:
	case <-t.C:
	case <-p.stop:
	}
	p.mu.Lock()
	p.sealLocked(b)
	p.mu.Unlock()
	b.err = p.write(b)
	close(b.done)
}

// write gives the merged record to the member through the group's usual
// attempt: breaker, deadline, DLQ stamp, record-sized parts.
func (p *parkBatcher[T]) write(b *parkBatch[T]) error {
	g, m := p.g, p.m
	data := b.parts[0]
	if len(b.parts) > 1 {
		data = g.sig.merge(b.parts)
	}
	d := delivery[T]{data: data, last: b.last, missed: true}
	if g.takesTokens {
		d.token = newDedupToken()
	}
	tk, admitted := m.breaker.allow()
	if !admitted {
		return errParkBreakerOpen
	}
	// Not the caller's context: the record is every waiting caller's.
	if g.attempt(context.Background(), m, tk, &d, false) == taken {
		return nil
	}
	if len(d.failures) == 0 {
		return errParkNotTaken
	}
	f := d.failures[len(d.failures)-1]
	if d.delivered {
		// Part of the record is in the member, the rest is not, and which
		// caller's rows are where is not known: every caller gets the
		// error and sends its data again (at least once).
		return fmt.Errorf("%s took part of a merged DLQ record: %w", m.name, f.err)
	}
	return f.err
}

// flushNow writes the record being filled at once. Called when a member
// before the dead-letter one answers again (its breaker half-open after a
// probe, or closed): the outage is over, and the callers parked in the
// record need not wait out linger for a record few batches will join.
func (p *parkBatcher[T]) flushNow() {
	p.mu.Lock()
	if p.cur != nil {
		p.sealLocked(p.cur)
	}
	p.mu.Unlock()
}

// shutdown writes every pending record now and waits for them.
func (p *parkBatcher[T]) shutdown() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

var (
	errParkBreakerOpen = errors.New("circuit breaker open")
	errParkNotTaken    = errors.New("the member did not take the merged record")
)

// flushParked writes now the records being filled by the dead-letter
// members after before, which answers again (parkBatcher.flushNow).
func (g *group[T]) flushParked(before *member[T]) {
	for _, m := range g.members {
		if m.park != nil && m.index > before.index {
			m.park.flushNow()
		}
	}
}

// parkInto is push's step for a dead-letter member with dead_letter_batch:
// the batch joins a merged record; what the member did not take moves on as
// after any member's miss.
func (g *group[T]) parkInto(ctx context.Context, m *member[T], d *delivery[T], hasNext bool) step {
	err := m.park.park(ctx, d)
	if err == nil {
		return taken
	}
	if ctx.Err() != nil {
		d.fail(attemptFailure{index: m.index, member: m.name, err: err, verdict: errclass.Classify(err)}, len(g.members))
		d.onlyBadData = false
		return gaveUp
	}
	v := errclass.Classify(err)
	d.fail(attemptFailure{index: m.index, member: m.name, err: err, verdict: v}, len(g.members))
	d.onlyBadData = false
	d.last, d.missed = miss{member: m.name, reason: v.String(), stamps: &m.stamps}, true
	if hasNext {
		m.tel.failover(ctx)
	}
	return movedOn
}
