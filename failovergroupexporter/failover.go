package failovergroupexporter // import "github.com/otelfailover/otelcol-failover/failovergroupexporter"

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// miss records why a member did not take the data; the next member's DLQ
// stamp says so.
type miss struct {
	member string
	reason string
	cache  *atomic.Pointer[stampEntry] // the missing member's stamp cache
}

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

// attemptFailure is one member's miss as the upstream error will name it.
// It is turned into text only when no member took the data, so a failover
// that succeeds formats nothing.
type attemptFailure struct {
	index    int
	id       component.ID
	notTried bool
	err      error // the member's error, or why it was not tried
}

func (f attemptFailure) error() error {
	if f.notTried {
		return fmt.Errorf("members[%d] %s: not tried: %w", f.index, f.id, f.err)
	}
	return fmt.Errorf("members[%d] %s: %w", f.index, f.id, f.err)
}

// Why a member was passed by, as the upstream error says it.
var (
	errBreakerOpen = errors.New("circuit breaker open")
	errUnavailable = errors.New("not started (its start failed or is still in progress; it is retried in the background)")
	errLoopGuard   = errors.New("the data was replayed from a dead-letter queue and must not be written to one again (loop guard); it fails so that its source retries later")
	skipErrors     = [numSkipReasons]error{errBreakerOpen, errUnavailable, errLoopGuard}
	// skipStampReasons are the DLQ reason values of skipped members:
	// "transient:breaker_open" and so on, as errclass verdicts read.
	skipStampReasons = func() (r [numSkipReasons]string) {
		for i, name := range skipReasonNames {
			r[i] = errclass.Transient.String() + ":" + name
		}
		return r
	}()
)

func noCancel() {}

// push is the failover decision, the one place where it is made. Members are
// tried in order. A member is passed by without I/O when its breaker is open,
// when it is not started, or (loop guard) when the data came from a DLQ and
// the member is a DLQ. Otherwise it gets an attempt bounded by
// attempt_timeout; what it does not accept (all of the batch, or the failed
// part of a partial success) moves on to the next member, stamped with DLQ
// metadata. Only when no member is left does an error go back upstream.
//
// The healthy path (first member admits and accepts) allocates nothing of
// its own when the member bounds its calls itself (see enforcesTimeout).
func (g *group[T]) push(ctx context.Context, data T) error {
	var (
		// replayed (the loop guard's question) is asked of the caller's ctx
		// when a DLQ member is first reached, not on the healthy path.
		replayed, askedReplayed bool
		failBuf                 [4]attemptFailure
		failures                = failBuf[:0]
		last                    miss
		missed                  bool   // last holds a miss
		onlyPermanent           = true // every failure so far was the data's fault
		delivered               bool   // some part was accepted by a member
	)
	for i, m := range g.members {
		hasNext := i < len(g.members)-1
		skip := func(r skipReason) {
			m.tel.skipped(ctx, r)
			if hasNext {
				m.tel.failover(ctx)
			}
			onlyPermanent = false
			failures = append(failures, attemptFailure{index: i, id: m.id, notTried: true, err: skipErrors[r]})
			last, missed = miss{member: m.idStr, reason: skipStampReasons[r], cache: &m.stamps}, true
		}

		if m.isDLQ {
			if !askedReplayed {
				replayed, askedReplayed = dlqmeta.Replayed(client.FromContext(ctx).Metadata, g.dlqTopics, true), true
			}
			if replayed {
				skip(skipLoopGuard)
				continue
			}
		}
		gen, ok := m.breaker.allow() // closed: one atomic load; open: plus a clock read
		if !ok {
			skip(skipBreakerOpen)
			continue
		}
		if err := ctx.Err(); err != nil {
			m.breaker.record(gen, verdictNeutral)
			failures = g.notTried(failures, i, err)
			onlyPermanent = false
			break
		}

		attemptCtx := ctx
		var began time.Time
		if missed {
			began = time.Now() // also the stamp's time: one clock read
			attemptCtx = g.stamp(ctx, last, began)
		}
		in := m.ready.Load()
		cancel := noCancel
		if in == nil || !m.enforcesTimeout {
			// The group's own deadline. Not needed when the started member
			// bounds the call itself within attempt_timeout: then its
			// exporterhelper timeout is the attempt deadline.
			attemptCtx, cancel = g.withAttemptDeadline(attemptCtx)
		}
		if in == nil {
			in = m.acquire(attemptCtx)
		}
		if in == nil {
			cancel()
			m.breaker.record(gen, verdictNeutral)
			skip(skipUnavailable)
			continue
		}

		toSend := data
		if in.mutates && hasNext {
			// The member may change the batch; the next member must get it
			// as it was. Only mutating members pay for this copy.
			toSend = g.sig.clone(data)
		}
		if !missed {
			began = time.Now()
		}
		err := in.consume(attemptCtx, toSend)
		took := time.Since(began)
		cancel()

		if err == nil {
			m.breaker.record(gen, verdictSuccess)
			m.tel.attempt(ctx, outcomeSuccess, took)
			m.tel.delivered(ctx, g.sig.items(data))
			return nil
		}

		callerGaveUp := ctx.Err() != nil
		v := errclass.Classify(err)
		permanent := v.Class == errclass.Permanent
		failedPart, partial := g.sig.failedPart(err)
		// The breaker is charged for transient failures only: bad data, or
		// the caller's own deadline ending, is not the member's fault.
		bv := verdictFailure
		if callerGaveUp || permanent {
			bv = verdictNeutral
		}
		m.breaker.record(gen, bv)
		o := outcomeTransient
		switch {
		case partial:
			o = outcomePartial
		case permanent:
			o = outcomePermanent
		}
		m.tel.attempt(ctx, o, took)
		if partial {
			m.tel.delivered(ctx, g.sig.items(data)-g.sig.items(failedPart))
			data = failedPart
			delivered = true
		}
		failures = append(failures, attemptFailure{index: i, id: m.id, err: err})
		if callerGaveUp {
			failures = g.notTried(failures, i+1, ctx.Err())
			onlyPermanent = false
			break
		}
		if permanent && g.cfg.OnPermanentError == PermanentErrorReturn {
			return g.exhausted(ctx, data, delivered, true, failures)
		}
		onlyPermanent = onlyPermanent && permanent
		last, missed = miss{member: m.idStr, reason: v.Class.String() + ":" + v.Reason, cache: &m.stamps}, true
		if hasNext {
			m.tel.failover(ctx)
		}
	}
	return g.exhausted(ctx, data, delivered, onlyPermanent, failures)
}

