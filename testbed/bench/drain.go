// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// drainCase is one request size of the drain scenario.
type drainCase struct {
	name    string
	spans   int // per client request
	clients int // connections of the saturating live load
}

// The clients of the saturating load: enough requests in flight to fill the
// ingest group's batches (min_size 5,000) several times over while each
// waits for its batch to be written.
var drainCases = []drainCase{
	{name: "small", spans: 100, clients: 128},
	{name: "large", spans: 1000, clients: 32},
}

// drainRun is what one case measured.
type drainRun struct {
	c drainCase
	// The live path at saturation, ClickHouse up.
	liveRate              float64 // spans/s written (accepted: wait_for_result), mean of:
	liveBefore, liveAfter float64 // before the quiet phase, after the drain
	// Client answer times at the steady rate: synchronous group (no
	// sending_queue), the reference configuration quiet, and during the
	// drain.
	syncP, quietP, drainP []time.Duration
	syncN, quietN, drainN int
	// During the outage (parked: dead_letter_batch::linger), and between
	// ClickHouse's return and the first replayed insert (failback).
	outageP, failbackP []time.Duration
	outageN, failbackN int
	// The outage and the drain.
	parked, records  int64 // spans and DLQ records parked
	replayed         int64 // spans the replay wrote
	drainTime        time.Duration
	failback         time.Duration // ClickHouse ready → first replayed insert
	runTime          time.Duration // first replayed insert → last replayed insert
	replayRate       float64       // replayed / runTime: the replay's throughput once running
	wholeRate        float64       // replayed / drainTime
	liveDuringDrain  float64       // spans/s the live path wrote meanwhile
	rssBefore        float64       // MiB, before the outage
	rssOutage        float64       // MiB, peak sampled during the outage
	rssOutageHalves  [2]float64    // MiB, peaks of its first and second half: flat or growing
	rssDrain         float64       // MiB, peak sampled during the drain
	accepted, lost   int64
	dups             int64
	drained, allInCH bool
}

