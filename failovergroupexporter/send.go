// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
	"github.com/otelfailover/otelcol-failover/internal/errclass"
)

// attempt is one member's attempt at a batch, for what takes more than one
// call: the caller's (stamped) context without the attempt's deadline, and
// the attempt's start and time budget.
type attempt[T any] struct {
	base   context.Context
	m      *member[T]
	exp    *memberExporter[T]
	began  time.Time
	budget time.Duration
	// token is the batch's deduplication token.
	token dedupToken
}

// call is one call of the member's exporter with a batch or a part of it
// and that data's token: as ClickHouse insert settings for a member that
// takes tokens (clickhouse), as the DLQ header for the others when the data
// carries one (a part of a parked batch must not carry the batch's token).
func (a attempt[T]) call(ctx context.Context, data T, tok dedupToken) error {
	if !tok.set() {
		return a.exp.consume(ctx, data)
	}
	if !a.m.takesTokens {
		if tok.part != "" && dlqmeta.DedupToken(client.FromContext(ctx).Metadata) != "" {
			ctx = dlqmeta.WithDedupToken(ctx, tok.String())
		}
		return a.exp.consume(ctx, data)
	}
	tctx, slot := bindToken(ctx, tok)
	err := a.exp.consume(tctx, data)
	if !a.m.outlivesContext {
		// The call returned: nothing reads the slot any more. A call the
		// group may have stopped waiting for keeps its slot.
		releaseToken(slot)
	}
	return err
}

// send hands a batch to a member's exporter and returns what the member did
// not take as a partial-success error. The first call is the only one on the
// healthy path. Two things make more calls, only when needed:
//   - a member with a record size limit (kafka) gets a batch larger than a
//     record in parts that each fit one, every part with the same context
//     (the same DLQ stamp);
//   - a batch the member refuses as bad data is halved until the refused
//     items are found, so that the rest is still taken (isolate).
func (g *group[T]) send(ctx context.Context, a attempt[T], data T) error {
	if a.m.recordLimit > 0 {
		budget := a.m.valueBudget(ctx)
		parts, oversize, largest := g.sig.splitBySize(data, budget)
		if len(parts) > 1 || largest > 0 {
			c := a.calls(len(parts) + isolateBudget(g.sig.items(data)))
			defer c.close()
			return g.sendInParts(c, parts, oversize, largest, budget)
		}
	}
	err := a.call(ctx, data, a.token)
	if err == nil || !g.isolatable(a.m, err, data) {
		return err
	}
	c := a.calls(isolateBudget(g.sig.items(data)))
	defer c.close()
	return g.isolate(c, data, err)
}

// calls is the context of the calls after the first: each call bounded by
// the attempt's budget (the member's own timeout, or the group's), all of
// them within a window of as many budgets as calls may be made. A member
// that keeps answering is given the time its answers take; one that hangs
// ends the attempt at its first hung call.
type calls[T any] struct {
	ctx    context.Context
	cancel context.CancelFunc
	a      attempt[T]
}

func (a attempt[T]) calls(n int) *calls[T] {
	ctx, cancel := context.WithDeadline(a.base, a.began.Add(time.Duration(n+1)*a.budget)) //nolint:gosec // G118: calls.close calls it
	return &calls[T]{ctx: ctx, cancel: cancel, a: a}
}

func (c *calls[T]) close() { c.cancel() }

// spent reports whether the window has closed.
func (c *calls[T]) spent() bool { return c.ctx.Err() != nil }

func (c *calls[T]) consume(data T, tok dedupToken) error {
	if c.a.m.ownDeadline {
		return c.a.call(c.ctx, data, tok)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.a.budget)
	defer cancel()
	return c.a.call(ctx, data, tok)
}

// isolatable: the member refused the whole batch, at once, as bad data, and
// the batch has more than one item. A refusal joined from several results
// (a kafka member writing several records), or from a member that wrote the
// batch in several inserts (the clickhouse exporter inserts each metric type
// into its own table, and joins their errors one by one, so that one failed
// table looks like one result), may come after part of the batch was
// written: sending halves again would write that part again, under other
// tokens, so ClickHouse could not drop it. A refusal made before anything
// is written (the exporter's check of metric types) is isolatable.
func (g *group[T]) isolatable(m *member[T], err error, data T) bool {
	if _, partial := g.sig.failedPart(err); partial {
		return false
	}
	if !errclass.IsPermanent(err) || g.sig.items(data) < 2 || severalResults(err) {
		return false
	}
	return !m.writesSeveral || g.sig.kinds(data) < 2 || errclass.RefusedBeforeWriting(err)
}

// severalResults reports whether err joins more than one error.
func severalResults(err error) bool {
	for err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs := j.Unwrap()
			if len(errs) != 1 {
				return len(errs) > 1
			}
			err = errs[0]
			continue
		}
		err = errors.Unwrap(err)
	}
	return false
}

// isolateBudget bounds the calls isolate makes for a batch of n items:
// enough to find one refused item by halving (two calls per level, about
// 2·log2 n), so a batch with many refused items costs no more than that.
func isolateBudget(n int) int { return 2 * bits.Len(uint(n)) }

