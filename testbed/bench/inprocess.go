// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The group scenario: failover_group's own Go benchmarks
// (BenchmarkFailoverGroup, BenchmarkFailoverGroupOverhead) in process, the
// test binary run once per round with every sub-benchmark back to back, so
// that a ratio to `direct` is taken within a round and a busy moment of the
// machine hits every case alike.

// groupBenchCases are the sub-benchmarks, `direct` first: the member alone.
var groupBenchCases = []string{"direct", "primary_healthy", "primary_open", "failover_each_batch"}

// benchLine matches a line of `go test -bench` output with -benchmem and the
// benchmark's own cpu-ns/op metric.
var benchLine = regexp.MustCompile(`^(BenchmarkFailoverGroup(?:Overhead)?)/(\w+)-\d+\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) cpu-ns/op\s+(\d+) B/op\s+(\d+) allocs/op`)

// benchSample is one sub-benchmark's figures in one round.
type benchSample struct {
	ns, cpuNs float64
	allocs    float64
}

func (b *bench) groupBench() (*section, error) {
	began, loadBefore := time.Now(), uptime()
	bin := filepath.Join(b.dir, "failovergroupexporter.test")
	build := exec.CommandContext(b.ctx, "go", "test", "-c", "-o", bin, "./failovergroupexporter/")
	build.Dir = b.root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the failover_group test binary: %w\n%s", err, out)
	}
	rounds := max(b.opts.rounds, 6)
	// samples[benchmark][case] over rounds
	samples := map[string]map[string][]benchSample{}
	for r := 1; r <= rounds; r++ {
		run := exec.CommandContext(b.ctx, bin, "-test.run", "^$", "-test.bench", "^BenchmarkFailoverGroup(Overhead)?$",
			"-test.benchmem", "-test.count", "1", "-test.benchtime", "1s")
		run.Dir = filepath.Join(b.root, "failovergroupexporter")
		out, err := run.Output()
		if err != nil {
			return nil, fmt.Errorf("round %d: %w\n%s", r, err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			var s benchSample
			s.ns, _ = strconv.ParseFloat(m[3], 64)
			s.cpuNs, _ = strconv.ParseFloat(m[4], 64)
			s.allocs, _ = strconv.ParseFloat(m[6], 64)
			if samples[m[1]] == nil {
				samples[m[1]] = map[string][]benchSample{}
			}
			samples[m[1]][m[2]] = append(samples[m[1]][m[2]], s)
		}
		logf("group: round %d of %d done (load %s)", r, rounds, uptime())
	}
	main := samples["BenchmarkFailoverGroup"]
	for _, c := range groupBenchCases {
		if len(main[c]) != rounds {
			return nil, fmt.Errorf("BenchmarkFailoverGroup/%s: %d results for %d rounds", c, len(main[c]), rounds)
		}
	}

	var w strings.Builder
	b.header(&w, began, loadBefore)
	fmt.Fprintf(&w, "`BenchmarkFailoverGroup` (`failovergroupexporter/bench_test.go`): 100-span traces batches, members that marshal the batch to OTLP protobuf; `direct` is one member alone, configured as the group configures it. `BenchmarkFailoverGroupOverhead`: the same cases with members that do nothing, so its differences are the group's own cost. %d rounds; in each, every case runs back to back (`-benchtime 1s`); ratios to `direct` are taken within a round, then the median and range over rounds.\n\n", rounds)
	fmt.Fprintln(&w, "| benchmark | case | ns/op (median) | cpu-ns/op (median) | allocs/op | ns/op ÷ direct | cpu-ns/op ÷ direct |")
	fmt.Fprintln(&w, "|---|---|---:|---:|---:|---|---|")
	for _, bm := range []string{"BenchmarkFailoverGroup", "BenchmarkFailoverGroupOverhead"} {
		for _, c := range groupBenchCases {
			ss := samples[bm][c]
			if len(ss) == 0 {
				continue
			}
			ns := summarize(field(ss, func(s benchSample) float64 { return s.ns }))
			cpu := summarize(field(ss, func(s benchSample) float64 { return s.cpuNs }))
			allocs := summarize(field(ss, func(s benchSample) float64 { return s.allocs }))
			nsRatio, cpuRatio := "—", "—"
			if c != "direct" && len(samples[bm]["direct"]) == len(ss) {
				nsRatio = summarize(perRound(ss, samples[bm]["direct"], func(s benchSample) float64 { return s.ns })).String()
				cpuRatio = summarize(perRound(ss, samples[bm]["direct"], func(s benchSample) float64 { return s.cpuNs })).String()
			}
			fmt.Fprintf(&w, "| `%s` | `%s` | %s | %s | %s | %s | %s |\n", bm, c, f0(ns.med), f0(cpu.med), f0(allocs.med), nsRatio, cpuRatio)
		}
	}
	healthy := summarize(perRound(main["primary_healthy"], main["direct"], func(s benchSample) float64 { return s.ns }))
	extra := summarize(field(main["primary_healthy"], func(s benchSample) float64 { return s.allocs })).med -
		summarize(field(main["direct"], func(s benchSample) float64 { return s.allocs })).med
	verdict := "**met**"
	if healthy.med > 1.05 || extra > 1 {
		verdict = "**not met**"
	}
	row := fmt.Sprintf("| group | `primary_healthy` / `direct` (in process) | ≤ 1.05, ≤ 1 extra allocation | ns/op ratio %s; %s extra allocations per batch | %s |",
		healthy, f0(extra), verdict)
	return &section{name: "group", body: w.String(), rows: []string{row}}, nil
}

func field(ss []benchSample, f func(benchSample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// perRound is num/den for each round.
func perRound(num, den []benchSample, f func(benchSample) float64) []float64 {
	out := make([]float64, 0, len(num))
	for i := range num {
		if i < len(den) && f(den[i]) > 0 {
			out = append(out, f(num[i])/f(den[i]))
		}
	}
	return out
}