// drain measures how fast the DLQ drains after an outage compared with what
// the live path writes into the same devclickhouse, for small and large
// client requests, and what the drain does to live clients' answer times
// and to the collector's memory.
func (b *bench) drain() (*section, error) {
	began, loadBefore := time.Now(), uptime()
	var runs []*drainRun
	for _, c := range drainCases {
		if !slices.Contains(b.opts.drainCases, c.name) {
			continue
		}
		r, err := b.drainCase(c)
		if err != nil {
			return nil, fmt.Errorf("%s requests: %w", c.name, err)
		}
		runs = append(runs, r)
	}
	o := b.opts
	var w strings.Builder
	b.header(&w, began, loadBefore)
	fmt.Fprintf(&w, "The reference configuration (the ingest group batches in its `sending_queue`: up to 500 ms or 5,000 items, `wait_for_result`), one collector per case on a fresh devclickhouse and devkafka (DLQ topics of 4 partitions); traces with %d attributes per span. For each client request size: %v of saturating load (closed loop, many clients) measures the live path's rate into devclickhouse (on a collector of its own, stopped afterwards); %v at %s spans/s measures quiet answer times (and the same against the synchronous group, the reference configuration without its `sending_queue`: the \"before\"); then ClickHouse is stopped for **%v** under the same %s spans/s, started again, and the load goes on until the replay consumer committed every DLQ record. RSS sampled every second.\n\n",
		o.attributes, o.drainLive, o.drainQuiet, f0(o.drainRate), o.drainOutage, f0(o.drainRate))
	fmt.Fprintf(&w, "| | %s |\n|---|%s\n", joinCases(runs, func(r *drainRun) string { return fmt.Sprintf("%d-span requests", r.c.spans) }), strings.Repeat("---|", len(runs)))
	row := func(label string, f func(r *drainRun) string) {
		fmt.Fprintf(&w, "| %s | %s |\n", label, joinCases(runs, f))
	}
	row("live path at saturation, spans/s into devclickhouse: mean (before / after the drain)", func(r *drainRun) string {
		return fmt.Sprintf("%s (%s / %s)", f0(r.liveRate), f0(r.liveBefore), f0(r.liveAfter))
	})
	row("backlog: spans parked (DLQ records)", func(r *drainRun) string {
		return fmt.Sprintf("%s (%s records, %s spans each)", thousands(r.parked), thousands(r.records), f0(float64(r.parked)/float64(max(r.records, 1))))
	})
	row("drain time: ClickHouse ready → every record committed (of which ready → first replayed insert)", func(r *drainRun) string {
		return fmt.Sprintf("%s (%s)", secs(r.drainTime), secs(r.failback))
	})
	row("replay running: first replayed insert → last replayed insert", func(r *drainRun) string { return secs(r.runTime) })
	row("**replay rate once running, spans/s** (first → last replayed insert)", func(r *drainRun) string { return "**" + f0(r.replayRate) + "**" })
	row("replay rate over the whole drain, spans/s", func(r *drainRun) string { return f0(r.wholeRate) })
	row("**replay / live**", func(r *drainRun) string { return "**" + f2(r.replayRate/r.liveRate) + "**" })
	row("live data written during the drain, spans/s", func(r *drainRun) string { return f0(r.liveDuringDrain) })
	row("client p50 / p99, synchronous group (before)", func(r *drainRun) string { return pp(r.syncP, r.syncN) })
	row("client p50 / p99, reference config, quiet (after)", func(r *drainRun) string { return pp(r.quietP, r.quietN) })
	row("client p50 / p99 during the outage (parked in merged records: `dead_letter_batch::linger`)", func(r *drainRun) string { return pp(r.outageP, r.outageN) })
	row("client p50 / p99 sent between ClickHouse's return and the first replayed insert", func(r *drainRun) string { return pp(r.failbackP, r.failbackN) })
	row("client p50 / p99 during the drain (sent between the first and the last replayed insert)", func(r *drainRun) string { return pp(r.drainP, r.drainN) })
	row("**live p99 during the drain / quiet**", func(r *drainRun) string { return "**" + f2(ratioDur(r.drainP, r.quietP)) + "**" })
	row("RSS before the outage / peak in the outage's first half, second half / peak in the drain, MiB", func(r *drainRun) string {
		return fmt.Sprintf("%s / %s, %s / %s", f0(r.rssBefore), f0(r.rssOutageHalves[0]), f0(r.rssOutageHalves[1]), f0(r.rssDrain))
	})
	row("spans accepted / lost / duplicate rows", func(r *drainRun) string {
		return fmt.Sprintf("%s / %s / %s", thousands(r.accepted), thousands(r.lost), thousands(r.dups))
	})
	fmt.Fprintf(&w, `
Interpretation: a DLQ record is one of the ingest group's batches, merged further while ClickHouse is down by `+"`dead_letter_batch`"+` (up to `+"`linger`"+`, 2 s, or 10,000 items, cut to the kafka member's record limit, `+"`producer::max_message_bytes`"+` 8 MiB, lz4-compressed in Kafka), not one client request; the replay writes each record as one insert, one record at a time per partition (4 partitions here). devclickhouse runs one statement at a time with a fixed cost per insert, so the replay's rate is set by the records' size, which at a steady rate is what arrives within `+"`linger`"+`; the live path at saturation writes inserts of 5,000 to 10,000 spans (`+"`sending_queue::batch`"+`). The price of large records is memory while draining: the replay receiver holds every record of a poll decompressed (`+"`max_fetch_size`"+`, 2 MiB, counts compressed bytes: these synthetic spans compress about 40:1, so a poll holds about 25 records) and the records being replayed, one per partition, decoded with their inserts built; `+"`max_fetch_size: 1`"+` bounds that to one record per poll, for a slower drain (failover_group README, "Replay speed"). The outage's RSS is given per half: a second half above the first would be memory growing with the outage's length. The clients' answer times: during the outage a request waits for its merged record (up to `+"`linger`"+`); a request sent after ClickHouse's return but before the group's probe noticed it (within `+"`probe::interval`"+`) is still parked, and its record is written at once when the probe sees ClickHouse; the drain's own window (first to last replayed insert) is what the ×2 goal compares with quiet. Cap the drain with `+"`replay::max_items_per_second`"+` on dlq_routing if live clients need more room.
`)
	var rows []string
	for _, r := range runs {
		rows = append(rows,
			fmt.Sprintf("| drain | %s requests (%d spans): backlog %s spans in %s records after %v at %s spans/s; replay once running vs live path at saturation | replay/live ≥ 0.9 | drained in %s (first replayed insert after %s): %s spans/s vs live %s spans/s: **%s** (over the whole drain %s); %s lost, %s duplicate rows | %s |",
				r.c.name, r.c.spans, thousands(r.parked), thousands(r.records), o.drainOutage, f0(o.drainRate), secs(r.drainTime), secs(r.failback), f0(r.replayRate), f0(r.liveRate), f2(r.replayRate/r.liveRate), f2(r.wholeRate/r.liveRate),
				thousands(r.lost), thousands(r.dups), verdict(r.replayRate >= 0.9*r.liveRate && r.lost == 0 && r.drained)),
			fmt.Sprintf("| drain | %s requests: client p99 quiet (sync group before → batching after) and during the drain; RSS | p99 < 1 s; drain/quiet ≤ 2; RSS ≤ 90 MiB | p99 %s → %s, during the drain %s (×%s); RSS peak %s MiB outage, %s MiB drain | %s |",
				r.c.name, ms(r.syncP[1]), ms(r.quietP[1]), ms(r.drainP[1]), f2(ratioDur(r.drainP, r.quietP)), f0(r.rssOutage), f0(r.rssDrain),
				verdict(r.quietP[1] < time.Second && ratioDur(r.drainP, r.quietP) <= 2 && max(r.rssOutage, r.rssDrain) <= 90)),
		)
	}
	return &section{name: "drain", body: w.String(), rows: rows}, nil
}

