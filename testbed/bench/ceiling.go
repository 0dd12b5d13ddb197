// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
)

// ceilingResult is devclickhouse fed by the clickhouse exporter in this
// process, without a collector around it.
type ceilingResult struct {
	conc        int
	spans       int64
	seconds     float64
	rate        float64
	serverCores float64
	benchCores  float64 // the exporter's conversion, in this process
	machine     float64
	msPerBatch  float64
	verified    string
}

// ceiling measures devclickhouse's insert rate: the unmodified contrib
// clickhouse exporter (queue and retry off) in this process, batches the size
// of the bench's requests (the reference configuration has no batch
// processor: a request is an insert), first one at a time, then 10 at a time
// (as the default sending_queue's 10 consumers do).
func (b *bench) ceiling() (*section, error) {
	began, loadBefore := time.Now(), uptime()
	s, err := b.newSite("ceiling", false)
	if err != nil {
		return nil, err
	}
	defer s.close()

	f := clickhouseexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*clickhouseexporter.Config)
	cfg.Endpoint = s.ch.Endpoint()
	cfg.Database = "otel"
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.Enabled = false
	if verr := cfg.Validate(); verr != nil {
		return nil, verr
	}
	exp, err := f.CreateTraces(b.ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		return nil, err
	}
	if err := exp.Start(b.ctx, componenttest.NewNopHost()); err != nil {
		return nil, fmt.Errorf("clickhouse exporter start: %w", err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	ceilingBatch := b.opts.batch
	var results []ceilingResult
	levels := []int{1, 10}
	if w := b.opts.workers; w > 1 && w < 10 {
		levels = []int{1, w, 10}
	}
	for _, conc := range levels {
		run := b.runName("ceiling", fmt.Sprintf("c%d", conc))
		// Warm-up: one batch per worker.
		td := loadgen.NewTracesWithAttributes(run+"-warm", ceilingBatch, b.opts.attributes)
		if err := exp.ConsumeTraces(b.ctx, td); err != nil {
			return nil, fmt.Errorf("warm-up insert: %w", err)
		}
		sm := newProcMeter(s.ch.Pid())
		m0 := readMachineCPU()
		cpu0 := loadgen.ProcessCPU()
		var next atomic.Int64
		var firstErr error
		var errOnce sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(2 * b.opts.duration)
		for range conc {
			wg.Go(func() {
				td := loadgen.NewTracesWithAttributes(run, ceilingBatch, b.opts.attributes)
				for time.Now().Before(deadline) && b.ctx.Err() == nil {
					n := next.Add(1) - 1
					loadgen.SetTraceIDs(td, uint64(n)*uint64(ceilingBatch))
					if err := exp.ConsumeTraces(b.ctx, td); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		sm.sample()
		cpu := loadgen.ProcessCPU() - cpu0
		if firstErr != nil {
			return nil, fmt.Errorf("insert: %w", firstErr)
		}
		batches := next.Load()
		r := ceilingResult{
			conc: conc, spans: batches * int64(ceilingBatch), seconds: elapsed.Seconds(),
			serverCores: sm.cores(), benchCores: cpu.Seconds() / elapsed.Seconds(),
			machine:    busyCores(m0, readMachineCPU()),
			msPerBatch: elapsed.Seconds() * 1000 / float64(batches) * float64(conc),
		}
		r.rate = float64(r.spans) / r.seconds
		_, distinct, err := s.counts(b.ctx, run)
		if err != nil {
			return nil, err
		}
		if distinct == r.spans {
			r.verified = "all ids in ClickHouse"
		} else {
			r.verified = fmt.Sprintf("%d of %d ids in ClickHouse", distinct, r.spans)
		}
		if err := s.truncate(b.ctx); err != nil {
			return nil, err
		}
		logf("ceiling: %d at a time: %s spans/s (%.0f ms per batch), devclickhouse %.2f cores, exporter %.2f cores, machine %.2f; %s",
			conc, f0(r.rate), r.msPerBatch, r.serverCores, r.benchCores, r.machine, r.verified)
		results = append(results, r)
	}
	for _, r := range results {
		if r.conc == b.opts.workers {
			b.ceilingRate = r.rate
		}
	}

	var w strings.Builder
	b.header(&w, began, loadBefore)
	fmt.Fprintf(&w, "The unmodified contrib clickhouse exporter v0.155.0 (lz4, `sending_queue` and `retry_on_failure` off) in the bench's own process writes batches of %d spans with %d attributes each (the size of the bench's OTLP requests: the reference configuration has no batch processor, so each request is one insert) into devclickhouse for %v, one batch at a time, %d at a time (as many as the bench's client connections: a pipeline without a queue exports each request as it comes), and 10 at a time (the default `sending_queue` has 10 consumers). No collector, no OTLP: this is the most any collector variant below can deliver into devclickhouse on this machine.\n\n", ceilingBatch, b.opts.attributes, 2*b.opts.duration, b.opts.workers)
	fmt.Fprintf(&w, "| batches in flight | spans/s | ms per batch | devclickhouse cores | exporter (bench process) cores | machine busy cores | checked |\n|---|---|---|---|---|---|---|\n")
	var rows []string
	for _, r := range results {
		fmt.Fprintf(&w, "| %d | %s | %s | %s | %s | %s | %s |\n", r.conc, f0(r.rate), f0(r.msPerBatch), f2(r.serverCores), f2(r.benchCores), f2(r.machine), r.verified)
	}
	var parts []string
	for _, r := range results {
		parts = append(parts, fmt.Sprintf("%s spans/s %d at a time", f0(r.rate), r.conc))
	}
	rows = append(rows, fmt.Sprintf("| ceiling | devclickhouse + clickhouse exporter, no collector | – | %s | reference |", strings.Join(parts, "; ")))
	fmt.Fprintf(&w, "\nThe devservers README measured about 20,000 spans/s (15,600–22,200) one batch of 1000 minimal spans at a time on a busy machine. Every batch costs a `DESCRIBE TABLE` and an `INSERT` on devclickhouse's single engine connection; with several in flight they queue on that connection, so the gain, if any, comes from overlapping the exporter's conversion and the HTTP round trips with the engine's work.\n")
	return &section{name: "ceiling", body: w.String(), rows: rows}, nil
}
