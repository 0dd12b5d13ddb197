// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/client"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// push is the failover decision, the one place where it is made. Members are
// tried in order; each is passed by without I/O when it is a dead-letter
// member and the data came from a DLQ (loop guard), when its breaker is open,
// or when it is not started. Otherwise it gets one attempt (attempt), or, for
// a dead-letter member with dead_letter_batch and data no member tried, a
// place in a merged DLQ record (park_batch.go). What a member does not take
// moves on to the next member, stamped with DLQ metadata; only when no member
// is left does an error go back upstream.
//
// The healthy path (the first member admits and takes the batch) allocates
// nothing of its own when the member bounds its calls itself, but the
// context that carries a clickhouse member's deduplication token.
func (g *group[T]) push(ctx context.Context, data T) error {
	d := delivery[T]{data: data, onlyBadData: true}
	if stale := g.giveToken(ctx, &d); stale {
		ctx = dlqmeta.WithoutDedupToken(ctx)
	}
	for i, m := range g.members {
		hasNext := i < len(g.members)-1
		if m.cfg.deadLetter && g.replayed(ctx, &d) {
			g.passBy(ctx, m, &d, skipLoopGuard, hasNext)
			continue
		}
		if m.park != nil && m.park.accepts(ctx, &d) {
			switch g.parkInto(ctx, m, &d, hasNext) {
			case taken:
				return nil
			case gaveUp:
				d.notTried(g.members[i+1:], ctx.Err())
				return g.exhausted(ctx, &d)
			default:
				continue
			}
		}
		tk, admitted := m.breaker.allow() // closed: one atomic load
		if !admitted {
			g.passBy(ctx, m, &d, skipBreakerOpen, hasNext)
			continue
		}
		switch g.attempt(ctx, m, tk, &d, hasNext) {
		case taken:
			return nil
		case unavailable:
			g.passBy(ctx, m, &d, skipUnavailable, hasNext)
		case gaveUp:
			d.notTried(g.members[i+1:], ctx.Err())
			return g.exhausted(ctx, &d)
		case returned:
			d.returned = true
			return g.exhausted(ctx, &d)
		case movedOn:
		}
	}
	return g.exhausted(ctx, &d)
}

// delivery is one batch's way through the members.
type delivery[T any] struct {
	data T // what is still to be delivered
	// token is data's deduplication token (dedup_token.go).
	token dedupToken
	// delivered: some part was taken by a member (a partial success).
	delivered bool
	// onlyBadData: every member that tried refused the data as bad (a
	// member the loop guard passed by did not try); refusedAsBad counts
	// them. returned: a refusal was returned at once (on_permanent_error:
	// return). lastTooLarge: the last member that tried refused what is
	// left as too large for its records.
	onlyBadData  bool
	refusedAsBad int
	returned     bool
	lastTooLarge bool
	// last is why the latest member missed; the next member's DLQ stamp
	// says so. missed is false until a member missed.
	last   miss
	missed bool
	// failures name every member's miss in the upstream error. Allocated
	// on the first miss: the healthy path never touches it.
	failures []attemptFailure
	// replayed caches the loop guard's answer for this batch.
	replayedKnown, replayedValue bool
	// tried: a member was called with the data (its token may be in
	// ClickHouse): it is never merged into another record (park_batch.go).
	tried bool
}

// miss records why a member did not take the data.
type miss struct {
	member string
	reason string
	stamps *stampCache // the missing member's stamp cache
}

func (d *delivery[T]) fail(f attemptFailure, n int) {
	if d.failures == nil {
		d.failures = make([]attemptFailure, 0, n)
	}
	d.failures = append(d.failures, f)
}

// notTried names the members after the caller gave up.
func (d *delivery[T]) notTried(rest []*member[T], why error) {
	for _, m := range rest {
		d.fail(attemptFailure{index: m.index, member: m.name, notTried: true, err: why, verdict: errclass.Classify(why)}, len(rest))
	}
	d.onlyBadData = false
}

// replayed is the loop guard's question, asked once per batch and only when
// a dead-letter member is reached: did this data come from a DLQ?
func (g *group[T]) replayed(ctx context.Context, d *delivery[T]) bool {
	if !d.replayedKnown {
		d.replayedValue, d.replayedKnown = dlqmeta.Replayed(client.FromContext(ctx).Metadata, g.dlqTopics, true), true
	}
	return d.replayedValue
}

// passBy records a member passed by without an attempt.
func (g *group[T]) passBy(ctx context.Context, m *member[T], d *delivery[T], r skipReason, hasNext bool) {
	m.tel.skipped(ctx, r)
	if hasNext {
		m.tel.failover(ctx)
	}
	// A dead-letter member passed by the loop guard says nothing of the
	// data; a member that is down could have taken it.
	if r != skipLoopGuard {
		d.onlyBadData = false
		d.lastTooLarge = false
	}
	d.fail(attemptFailure{index: m.index, member: m.name, notTried: true, err: skipErrors[r], verdict: skipVerdicts[r]}, len(g.members))
	d.last, d.missed = miss{member: m.name, reason: skipStampReasons[r], stamps: &m.stamps}, true
}

// step is how an attempt leaves the batch.
type step uint8