// notTried records members from index `from` on as not tried because the
// caller gave up, so the upstream error still names every member.
func (g *group[T]) notTried(failures []attemptFailure, from int, why error) []attemptFailure {
	for j := from; j < len(g.members); j++ {
		failures = append(failures, attemptFailure{index: j, id: g.members[j].id, notTried: true, err: why})
	}
	return failures
}

// stamp adds the DLQ metadata saying which member missed and why. The time
// has millisecond precision.
func (g *group[T]) stamp(ctx context.Context, last miss, now time.Time) context.Context {
	ms := now.UnixMilli()
	info := client.FromContext(ctx)
	bare := info.Addr == nil && info.Auth == nil && !hasMetadata(info.Metadata)
	if bare {
		if e := last.cache.Load(); e != nil && e.ms == ms && e.reason == last.reason {
			return client.NewContext(ctx, e.info)
		}
	}
	stamped := dlqmeta.WithStamp(ctx, dlqmeta.Stamp{
		Group:        g.idStr,
		FailedMember: last.member,
		Reason:       last.reason,
		Time:         time.UnixMilli(ms),
	})
	if bare {
		last.cache.Store(&stampEntry{reason: last.reason, ms: ms, info: client.FromContext(stamped)})
	}
	return stamped
}

func hasMetadata(md client.Metadata) bool {
	for range md.Keys() {
		return true
	}
	return false
}

// withAttemptDeadline bounds one attempt by attempt_timeout, unless the
// caller's own deadline comes sooner.
func (g *group[T]) withAttemptDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= g.cfg.AttemptTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, g.cfg.AttemptTimeout)
}

// exhausted builds the one error that goes upstream when no member took
// (all of) the data. It names every member's failure. It is permanent only
// when every member refused the data as bad; it carries the failed part when
// some part was delivered, so an upstream retry resends only that.
func (g *group[T]) exhausted(ctx context.Context, data T, delivered, permanent bool, failures []attemptFailure) error {
	g.tb.FailoverGroupExhaustedBatches.Add(ctx, 1, g.groupAdd...)
	g.tb.FailoverGroupExhaustedItems.Add(ctx, int64(g.sig.items(data)), g.groupAdd...)
	errs := make([]error, len(failures))
	for i, f := range failures {
		errs[i] = f.error()
	}
	err := fmt.Errorf("%s: no member accepted the data: %w", g.id, errors.Join(errs...))
	if permanent && len(failures) > 0 {
		err = consumererror.NewPermanent(err)
	}
	if delivered {
		err = g.sig.withFailedPart(err, data)
	}
	return err
}
