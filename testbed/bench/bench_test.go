// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

func TestParseStatCPU(t *testing.T) {
	// comm may hold spaces and parentheses; utime and stime are fields 14
	// and 15, counted after the last ')'.
	stat := "4242 (otel (col) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 12 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 380 * time.Second / clockTick; got != want {
		t.Fatalf("cpu %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Fatal("want an error for a malformed stat line")
	}
}

func TestParseStatusMem(t *testing.T) {
	status := "Name:\totelcol\nVmPeak:\t  900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	rss, hwm := parseStatusMem([]byte(status))
	if rss != 40960*1024 || hwm != 81920*1024 {
		t.Fatalf("rss %d hwm %d", rss, hwm)
	}
}

func TestParseMachineCPU(t *testing.T) {
	m := parseMachineCPU([]byte("cpu  100 5 50 800 20 1 2 3 7 0\ncpu0 1 2 3 4\n"))
	// busy: user nice system irq softirq steal; idle and iowait are not busy;
	// guest is already in user.
	if m.busy != 100+5+50+1+2+3 || m.total != 100+5+50+800+20+1+2+3 {
		t.Fatalf("busy %d total %d", m.busy, m.total)
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{1.2, 0.9, 1.0, 1.1})
	if s.med != 1.05 || s.min != 0.9 || s.max != 1.2 {
		t.Fatalf("%+v", s)
	}
	if got := summarize([]float64{0.98}).String(); got != "0.980" {
		t.Fatalf("%q", got)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 84000: "84,000", -1234567: "-1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%d) = %q, want %q", in, got, want)
		}
	}
}

// A run of some scenarios keeps the sections and summary rows of the others.
func TestReportKeepsSectionsNotRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	b := &bench{machine: machine{CPUs: 2, Kernel: "k", GoVersion: "go"}, collectorVersion: "v"}
	r, err := loadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	r.set(&section{name: "outage", body: "outage body\n", rows: []string{"| outage | row |"}})
	r.set(&section{name: "healthy", body: "old healthy\n", rows: []string{"| healthy | old |"}})
	if err = r.write(path, b); err != nil {
		t.Fatal(err)
	}
	r, err = loadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	r.set(&section{name: "healthy", body: "new healthy\n", rows: []string{"| healthy | new |"}})
	if err = r.write(path, b); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"outage body", "| outage | row |", "new healthy", "| healthy | new |", "Not measured yet: `make bench BENCH_FLAGS=-scenarios=down`"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, gone := range []string{"old healthy", "| healthy | old |"} {
		if strings.Contains(text, gone) {
			t.Errorf("report still has %q", gone)
		}
	}
}

// The bench's direct-exporter configs differ from the reference configuration
// only in the exporter.
func TestBenchConfigsMatchReference(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []variant{chSync, chDefault, kafkaSync, kafkaDefault} {
		if err := checkSamePipeline(root, v.Config); err != nil {
			t.Error(err)
		}
	}
	// And the check notices a difference.
	if err := checkSamePipeline(root, "testbed/bench/testdata/clickhouse-batch.yaml"); err == nil {
		t.Error("clickhouse-batch.yaml has a batch processor, the check should refuse it")
	}
}

// The breaker's settings come from the collector's own print-config (the
// binary is built by make test before the tests run).
func TestBreakerSettings(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	desc, maxOpen := breakerSettings(root)
	if !strings.Contains(desc, "consecutive failures") || !strings.Contains(maxOpen, "max_open_duration`, ") {
		t.Fatalf("breaker settings not read from bin/otelcol-failover print-config (build it with make build): %q / %q", desc, maxOpen)
	}
}
