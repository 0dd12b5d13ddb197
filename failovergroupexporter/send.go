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

// send hands a batch to a member's exporter and returns what the member did
// not take as a partial-success error. Two things happen only when needed,
// never on the healthy path:
//   - a member with a record size limit (kafka) gets the batch in parts that
//     each fit one record, every part with the same context (the same DLQ
//     stamp);
//   - a batch the member refuses as bad data is halved until the refused
//     items are found, so that the rest is still taken (isolate).
//
// Either makes several calls; together they end by end, the attempt's
// deadline (a member that bounds each call itself would give every call a
// fresh timeout).
func (g *group[T]) send(ctx context.Context, m *member[T], exp *memberExporter[T], data T, end time.Time) error {
	if m.recordLimit > 0 {
		return g.sendInParts(ctx, m, exp, data, end)
	}
	return g.sendOne(ctx, exp, data, end)
}

// sendOne is one call, then isolate if the member refused the data as bad.
func (g *group[T]) sendOne(ctx context.Context, exp *memberExporter[T], data T, end time.Time) error {
	err := exp.consume(ctx, data)
	if err == nil || !g.isolatable(err, data) {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	return g.isolate(ctx, exp, data, err)
}

// isolatable: the member refused the whole batch, at once, as bad data, and
// the batch has more than one item. A refusal joined from several results
// (the clickhouse exporter inserts each metric type on its own; a kafka
// member writing several records) may come after part of the batch was
// written: sending halves again would write that part again.
func (g *group[T]) isolatable(err error, data T) bool {
	if _, partial := g.sig.failedPart(err); partial {
		return false
	}
	return errclass.IsPermanent(err) && g.sig.items(data) > 1 && !severalResults(err)
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
// kept). What is refused, and what is left when the budget of calls or of
// time is spent, is returned as the failed part with the refusal; when the
// member fails transiently (an outage in the middle), with that error, so
// that the breaker is charged and the rest moves on.
func (g *group[T]) isolate(ctx context.Context, exp *memberExporter[T], data T, refusal error) error {
	budget := isolateBudget(g.sig.items(data))
	first, second := g.sig.halve(data)
	stack := []T{second, first}
	var left []T
	var transient error
	took, spent := false, false
	for len(stack) > 0 {
		part := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if budget == 0 || transient != nil || spent || ctx.Err() != nil {
			left = append(left, part)
			continue
		}
		budget--
		err := exp.consume(ctx, part)
		switch {
		case err == nil:
			took = true
		case !errclass.IsPermanent(err) && ctx.Err() != nil:
			// The attempt's time ran out: the member was answering, the
			// isolation took too long. The rest goes on with the refusal.
			spent = true
			left = append(left, part)
		case !errclass.IsPermanent(err):
			transient = err
			if failed, ok := g.sig.failedPart(err); ok {
				took, part = true, failed
			}
			left = append(left, part)
		case g.isolatable(err, part):
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

// sendInParts sends a batch to a member whose records are limited in size,
// in parts that fit. Items too large to fit even alone are refused with a
// permanent error saying which limit to raise. A part refused as bad data is
// left and the next part is sent; a transient failure stops the rest, which
// is returned with it as the failed part.
func (g *group[T]) sendInParts(ctx context.Context, m *member[T], exp *memberExporter[T], data T, end time.Time) error {
	budget := m.valueBudget(ctx)
	parts, oversize, largest := g.sig.splitBySize(data, budget)
	if len(parts) == 1 && largest == 0 {
		return g.sendOne(ctx, exp, parts[0], end) // fits whole
	}
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var left []T
	var transient, refusal error
	took := false
	for _, p := range parts {
		if transient != nil {
			left = append(left, p)
			continue
		}
		err := g.sendOne(ctx, exp, p, end)
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
			refusal = m.tooLarge(g.sig, g.sig.items(oversize), largest, budget)
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
