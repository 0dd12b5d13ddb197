// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// attemptFailure is one member's miss as the upstream error names it.
type attemptFailure struct {
	index    int
	member   string
	notTried bool
	err      error            // the member's error, or why it was not tried (logs only)
	verdict  errclass.Verdict // its class and reason: what the client is told
}

// Why a member was passed by.
var (
	errBreakerOpen = errors.New("circuit breaker open")
	errUnavailable = errors.New("not started (its start failed or is still in progress; it is retried in the background)")
	errLoopGuard   = errors.New("the data was replayed from a dead-letter queue and must not be written to one again (loop guard); it fails so that its source retries later")
	skipErrors     = [numSkipReasons]error{errBreakerOpen, errUnavailable, errLoopGuard}
	// skipVerdicts are the verdicts on skipped members, as the DLQ stamp
	// and the upstream error give them: "transient:breaker_open"...
	skipVerdicts = func() (v [numSkipReasons]errclass.Verdict) {
		for i, name := range skipReasonNames {
			v[i] = errclass.Verdict{Class: errclass.Transient, Reason: name}
		}
		return v
	}()
	// skipStampReasons are the same as DLQ stamp values, built once.
	skipStampReasons = func() (r [numSkipReasons]string) {
		for i, v := range skipVerdicts {
			r[i] = v.String()
		}
		return r
	}()
)

// exhausted builds the one error that goes upstream when no member took
// (all of) the batch, and logs it (rate-limited). The error is permanent
// when the data itself is the problem: every member that tried refused it as
// bad, or on_permanent_error returned a refusal, or what is left is too
// large for the last member's records (the one thing a DLQ cannot park; a
// retry would only park the rest again). It carries the failed part when
// some part was delivered, for the group's own retry.
func (g *group[T]) exhausted(ctx context.Context, d *delivery[T]) error {
	items := g.sig.items(d.data)
	g.tb.FailoverGroupExhaustedBatches.Add(ctx, 1, g.groupAdd...)
	g.tb.FailoverGroupExhaustedItems.Add(ctx, int64(items), g.groupAdd...)
	badData := (d.onlyBadData && d.refusedAsBad > 0) || d.returned || d.lastTooLarge
	e := &noMemberTookIt{group: g.idStr, failures: d.failures, badData: badData}
	g.exhaustion.record(items, e)
	var err error = e
	if e.badData {
		err = consumererror.NewPermanent(err)
	}
	if d.delivered {
		err = g.sig.withFailedPart(err, d.data)
	}
	return err
}

// noMemberTookIt is the error upstream when no member took a batch. It
// reaches clients (the OTLP receiver sends its text verbatim), so it names
// each member and the class of its miss, never the member's own error text,
// which can carry URLs, brokers or user names; those go to the log.
//
// It does not unwrap to the members' errors: a member's own marks must not
// decide the group's answer (the kafka exporter marks some outage errors
// permanent, which would tell OTLP clients not to retry). Its gRPC status
// is what the OTLP receiver answers with: Unavailable (HTTP 503, retry
// later), or InvalidArgument (HTTP 400) when every member refused the data
// as bad.
type noMemberTookIt struct {
	group    string
	failures []attemptFailure
	badData  bool
}

func (e *noMemberTookIt) Error() string {
	var b strings.Builder
	b.WriteString(e.group)
	b.WriteString(": no member accepted the data: ")
	for i, f := range e.failures {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "members[%d] %s: ", f.index, f.member)
		if f.notTried {
			b.WriteString("not tried: ")
		}
		b.WriteString(f.verdict.String())
	}
	return b.String()
}

var _ errclass.Classified = (*noMemberTookIt)(nil)

// Verdict is the class of the group's answer, with the reason of the member
// that decides it: the last refusal when the data is bad (e.g.
// permanent:clickhouse_469, what dlq_routing stamps on poison), else the
// first transient miss.
func (e *noMemberTookIt) Verdict() errclass.Verdict {
	if e.badData {
		for _, f := range slices.Backward(e.failures) {
			if f.verdict.Class == errclass.Permanent {
				return f.verdict
			}
		}
	}
	for _, f := range e.failures {
		if f.verdict.Class == errclass.Transient {
			return f.verdict
		}
	}
	return errclass.Verdict{Class: errclass.Transient, Reason: "no_member"}
}

// GRPCStatus is how the OTLP receiver answers the client.
func (e *noMemberTookIt) GRPCStatus() *status.Status {
	if e.badData {
		return status.New(codes.InvalidArgument, e.Error())
	}
	return status.New(codes.Unavailable, e.Error())
}

// detail is the error with every member's own error, for the log.
func (e *noMemberTookIt) detail() error {
	errs := make([]error, len(e.failures))
	for i, f := range e.failures {
		prefix := fmt.Sprintf("members[%d] %s", f.index, f.member)
		if f.notTried {
			prefix += ": not tried"
		}
		errs[i] = fmt.Errorf("%s: %w", prefix, f.err)
	}
	return errors.Join(errs...)
}

// exhaustionLogInterval is the least time between two "no member accepted
// the data" lines of one group instance; each line counts the batches since
// the one before.
const exhaustionLogInterval = 10 * time.Second

// exhaustionLog logs batches that no member took: the first at once, then
// at most one line per interval with the counts since the last line, so an
// outage of every member is loud without a line per batch. What is held
// back when the outage ends is logged with the next batch a member takes.
type exhaustionLog struct {
	logger *zap.Logger
	now    func() time.Time
	// held says, with one atomic load on the healthy path, that counts
	// wait to be logged.
	held atomic.Bool

	mu      sync.Mutex
	next    time.Time
	batches int64
	items   int64
}

func newExhaustionLog(logger *zap.Logger, now func() time.Time) *exhaustionLog {
	return &exhaustionLog{logger: logger, now: now}
}

func (l *exhaustionLog) record(items int, e *noMemberTookIt) {
	l.mu.Lock()
	l.batches++
	l.items += int64(items)
	now := l.now()
	if now.Before(l.next) {
		l.held.Store(true)
		l.mu.Unlock()
		return
	}
	batches, total := l.batches, l.items
	l.batches, l.items, l.next = 0, 0, now.Add(exhaustionLogInterval)
	l.held.Store(false)
	l.mu.Unlock()
	msg := "No member accepted the data; the error went back upstream (retryable)"
	if e.badData {
		msg = "No member accepted the data: it was refused as bad data; the error went back upstream (permanent)"
	}
	l.logger.Warn(msg,
		zap.Int64("batches", batches), zap.Int64("items", total),
		zap.Duration("at_most_one_line_per", exhaustionLogInterval),
		zap.Error(e.detail()))
}

// taken: a member took a batch. Counts held back since the last line are
// logged now, so that the end of an outage does not hide its last ones.
func (l *exhaustionLog) taken() {
	if !l.held.Load() {
		return
	}
	l.mu.Lock()
	batches, total := l.batches, l.items
	l.batches, l.items = 0, 0
	l.held.Store(false)
	l.mu.Unlock()
	if batches > 0 {
		l.logger.Warn("No member accepted the data for the last batches before a member took data again",
			zap.Int64("batches", batches), zap.Int64("items", total))
	}
}