// isolate finds the items a member refuses as bad data by halving the batch
// and sending the halves, depth first (so the order of what is taken is
// kept). What is refused, and what is left when the budget of calls or the
// window is spent, is returned as the failed part with the refusal; when the
// member fails transiently (an outage in the middle), with that error, so
// that the breaker is charged and the rest moves on.
//
// Each half is sent with the batch's token and the hash of the half's
// content (partToken).
func (g *group[T]) isolate(c *calls[T], data T, refusal error) error {
	budget := isolateBudget(g.sig.items(data))
	first, second := g.sig.halve(data)
	stack := []T{second, first}
	var left []T
	var transient error
	took := false
	for len(stack) > 0 {
		part := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if budget == 0 || transient != nil || c.spent() {
			left = append(left, part)
			continue
		}
		budget--
		err := c.consume(part, g.partToken(c.a.token, part))
		switch {
		case err == nil:
			took = true
		case !errclass.IsPermanent(err) && c.spent():
			// The window closed on a member that was answering: the
			// rest goes on with the refusal, not as an outage.
			left = append(left, part)
		case !errclass.IsPermanent(err):
			transient = err
			if failed, ok := g.sig.failedPart(err); ok {
				took, part = true, failed
			}
			left = append(left, part)
		case g.isolatable(c.a.m, err, part):
			a, b := g.sig.halve(part)
			stack = append(stack, b, a)
		default:
			refusal = err
			if failed, ok := g.sig.failedPart(err); ok {
				took, part = true, failed
			}
			left = append(left, part)
		}
	}
	return g.partial(took, left, firstNonNil(transient, refusal))
}

// sendInParts sends the parts of a batch split to fit a member's records,
// each with a token of its own (partToken).
// Items too large to fit even alone (oversize) are refused with a permanent
// error saying which limit to raise. A part refused as bad data is isolated
// and the next part sent; a transient failure stops the rest, which is
// returned with it as the failed part.
func (g *group[T]) sendInParts(c *calls[T], parts []T, oversize T, largest, budget int) error {
	var left []T
	var transient, refusal error
	took := false
	for _, p := range parts {
		if transient != nil {
			left = append(left, p)
			continue
		}
		// A part is not the batch: a token of its own (partToken).
		err := c.consume(p, g.partToken(c.a.token, p))
		if err != nil && g.isolatable(c.a.m, err, p) {
			err = g.isolate(c, p, err)
		}
		if err == nil {
			took = true
			continue
		}
		if errclass.IsPermanent(err) {
			refusal = err
		} else {
			transient = err
		}
		if failed, ok := g.sig.failedPart(err); ok {
			took, p = true, failed
		}
		left = append(left, p)
	}
	if largest > 0 {
		left = append(left, oversize)
		if refusal == nil {
			refusal = c.a.m.tooLarge(g.sig, g.sig.items(oversize), largest, budget)
		}
	}
	return g.partial(took, left, firstNonNil(transient, refusal))
}

// partial is the result of a call that was made in several sends: nil when
// nothing is left, the error alone when nothing was taken (the caller still
// holds the batch as it was), else a partial success carrying what is left.
func (g *group[T]) partial(took bool, left []T, err error) error {
	if len(left) == 0 {
		return nil
	}
	if !took {
		return err
	}
	return g.sig.withFailedPart(err, g.sig.merge(left))
}

func firstNonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// recordOverhead is what a Kafka record costs besides its key, value and
// headers, with the record batch around it (franz-go admits a record when
// 62 + varint(len) + len <= producer::max_message_bytes), rounded up with
// room for the key the kafka exporter's partitioners may set.
const recordOverhead = 256

// poisonStampBytes is room kept in a dead-letter member's records for the
// headers dlq_routing adds when it poisons a replayed record: keys and
// values (a reason and a time) with their framing. A parked record must fit
// a poison record too, or a refused item could never be kept.
var poisonStampBytes = len(dlqmeta.KeyPoisonReason) + len(dlqmeta.KeyPoisonTime) + 64 + 2*10

// valueBudget is how many bytes of encoded data one record of this member
// may carry for this call: the record limit less the record's overhead and
// headers (the static record_headers and the include_metadata_keys values of
// this call's client metadata, the DLQ stamp among them, and room for a
// poison stamp on a dead-letter member), divided by how much larger the
// member's encoding is than OTLP protobuf, by which parts are measured.
func (m *member[T]) valueBudget(ctx context.Context) int {
	headers := m.cfg.facts.headerBytes
	if m.cfg.deadLetter {
		headers += poisonStampBytes
	}
	md := client.FromContext(ctx).Metadata
	for _, k := range m.cfg.facts.metadataKeys {
		for _, v := range md.Get(k) {
			headers += len(k) + len(v) + 10
		}
	}
	budget := (m.recordLimit - recordOverhead - headers) / m.encodingFactor
	return max(budget, 1)
}

// tooLarge is the permanent refusal of items that do not fit a record even
// alone: the one case in which data handed to a DLQ member cannot be parked.
func (m *member[T]) tooLarge(sig signal[T], items, largest, budget int) error {
	return consumererror.NewPermanent(fmt.Errorf("%w: %d %s, the largest encoding to %d bytes, each larger than one record of members[%d] %s can carry "+
		"(%d bytes of data within producer::max_message_bytes %d); raise producer::max_message_bytes of %s, and the topic's max.message.bytes to match",
		kerr.MessageTooLarge, items, sig.itemName, largest, m.index, m.name, budget, m.recordLimit, m.name))
}