func (b *bench) drainCase(c drainCase) (*drainRun, error) {
	o := b.opts
	r := &drainRun{c: c}
	s, err := b.newSite("drain-"+c.name, true)
	if err != nil {
		return nil, err
	}
	defer s.close()

	// Before: the synchronous group's answer times at the steady rate.
	syncRun := b.runName("drain", c.name, "sync")
	syncCol, err := b.collector(s, group, syncRun)
	if err != nil {
		return nil, err
	}
	res := b.load(b.ctx, syncCol, syncRun, c.spans, drainSteadyClients, o.drainRate, o.drainQuiet)
	r.syncP, r.syncN = res.Percentiles(time.Time{}, time.Time{}, 50, 99)
	_ = syncCol.Stop(60 * time.Second)
	logf("drain %s: synchronous group p50/p99 %s", c.name, pp(r.syncP, r.syncN))

	// The live path at saturation, on a collector of its own: the memory
	// that many clients in flight take must not count in the drain's.
	// Measured before and after the drain (the machine's load changes in
	// between); the ratio uses their mean.
	saturate := func(when string) (float64, error) {
		satRun := b.runName("drain", c.name, "saturation", when)
		satCol, serr := b.collector(s, groupBatch, satRun)
		if serr != nil {
			return 0, serr
		}
		defer func() { _ = satCol.Stop(60 * time.Second) }()
		sat := b.load(b.ctx, satCol, satRun, c.spans, c.clients, 0, o.drainLive)
		rate := float64(sat.TotalItems()) / sat.Elapsed.Seconds()
		logf("drain %s: live path %s spans/s at saturation (%d clients), %s", c.name, f0(rate), c.clients, when)
		return rate, nil
	}
	if r.liveBefore, err = saturate("before"); err != nil {
		return nil, err
	}

	run := b.runName("drain", c.name)
	col, err := b.collector(s, groupBatch, run)
	if err != nil {
		return nil, err
	}
	defer func() { _ = col.Stop(60 * time.Second) }()
	meter := newProcMeter(col.Pid())

	// Quiet, then the outage and the drain, under one steady load.
	dlq0, err := s.endOffsets(b.ctx)
	if err != nil {
		return nil, err
	}
	parked0, _ := delivered(col, "kafka/ingest.dlq")
	replayed0, _ := delivered(col, "clickhouse/replay.replay")
	steady := make(chan *loadgen.Result, 1)
	tLoad := time.Now()
	loadCtx, stopLoad := context.WithCancel(b.ctx)
	defer stopLoad()
	go func() {
		steady <- b.load(loadCtx, col, run, c.spans, drainSteadyClients, o.drainRate, o.drainQuiet+o.drainOutage+drainMaxTime)
	}()
	if serr := stack.Sleep(b.ctx, o.drainQuiet); serr != nil {
		return nil, serr
	}
	meter.sample()
	r.rssBefore = mib(meter.last.RSS)
	tStop := time.Now()
	if serr := s.ch.Stop(30 * time.Second); serr != nil {
		return nil, serr
	}
	peakUntil := func(until func() bool, every time.Duration) (float64, error) {
		peak := 0.0
		for !until() {
			if serr := stack.Sleep(b.ctx, every); serr != nil {
				return peak, serr
			}
			meter.sample()
			peak = max(peak, mib(meter.last.RSS))
		}
		return peak, nil
	}
	// Peaks per half of the outage: memory that grows with the outage's
	// length shows as a second half above the first.
	for i, until := range []time.Duration{o.drainOutage / 2, o.drainOutage} {
		if r.rssOutageHalves[i], err = peakUntil(func() bool { return time.Since(tStop) >= until }, time.Second); err != nil {
			return nil, err
		}
	}
	r.rssOutage = max(r.rssOutageHalves[0], r.rssOutageHalves[1])
	if _, err = s.ch.Start(60 * time.Second); err != nil {
		return nil, err
	}
	tReady := time.Now()
	replayBack := firstDelivery(b.ctx, col, "failover_group/replay", "clickhouse/replay")
	liveAtReady, _ := delivered(col, "clickhouse/ingest.live")
	logf("drain %s: ClickHouse back after %v", c.name, tReady.Sub(tStop).Round(time.Second))
	var dlqEnd, committed int64
	var tDrained, tLastReplay time.Time
	lastReplayed := replayed0
	deadline := tReady.Add(drainMaxTime)
	r.rssDrain, err = peakUntil(func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		dlqEnd, _ = s.endOffsets(ctx)
		committed, _ = s.committed(ctx, replayGroup, dlqTopic)
		tDrained = time.Now()
		if n, derr := delivered(col, "clickhouse/replay.replay"); derr == nil && n > lastReplayed {
			lastReplayed, tLastReplay = n, tDrained
		}
		r.drained = dlqEnd > dlq0 && committed >= dlqEnd
		return r.drained || tDrained.After(deadline)
	}, 200*time.Millisecond)
	if err != nil {
		return nil, err
	}
	liveAtDrained, _ := delivered(col, "clickhouse/ingest.live")
	stopLoad()
	res = <-steady
	r.drainTime = tDrained.Sub(tReady)
	tFirst := <-replayBack
	if !tFirst.IsZero() && tFirst.Before(tDrained) {
		r.failback = tFirst.Sub(tReady)
	} else {
		tFirst = tReady
	}
	// The replay's throughput is its inserts' (first → last, sampled every
	// 200 ms, so the window is if anything too long); the commit of the last
	// records follows within the receiver's autocommit interval and counts
	// in the drain time only.
	if tLastReplay.IsZero() || !tLastReplay.After(tFirst) {
		tLastReplay = tDrained
	}
	r.runTime = tLastReplay.Sub(tFirst)
	parked1, _ := delivered(col, "kafka/ingest.dlq")
	replayed1, _ := delivered(col, "clickhouse/replay.replay")
	r.parked, r.replayed, r.records = parked1-parked0, replayed1-replayed0, dlqEnd-dlq0
	r.replayRate = float64(r.replayed) / r.runTime.Seconds()
	r.wholeRate = float64(r.replayed) / r.drainTime.Seconds()
	r.liveDuringDrain = float64(liveAtDrained-liveAtReady) / r.drainTime.Seconds()
	r.quietP, r.quietN = res.Percentiles(tLoad.Add(o.drainQuiet/4), tStop, 50, 99)
	r.outageP, r.outageN = res.Percentiles(tStop, tReady, 50, 99)
	r.failbackP, r.failbackN = res.Percentiles(tReady, tFirst, 50, 99)
	r.drainP, r.drainN = res.Percentiles(tFirst, tLastReplay, 50, 99)
	logf("drain %s: %s spans in %s records drained in %v (first replay after %v): %s spans/s once running, %s over the whole drain (live %s spans/s meanwhile); p99 quiet %s, drain %s",
		c.name, thousands(r.parked), thousands(r.records), r.drainTime.Round(100*time.Millisecond), r.failback.Round(10*time.Millisecond), f0(r.replayRate), f0(r.wholeRate), f0(r.liveDuringDrain), ms(r.quietP[1]), ms(r.drainP[1]))

	r.accepted = res.TotalItems()
	_ = col.Stop(60 * time.Second)
	if r.liveAfter, err = saturate("after"); err != nil {
		return nil, err
	}
	r.liveRate = (r.liveBefore + r.liveAfter) / 2
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	var rows, distinct int64
	err = stack.WaitFor(ctx, time.Second, func() (bool, error) {
		var werr error
		rows, distinct, werr = s.counts(ctx, run)
		return werr == nil && distinct >= r.accepted, werr
	})
	r.allInCH = err == nil
	// Requests still in flight when the load stopped count as rejected
	// for the client but may be in ClickHouse: only accepted ids missing
	// are lost.
	r.lost, r.dups = max(0, r.accepted-distinct), rows-distinct
	return r, nil
}

