// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// redrive.go copies poison records back into a DLQ topic once the cause is
// fixed (a schema change, a server setting), so that the replay takes them
// again. It is a dry run unless --apply, and idempotent: every copy carries
// the record it was copied from in a header, and records already copied into
// the target topic are not copied again. A copy keeps the stamp, the
// deduplication token above all (ClickHouse drops a copy of rows it already
// took by it), and loses the poison stamp: it is DLQ data again.

// headerRedrivenFrom names, on a copy, the record it was copied from:
// "<topic>/<partition>/<offset>".
const headerRedrivenFrom = "otelcol-failover-redriven-from"

type redriveOptions struct {
	from, to string
	// reason is a path.Match pattern on the poison reason.
	reason string
	since  time.Time
	apply  bool
}

type redrivePair struct{ src, dst *topicInfo }

// redriveCounts is one pair's outcome.
type redriveCounts struct {
	matched, already, copies, filtered int64
}

func runRedrive(ctx context.Context, s *setup, sess *session, o redriveOptions, stdout io.Writer) error {
	pairs, err := redrivePairs(s, o.from, o.to)
	if err != nil {
		return err
	}
	if o.reason != "" {
		if _, err := path.Match(o.reason, ""); err != nil {
			return fmt.Errorf("--reason %q is not a valid pattern: %w", o.reason, err)
		}
	}
	type result struct {
		redrivePair
		redriveCounts
	}
	var results []result
	var missing []error
	for _, p := range pairs {
		c, err := redriveOne(ctx, sess, p, o, stdout)
		if err != nil {
			// A topic nobody created is reported, and no reason to leave
			// the other topics as they are.
			if isNoTopic(err) {
				missing = append(missing, err)
				continue
			}
			return err
		}
		results = append(results, result{p, c})
	}
	verb := "TO COPY"
	if o.apply {
		verb = "COPIED"
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FROM\tTO\tMATCHED\tALREADY REDRIVEN\t%s\tNOT MATCHED\n", verb)
	var total int64
	for _, r := range results {
		total += r.copies
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", r.src.name, r.dst.name, r.matched, r.already, r.copies, r.filtered)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.apply {
		fmt.Fprintf(stdout, "copied %d record%s\n", total, plural(int(total)))
	} else {
		fmt.Fprintf(stdout, "dry run: nothing written; run again with --apply to copy %d record%s\n", total, plural(int(total)))
	}
	return joinMissing(missing)
}

// redrivePairs resolves --from and --to into source and target topics of
// the same signal.
func redrivePairs(s *setup, from, to string) ([]redrivePair, error) {
	var srcs []*topicInfo
	if from == rolePoison {
		for _, t := range s.topics {
			if t.role == rolePoison {
				srcs = append(srcs, t)
			}
		}
		if len(srcs) == 0 {
			return nil, fmt.Errorf("%s has no poison topics (kafka members with `dead_letter: false`): nothing to redrive", s.path)
		}
	} else {
		t := s.topic(from)
		if t == nil || t.role != rolePoison {
			return nil, fmt.Errorf("--from %q is not a poison topic of %s (poison topics: %s): pass `--from poison` or one of them",
				from, s.path, strings.Join(s.names(rolePoison), ", "))
		}
		srcs = []*topicInfo{t}
	}
	if to != roleDLQ {
		if t := s.topic(to); t == nil || t.role != roleDLQ {
			return nil, fmt.Errorf("--to %q is not a DLQ topic of %s (DLQ topics: %s): pass `--to dlq` or one of them",
				to, s.path, strings.Join(s.names(roleDLQ), ", "))
		}
	}
	var pairs []redrivePair
	for _, src := range srcs {
		var dsts []*topicInfo
		for _, t := range s.topics {
			if t.role == roleDLQ && t.signal == src.signal && (to == roleDLQ || to == t.name) {
				dsts = append(dsts, t)
			}
		}
		switch {
		case len(dsts) == 0 && from != rolePoison:
			return nil, fmt.Errorf("no DLQ topic of %s takes %s like %q: pass a DLQ topic of the same signal with --to", s.path, src.signal, src.name)
		case len(dsts) == 0:
			continue // --from poison --to <topic>: only sources of its signal
		case len(dsts) > 1:
			names := make([]string, len(dsts))
			for i, d := range dsts {
				names[i] = d.name
			}
			return nil, fmt.Errorf("several DLQ topics take %s (%s): name the target with --to", src.signal, strings.Join(names, ", "))
		}
		pairs = append(pairs, redrivePair{src: src, dst: dsts[0]})
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("no poison topic of %s has the signal of --to %q", s.path, to)
	}
	return pairs, nil
}

func redriveOne(ctx context.Context, sess *session, p redrivePair, o redriveOptions, stdout io.Writer) (redriveCounts, error) {
	var c redriveCounts
	srcParts, err := sess.partitions(ctx, p.src)
	if err != nil {
		return c, err
	}
	dstParts, err := sess.partitions(ctx, p.dst)
	if err != nil {
		return c, err
	}
	// What earlier runs copied: the target's own headers are the only
	// record of it, so a rerun (or a run after a crash) copies the rest.
	done := map[string]bool{}
	err = sess.read(ctx, p.dst, dstParts, func(rec *kgo.Record) bool {
		if from := header(rec, headerRedrivenFrom); from != "" {
			done[from] = true
		}
		return true
	})
	if err != nil {
		return c, err
	}
	var producer *kgo.Client
	if o.apply {
		if producer, err = sess.client(ctx, p.dst.conn); err != nil {
			return c, err
		}
	}
	var mu sync.Mutex
	var produceErr error
	verb := "would copy"
	if o.apply {
		verb = "copy"
	}
	err = sess.read(ctx, p.src, srcParts, func(rec *kgo.Record) bool {
		id := fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
		if !matches(rec, o) {
			c.filtered++
			return true
		}
		c.matched++
		if done[id] {
			c.already++
			return true
		}
		c.copies++
		fmt.Fprintf(stdout, "%s %s -> %s (poison reason %s, poisoned %s)\n", verb, id, p.dst.name,
			orNone(reasonOf(rec)), timeOf(rec).Format(tableTime))
		if producer != nil {
			producer.Produce(ctx, redriven(rec, p.dst.name, id), func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil && produceErr == nil {
					produceErr = err
				}
			})
		}
		return true
	})
	if producer != nil {
		// Whatever was read is written before an error is returned: a
		// rerun then skips it.
		if ferr := producer.Flush(ctx); ferr != nil && err == nil {
			err = ferr
		}
		mu.Lock()
		if produceErr != nil && err == nil {
			err = fmt.Errorf("write to topic %q on brokers %v: %w: records written before the error are not copied again by a rerun",
				p.dst.name, p.dst.conn.brokers, produceErr)
		}
		mu.Unlock()
	}
	return c, err
}

