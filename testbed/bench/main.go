// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command bench loads the real bin/otelcol-failover on loopback, next to the
// same collector with a plain exporter instead of the failover group, and
// writes what it measured to BENCHMARKS.md. `make bench` builds what it needs
// and runs it.
//
// Every comparison is a pair (or a set) of variants measured in the same
// invocation, alternating A B … then … B A (so that a machine getting busier
// or quieter during the run biases no variant), each on a fresh collector
// process. Numbers are ratios measured in one run on a shared, noisy machine:
// nothing here is a test and nothing asserts a timing.
//
// Scenarios (-scenarios, default all, in this order):
//
//	group     failover_group's Go benchmarks in process: the group vs its member alone
//	ceiling   devclickhouse's insert rate with the clickhouse exporter in process (no collector)
//	healthy   OTLP → clickhouse exporter vs OTLP → failover_group(clickhouse, kafka), ClickHouse up
//	down      OTLP → kafka exporter vs OTLP → failover_group(clickhouse down, kafka)
//	failover  ClickHouse stop → first batch in Kafka; ClickHouse start → group back on the primary
//	outage    a long ClickHouse outage (-outage, 6 min) under steady load: group vs plain exporter
//	drain     after a ClickHouse outage (-drain-outage, 3 min): replay rate vs the live path's, live answer times, memory
//
// Processes run in their own process groups; all are stopped at the end, and
// killed on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

type options struct {
	scenarios      []string
	duration       time.Duration
	rounds         int
	outage         time.Duration
	failoverOutage time.Duration
	out            string
	keep           bool
	batch          int
	attributes     int
	workers        int
	rate           float64
	outageRate     float64
	variants       []string
	drainOutage    time.Duration
	drainRate      float64
	drainLive      time.Duration
	drainQuiet     time.Duration
	drainCases     []string
	collectorEnv   []string
}

var allScenarios = []string{"group", "ceiling", "healthy", "down", "failover", "outage", "drain"}

func main() {
	var o options
	scen := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one slice (one variant, one phase) in the healthy and down scenarios; the ceiling runs twice as long")
	flag.IntVar(&o.rounds, "rounds", 8, "rounds of slices in the healthy and down scenarios (A B C, then C B A, ...)")
	flag.DurationVar(&o.outage, "outage", 6*time.Minute, "length of the ClickHouse outage in the outage scenario")
	flag.DurationVar(&o.failoverOutage, "failover-outage", 20*time.Second, "length of the ClickHouse outage in the failover scenario")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write; sections of scenarios not run are kept from the existing file")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (process logs) after a successful run")
	flag.IntVar(&o.batch, "batch", 500, "spans per OTLP/HTTP request of the ceiling, healthy and down scenarios (the OpenTelemetry SDKs send up to 512); with no batch processor in the reference configuration a request is an export")
	flag.IntVar(&o.attributes, "attributes", 10, "attributes per span (those of an HTTP server span)")
	flag.IntVar(&o.workers, "workers", 4, "connections of the load generator")
	flag.Float64Var(&o.rate, "rate", 0, "spans/s of the fixed-rate phase; 0: half the throughput the pilot run measured")
	flag.Float64Var(&o.outageRate, "outage-rate", 200, "spans/s of the steady load in the failover and outage scenarios")
	flag.DurationVar(&o.drainOutage, "drain-outage", 3*time.Minute, "length of the ClickHouse outage in the drain scenario")
	flag.Float64Var(&o.drainRate, "drain-rate", 2000, "spans/s of the steady load in the drain scenario")
	flag.DurationVar(&o.drainLive, "drain-live", 20*time.Second, "length of the saturating live load in the drain scenario")
	flag.DurationVar(&o.drainQuiet, "drain-quiet", 20*time.Second, "length of the quiet steady load (answer times) before the outage in the drain scenario")
	cenv := flag.String("collector-env", "", "comma-separated KEY=VALUE added to every collector's environment (e.g. GOMEMLIMIT=80MiB)")
	dcases := flag.String("drain-cases", "small,large", "cases of the drain scenario: small (100-span requests), large (1000-span requests)")
	vars := flag.String("variants", "", "comma-separated variant keys to keep in the healthy and down scenarios (for investigations; default: all)")
	flag.Parse()
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (known: %s)\n", s, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
		o.scenarios = append(o.scenarios, s)
	}
	for v := range strings.SplitSeq(*vars, ",") {
		if v = strings.TrimSpace(v); v != "" {
			o.variants = append(o.variants, v)
		}
	}
	for kv := range strings.SplitSeq(*cenv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			o.collectorEnv = append(o.collectorEnv, kv)
		}
	}
	for c := range strings.SplitSeq(*dcases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.drainCases = append(o.drainCases, c)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stack.KillAll()
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	for _, b := range []string{"otelcol-failover", "devclickhouse", "devkafka"} {
		if _, err = os.Stat(filepath.Join(root, "bin", b)); err != nil {
			return fmt.Errorf("bin/%s not found: run `make build devservers` (make bench does)", b)
		}
	}
	dir, err := os.MkdirTemp("", "otelcol-failover-bench-")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(o.out) {
		o.out = filepath.Join(root, o.out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		logf("%v: killing every process the bench started; logs are in %s", sig, dir)
		cancel()
		stack.KillAll()
		os.Exit(130)
	}()

	b := &bench{opts: o, root: root, dir: dir, ctx: ctx, machine: describeMachine()}
	logf("work directory %s; machine: %d CPUs, %.1f GiB, kernel %s, %s", dir, b.machine.CPUs,
		float64(b.machine.MemTotal)/(1<<30), b.machine.Kernel, b.machine.GoVersion)
	logf("%s", uptime())
	rep, err := loadReport(o.out)
	if err != nil {
		return err
	}
	b.collectorVersion = collectorVersion(root)
	if len(o.scenarios) == 0 {
		// Nothing to measure: rewrite the report (its text) around the
		// sections it holds.
		if err := rep.write(o.out, b); err != nil {
			return err
		}
		logf("rewrote %s", o.out)
		_ = os.RemoveAll(dir)
		return nil
	}
	var failed []string
	for _, s := range allScenarios {
		if !slices.Contains(o.scenarios, s) {
			continue
		}
		logf("==== scenario %s", s)
		began := time.Now()
		sec, err := b.runScenario(s)
		stack.KillAll() // nothing of a scenario outlives it
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			logf("scenario %s failed: %v", s, err)
			failed = append(failed, s)
			sec = &section{name: s, body: fmt.Sprintf("Scenario %#q failed on %s: %v\n", s, time.Now().Format("2006-01-02 15:04"), err)}
		}
		logf("scenario %s took %v", s, time.Since(began).Round(time.Second))
		rep.set(sec)
		// Written after every scenario, so a long run interrupted late keeps
		// what it measured.
		if err := rep.write(o.out, b); err != nil {
			return err
		}
	}
	logf("wrote %s", o.out)
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %s; logs are in %s", strings.Join(failed, ", "), dir)
	}
	if !o.keep {
		_ = os.RemoveAll(dir)
	} else {
		logf("logs kept in %s", dir)
	}
	return nil
}

func (b *bench) runScenario(name string) (*section, error) {
	switch name {
	case "group":
		return b.groupBench()
	case "ceiling":
		return b.ceiling()
	case "healthy":
		return b.healthy()
	case "down":
		return b.down()
	case "failover":
		return b.failover()
	case "outage":
		return b.outage()
	case "drain":
		return b.drain()
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