const (
	// drainSteadyClients bounds the steady load's requests in flight.
	drainSteadyClients = 64
	// drainMaxTime bounds the drain (and the steady load's length).
	drainMaxTime = 10 * time.Minute
)

// load sends traces requests of spans spans to col from clients
// connections, at rate spans/s (0: as fast as answered) for d, or until ctx
// ends.
func (b *bench) load(ctx context.Context, col *stack.Collector, run string, spans, clients int, rate float64, d time.Duration) *loadgen.Result {
	o := b.traces(col.OTLPHTTP, run)
	o.BatchSize, o.Workers, o.Duration, o.RetryFor = spans, clients, d, 2*time.Minute
	if rate > 0 {
		o.Rate = rate / float64(spans)
	}
	return loadgen.Run(ctx, o)
}

func joinCases(runs []*drainRun, f func(r *drainRun) string) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = f(r)
	}
	return strings.Join(parts, " | ")
}

// pp is "p50 / p99 (n requests)".
func pp(p []time.Duration, n int) string {
	if n == 0 {
		return "no requests"
	}
	return fmt.Sprintf("%s / %s (%s requests)", ms(p[0]), ms(p[1]), thousands(int64(n)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// ratioDur is the p99 of a over the p99 of b.
func ratioDur(a, b []time.Duration) float64 {
	if len(a) < 2 || len(b) < 2 || b[1] == 0 {
		return 0
	}
	return float64(a[1]) / float64(b[1])
}