const (
	taken       step = iota // the member took all of it
	movedOn                 // what it did not take goes to the next member
	unavailable             // the member is not started: passed by
	gaveUp                  // the caller gave up: nothing more is tried
	returned                // bad data with on_permanent_error: return
)

// attempt gives the batch to one admitted member, bounded by
// attempt_timeout, and settles the breaker, telemetry and the batch.
func (g *group[T]) attempt(ctx context.Context, m *member[T], tk ticket, d *delivery[T], hasNext bool) step {
	if err := ctx.Err(); err != nil {
		m.breaker.release(tk)
		d.fail(attemptFailure{index: m.index, member: m.name, notTried: true, err: err, verdict: errclass.Classify(err)}, len(g.members))
		d.onlyBadData = false
		return gaveUp
	}
	stamped, began := ctx, time.Time{}
	if d.missed {
		began = time.Now() // also the stamp's time: one clock read
		stamped = g.stamp(ctx, d.last, began, d.token)
	}
	attemptCtx := stamped
	exp := m.ready.Load()
	budget, shared := g.attemptBudget(ctx, len(g.members)-m.index)
	cancel := noCancel
	if exp == nil || !m.ownDeadline || shared {
		// The group's own deadline. Not needed when the started member
		// bounds the call itself within attempt_timeout: then its
		// exporterhelper timeout is the attempt deadline.
		attemptCtx, cancel = context.WithTimeout(attemptCtx, budget)
	}
	if exp == nil {
		exp = m.acquire(attemptCtx)
	}
	if exp == nil {
		cancel()
		m.breaker.release(tk)
		return unavailable
	}
	data := d.data
	if exp.mutates && hasNext {
		// The member may change the batch; the next member must get it
		// as it was. Only mutating members pay for this copy.
		data = g.sig.clone(data)
	}
	if !d.missed {
		began = time.Now()
	}
	d.tried = true
	err := g.send(attemptCtx, attempt[T]{base: stamped, m: m, exp: exp, began: began, budget: budget, token: d.token}, data)
	took := time.Since(began)
	cancel()
	if err == nil {
		m.dest.taken(began) // the member takes data: no probe needed
	}
	return g.settle(ctx, m, tk, d, err, took, hasNext)
}

// settle turns an attempt's result into the breaker's, the telemetry's and
// the batch's next state.
func (g *group[T]) settle(ctx context.Context, m *member[T], tk ticket, d *delivery[T], err error, took time.Duration, hasNext bool) step {
	if err == nil {
		m.breaker.success(tk)
		m.tel.attempt(ctx, outcomeSuccess, took)
		m.tel.delivered(ctx, g.sig.items(d.data))
		g.exhaustion.taken()
		return taken
	}
	callerGaveUp := ctx.Err() != nil
	v := errclass.Classify(err)
	permanent := v.Class == errclass.Permanent
	// The breaker is charged for transient failures only: bad data, or the
	// caller's own deadline ending, is not the member's fault.
	if callerGaveUp || permanent {
		m.breaker.release(tk)
	} else {
		m.breaker.failure(tk)
		if m.index == 0 {
			g.primaryFailed()
		}
	}
	failed, partial := g.sig.failedPart(err)
	switch {
	case partial:
		m.tel.attempt(ctx, outcomePartial, took)
		m.tel.delivered(ctx, g.sig.items(d.data)-g.sig.items(failed))
		// The rest is not the batch: a token of its own.
		d.data, d.delivered, d.token = failed, true, g.partToken(d.token, failed)
	case permanent:
		m.tel.attempt(ctx, outcomePermanent, took)
	default:
		m.tel.attempt(ctx, outcomeTransient, took)
	}
	d.fail(attemptFailure{index: m.index, member: m.name, err: err, verdict: v}, len(g.members))
	d.onlyBadData = d.onlyBadData && permanent && !callerGaveUp
	d.lastTooLarge = permanent && v.Reason == errclass.ReasonTooLarge
	if permanent {
		d.refusedAsBad++
	}
	if callerGaveUp {
		return gaveUp
	}
	if permanent && g.cfg.OnPermanentError == PermanentErrorReturn {
		return returned
	}
	d.last, d.missed = miss{member: m.name, reason: v.String(), stamps: &m.stamps}, true
	if hasNext {
		m.tel.failover(ctx)
	}
	return movedOn
}

func noCancel() {}

// attemptBudget is how long an attempt may take: attempt_timeout, or less
// when the caller's deadline leaves less than that for each member still
// to try (shared). Without the share, a member that hangs until the
// caller's deadline leaves the next member no time, and is never charged for
// it: the caller giving up is not the member's fault.
func (g *group[T]) attemptBudget(ctx context.Context, membersLeft int) (budget time.Duration, shared bool) {
	budget = g.cfg.AttemptTimeout
	dl, ok := ctx.Deadline()
	if !ok {
		return budget, false
	}
	left := time.Until(dl)
	// A share only a little under attempt_timeout is not worth a deadline
	// of the group's on every batch (an SDK's 10 s deadline over two 5 s
	// attempts, already a few milliseconds spent on arrival).
	if membersLeft > 1 {
		if share := left / time.Duration(membersLeft); share < budget-budget/10 {
			return share, true
		}
	}
	// The last member: the caller's deadline bounds it as it is.
	return min(budget, left), false
}