// reasonOf is why a record was poisoned, or, without a poison stamp, why
// it was parked.
func reasonOf(rec *kgo.Record) string {
	if r := header(rec, dlqmeta.KeyPoisonReason); r != "" {
		return r
	}
	return header(rec, dlqmeta.KeyReason)
}

// timeOf is when a record was poisoned, or parked, or written.
func timeOf(rec *kgo.Record) time.Time {
	for _, k := range []string{dlqmeta.KeyPoisonTime, dlqmeta.KeyTime} {
		if t, err := time.Parse(time.RFC3339Nano, header(rec, k)); err == nil {
			return t.UTC()
		}
	}
	return rec.Timestamp.UTC()
}

func matches(rec *kgo.Record, o redriveOptions) bool {
	if o.reason != "" {
		if ok, _ := path.Match(o.reason, reasonOf(rec)); !ok {
			return false
		}
	}
	return o.since.IsZero() || !timeOf(rec).Before(o.since)
}

// redriven is the copy of rec for topic: same key, value and headers,
// less the poison stamp and an earlier copy's origin.
func redriven(rec *kgo.Record, topic, from string) *kgo.Record {
	out := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		switch h.Key {
		case dlqmeta.KeyPoisonReason, dlqmeta.KeyPoisonTime, headerRedrivenFrom:
			continue
		}
		out.Headers = append(out.Headers, h)
	}
	out.Headers = append(out.Headers, kgo.RecordHeader{Key: headerRedrivenFrom, Value: []byte(from)})
	return out
}

// parseSince reads --since: a time (RFC 3339 or a date) or a duration
// back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateTime, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("--since " + s + " is neither a time (2026-11-26T10:00:00Z, 2026-11-26) nor a duration back from now (2h)")
}
