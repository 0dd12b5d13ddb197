// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// outageSide is one of the collectors of the outage scenario.
type outageSide struct {
	v     variant
	desc  string
	run   string
	col   *stack.Collector
	meter *procMeter
	load  <-chan *loadgen.Result
	res   *loadgen.Result

	rssSeries               []float64 // MiB, at each sample
	rssAtStop, rssAtEnd     float64
	hwmAtEnd                float64
	queueAtEnd, failedAtEnd float64 // plain exporter
	failedFinal             float64 // plain exporter, after settling
	enqueueFailed           float64 // plain exporter: refused by a full queue
	dlqSpansAtEnd           int64   // group
	dlqRecordsAtEnd         int64   // group
	rows, distinct          int64
	settled                 time.Duration // after ClickHouse started
	done, allIn, isGroup    bool
}

func (sd *outageSide) sent() int64 {
	return (sd.res.Accepted.Load() + sd.res.Rejected.Load()) * steadyBatch
}
func (sd *outageSide) accepted() int64 { return sd.res.TotalItems() }
func (sd *outageSide) refused() int64  { return sd.res.Rejected.Load() * steadyBatch }
func (sd *outageSide) lost() int64     { return sd.accepted() - sd.distinct }

// outage runs, side by side (collectors at once, same load, same
// devclickhouse), the reference configuration and the plain clickhouse
// exporter with its defaults, once with the reference configuration's
// processors and once behind a batch processor as its README configures it,
// through one long ClickHouse outage, and counts what each lost.
func (b *bench) outage() (*section, error) {
	began, loadBefore := time.Now(), uptime()
	o := b.opts
	s, err := b.newSite("outage", true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if cerr := checkSamePipeline(b.root, chDefault.Config); cerr != nil {
		return nil, cerr
	}
	plain := chDefault
	plain.Key = "plain"
	plainBatch := chDefault
	plainBatch.Key, plainBatch.Config = "plain-batch", "testbed/bench/testdata/clickhouse-batch.yaml"
	sides := []*outageSide{
		{v: groupBatch, isGroup: true, desc: "the reference configuration: failover_group(clickhouse/live, kafka/dlq) batching in its own `sending_queue` (`wait_for_result`), DLQ replay through a group of one; `memory_limiter`, no batch processor"},
		{v: plain, desc: "`testbed/bench/testdata/clickhouse.yaml`: the same receiver and processors, the plain clickhouse exporter with its defaults (`sending_queue` on: 1000 requests in memory, 10 consumers; `retry_on_failure` on: 5 s growing ×1.5 up to 30 s, 300 s in all)"},
		{v: plainBatch, desc: "`testbed/bench/testdata/clickhouse-batch.yaml`: the same exporter behind a batch processor (1000 spans / 500 ms), as the clickhouse exporter's README configures it and as the brief measured it"},
	}
	for _, sd := range sides {
		sd.run = b.runName("outage", sd.v.Key)
		if sd.col, err = b.collector(s, sd.v, sd.run); err != nil {
			return nil, err
		}
		defer func() { _ = sd.col.Stop(60 * time.Second) }()
	}
	// One minute of normal operation, then the outage; the load stops when
	// ClickHouse comes back, so that whatever arrives afterwards is recovered
	// data (at 200 spans/s and a 6-minute outage: 84,000 spans, as in the
	// brief's measurement of the plain exporter).
	const warm = time.Minute
	total := warm + o.outage
	for _, sd := range sides {
		sd.meter = newProcMeter(sd.col.Pid())
		sd.load = b.steadyLoad(sd.col, sd.run, o.outageRate, total)
	}
	logf("outage: %s spans/s into each collector for %v; ClickHouse down from %v to the end of the load", f0(o.outageRate), total, warm)
	sample := func() {
		for _, sd := range sides {
			sd.meter.sample()
			sd.rssSeries = append(sd.rssSeries, mib(sd.meter.last.RSS))
		}
	}
	rssNow := func() string {
		var parts []string
		for _, sd := range sides {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", sd.v.Key, sd.rssSeries[len(sd.rssSeries)-1]))
		}
		return strings.Join(parts, ", ")
	}
	if err := stack.Sleep(b.ctx, warm); err != nil {
		return nil, err
	}
	sample()
	for _, sd := range sides {
		sd.rssAtStop = mib(sd.meter.last.RSS)
	}
	tStop := time.Now()
	if err := s.ch.Stop(30 * time.Second); err != nil {
		return nil, err
	}
	const every = 30 * time.Second
	for time.Since(tStop) < o.outage-every/2 {
		if err := stack.Sleep(b.ctx, min(every, o.outage-time.Since(tStop))); err != nil {
			return nil, err
		}
		sample()
		logf("outage: %v into the outage; RSS %s", time.Since(tStop).Round(time.Second), rssNow())
	}
	if err := stack.Sleep(b.ctx, time.Until(tStop.Add(o.outage))); err != nil {
		return nil, err
	}
	// End of the outage (and of the load, but for requests a client is still
	// retrying): what each collector holds.
	sample()
	for _, sd := range sides {
		sd.rssAtEnd = mib(sd.meter.last.RSS)
		sd.hwmAtEnd = mib(sd.meter.last.HWM)
		if sd.isGroup {
			sd.dlqSpansAtEnd, _ = delivered(sd.col, "kafka/ingest.dlq")
			sd.dlqRecordsAtEnd, _ = s.endOffsets(b.ctx)
			continue
		}
		sd.queueAtEnd, _ = sd.col.Metric("otelcol_exporter_queue_size", "exporter=clickhouse")
		sd.failedAtEnd, _ = sd.col.Metric("otelcol_exporter_send_failed_spans", "exporter=clickhouse")
	}
	tStart := time.Now()
	if _, err := s.ch.Start(60 * time.Second); err != nil {
		return nil, err
	}
	tReady := time.Now()
	// The load ends with the outage: the replay group's first insert is
	// the failback to measure (from ClickHouse answering).
	replayBack := firstDelivery(b.ctx, sides[0].col, "failover_group/replay", "clickhouse/replay")
	logf("outage: ClickHouse started again after %v", tStart.Sub(tStop).Round(time.Second))
	for _, sd := range sides {
		sd.res = <-sd.load
	}
	tReplayBack := <-replayBack
	logf("outage: first replayed insert %s after ClickHouse answered", since(tReplayBack, tReady))
	outageLen := tStart.Sub(tStop)
	// Settle: until every accepted id is in ClickHouse, or nothing new
	// arrived for 90 s (a queue drained; what it dropped does not come).
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Minute)
	defer cancel()
	lastChange := map[*outageSide]time.Time{}
	for _, sd := range sides {
		lastChange[sd] = time.Now()
	}
	for {
		pending := false
		for _, sd := range sides {
			if sd.done {
				continue
			}
			rows, distinct, err := s.counts(ctx, sd.run)
			if err != nil {
				pending = true
				continue
			}
			if distinct != sd.distinct || rows != sd.rows {
				sd.rows, sd.distinct = rows, distinct
				lastChange[sd] = time.Now()
				sd.settled = time.Since(tStart)
			}
			if distinct >= sd.accepted() {
				sd.done, sd.allIn = true, true
				continue
			}
			if time.Since(lastChange[sd]) > 90*time.Second {
				sd.done = true
				continue
			}
			pending = true
		}
		if !pending {
			break
		}
		if err := stack.Sleep(ctx, 2*time.Second); err != nil {
			if b.ctx.Err() != nil {
				return nil, err
			}
			break // report what arrived within 10 minutes
		}
	}
	for _, sd := range sides {
		if !sd.isGroup {
			sd.failedFinal, _ = sd.col.Metric("otelcol_exporter_send_failed_spans", "exporter=clickhouse")
			sd.enqueueFailed, _ = sd.col.Metric("otelcol_exporter_enqueue_failed_spans", "exporter=clickhouse")
		}
	}

	var w strings.Builder
	b.header(&w, began, loadBefore)
	fmt.Fprintf(&w, "Three collectors at once against the same devclickhouse, each loaded with %s spans/s (requests of %d spans with %d attributes, 2 connections; a refused request is retried by the client for up to 2 min, then given up) for %v: %v of normal operation, then a ClickHouse outage of **%v** (measured: %v; the plain exporter's retry budget is 300 s). ClickHouse starts again when the load ends, so everything that arrives afterwards is recovered data (or a request a client was still retrying); the bench then waits until every accepted id is in ClickHouse, or nothing new arrived for 90 s.\n\n",
		f0(o.outageRate), steadyBatch, o.attributes, total, warm, o.outage, outageLen.Round(100*time.Millisecond))
	for _, sd := range sides {
		fmt.Fprintf(&w, "- `%s`: %s.\n", sd.v.Key, sd.desc)
	}
	fmt.Fprintf(&w, "\n|")
	for _, sd := range sides {
		fmt.Fprintf(&w, " | `%s`", sd.v.Key)
	}
	fmt.Fprintf(&w, " |\n|---|")
	for range sides {
		fmt.Fprintf(&w, "---|")
	}
	fmt.Fprintln(&w)
	row := func(label string, f func(sd *outageSide) string) {
		fmt.Fprintf(&w, "| %s |", label)
		for _, sd := range sides {
			fmt.Fprintf(&w, " %s |", f(sd))
		}
		fmt.Fprintln(&w)
	}
	offered := int64(o.outageRate * total.Seconds())
	row("spans the client had to send (rate × time)", func(*outageSide) string { return thousands(offered) })
	row("could not even be sent (the client's connections were stuck retrying refused requests)", func(sd *outageSide) string { return thousands(max(0, offered-sd.sent())) })
	row("spans the client sent", func(sd *outageSide) string { return thousands(sd.sent()) })
	row("refused to the client (after 2 min of retries)", func(sd *outageSide) string { return thousands(sd.refused()) })
	row("accepted by the collector", func(sd *outageSide) string { return thousands(sd.accepted()) })
	row("distinct ids in ClickHouse at the end", func(sd *outageSide) string { return thousands(sd.distinct) })
	row("**lost after being accepted**", func(sd *outageSide) string { return "**" + thousands(sd.lost()) + "**" })
	row("duplicate rows", func(sd *outageSide) string { return thousands(sd.rows - sd.distinct) })
	row("RSS when ClickHouse stopped, MiB", func(sd *outageSide) string { return f0(sd.rssAtStop) })
	row("**RSS at the end of the outage, MiB**", func(sd *outageSide) string { return "**" + f0(sd.rssAtEnd) + "**" })
	row("peak RSS (VmHWM) at the end of the outage, MiB", func(sd *outageSide) string { return f0(sd.hwmAtEnd) })
	row("held at the end of the outage", func(sd *outageSide) string {
		if sd.isGroup {
			return fmt.Sprintf("nothing in memory; %s spans parked in Kafka (%s records)", thousands(sd.dlqSpansAtEnd), thousands(sd.dlqRecordsAtEnd))
		}
		return f0(sd.queueAtEnd) + " requests in the in-memory queue"
	})
	row("dropped by the exporter after its retry budget (`otelcol_exporter_send_failed_spans`): at the end of the outage / final", func(sd *outageSide) string {
		if sd.isGroup {
			return "–"
		}
		return f0(sd.failedAtEnd) + " / " + f0(sd.failedFinal)
	})
	row("refused by a full queue (`otelcol_exporter_enqueue_failed_spans`)", func(sd *outageSide) string {
		if sd.isGroup {
			return "–"
		}
		return f0(sd.enqueueFailed)
	})
	row("ClickHouse ready → first replayed insert (failback)", func(sd *outageSide) string {
		if !sd.isGroup {
			return "–"
		}
		return since(tReplayBack, tReady)
	})
	row("ClickHouse started → last recovered row", func(sd *outageSide) string {
		if !sd.allIn {
			return secs(sd.settled) + " (then nothing more)"
		}
		return secs(sd.settled)
	})
	fmt.Fprintf(&w, "\nRSS every %v from the stop to the end of the outage (MiB):\n\n", every)
	for _, sd := range sides {
		fmt.Fprintf(&w, "- `%s`: %s\n", sd.v.Key, series(sd.rssSeries[1:]))
	}
	g, p, pb := sides[0], sides[1], sides[2]
	_, breakerMax := breakerSettings(b.root)
	fmt.Fprintf(&w, `
Interpretation:

- `+"`group-batch`"+` holds nothing in memory: every batch goes to Kafka, so its RSS stays flat whatever the outage's length, and the replay brings the DLQ back into ClickHouse afterwards: %s spans lost, %s refused. Its replay began %s after ClickHouse answered, however long the outage: `+"`clickhouse/replay`"+`'s background probe pings ClickHouse every `+"`probe::interval`"+` (the breaker's open period, up to %s, no longer decides), and the DLQ consumer retries every ~0.5 s (`+"`error_backoff`"+`). Its last recovered row came %s after ClickHouse returned: the DLQ drains one Kafka record per insert (%s records for %s spans: a record is one of the ingest group's batches, merged further while ClickHouse was down by `+"`dead_letter_batch`"+`); the drain scenario measures its rate.
- `+"`plain-batch`"+` (what the brief measured) keeps accepting during the outage and holds the data in its in-memory queue (%s MiB at the end of the outage against %s MiB for the group), retrying each batch until its 300 s budget runs out, then drops it: %s spans lost after being accepted (the brief: 998 of 84,000 at 200 spans/s). What is still queued when ClickHouse returns is delivered; all of it would be lost by a collector restart during the outage.
- `+"`plain`"+` has the same pipeline as the group, so its queue holds requests as the client sent them (%d spans): its 1000 requests fill in %s of outage, then it refuses data: the client's connections get stuck retrying refused requests, %s spans could not even be sent, %s were refused for good after 2 min of retries, %s lost after being accepted. Whatever the client does with what it cannot send (an SDK drops it when its own buffer is full), none of it reaches ClickHouse.
`, thousands(g.lost()), thousands(g.refused()), since(tReplayBack, tReady), breakerMax, secs(g.settled), thousands(g.dlqRecordsAtEnd), thousands(g.dlqSpansAtEnd),
		f0(pb.rssAtEnd), f0(g.rssAtEnd), thousands(pb.lost()),
		steadyBatch, time.Duration(float64(time.Second)*1000*steadyBatch/o.outageRate).Round(time.Second), thousands(max(0, offered-p.sent())), thousands(p.refused()), thousands(p.lost()))
	rowsOut := []string{
		fmt.Sprintf("| outage | %v outage at %s spans/s: group vs plain exporter (with and without batch processor) | group loses 0 | lost after acceptance: group %s, plain %s (+%s refused or never sent), plain-batch %s; RSS at the end %s / %s / %s MiB | %s |",
			o.outage, f0(o.outageRate), thousands(g.lost()), thousands(p.lost()), thousands(p.refused()+max(0, offered-p.sent())), thousands(pb.lost()),
			f0(g.rssAtEnd), f0(p.rssAtEnd), f0(pb.rssAtEnd), verdict(g.lost() == 0 && g.refused() == 0)),
		fmt.Sprintf("| outage | failback after the %v outage: ClickHouse ready → first replayed insert | failback ≤ 2 s | %s | %s |",
			o.outage, since(tReplayBack, tReady), verdict(within(tReplayBack, tReady, 2*time.Second))),
	}
	return &section{name: "outage", body: w.String(), rows: rowsOut}, nil
}

func series(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = f0(x)
	}
	return strings.Join(parts, ", ")
}
