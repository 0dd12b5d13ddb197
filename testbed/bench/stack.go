// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

type bench struct {
	opts             options
	root, dir        string
	ctx              context.Context
	machine          machine
	collectorVersion string
	// ceilingRate is devclickhouse's insert rate (spans/s, one exporter,
	// sequential batches) when the ceiling scenario ran first.
	ceilingRate float64
	seq         int
}

// site is the servers of one scenario, each in the scenario's own directory
// so that no scenario sees another's data.
type site struct {
	dir   string
	ch    *stack.ClickHouse
	kafka *stack.Kafka
	admin *kadm.Client
	kcl   *kgo.Client
}

func (b *bench) newSite(name string, withKafka bool) (*site, error) {
	s := &site{dir: filepath.Join(b.dir, name)}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.ch, err = stack.NewClickHouse(b.root, s.dir); err != nil {
		return nil, err
	}
	if _, err = s.ch.Start(60 * time.Second); err != nil {
		return nil, err
	}
	if withKafka {
		if s.kafka, err = stack.NewKafka(b.root, s.dir, 4); err != nil {
			s.close()
			return nil, err
		}
		if _, err = s.kafka.Start(30 * time.Second); err != nil {
			s.close()
			return nil, err
		}
		if s.kcl, err = kgo.NewClient(kgo.SeedBrokers(s.kafka.Addr)); err != nil {
			s.close()
			return nil, err
		}
		s.admin = kadm.NewClient(s.kcl)
	}
	return s, nil
}

func (s *site) close() {
	if s.kcl != nil {
		s.kcl.Close()
	}
	if s.kafka != nil {
		_ = s.kafka.Stop(10 * time.Second)
	}
	if s.ch != nil {
		_ = s.ch.Stop(30 * time.Second)
	}
}

// endOffsets and committed poll with the site's one long-lived admin client.
func (s *site) endOffsets(ctx context.Context) (int64, error) {
	return stack.EndOffsets(ctx, s.admin, dlqTopic)
}

func (s *site) committed(ctx context.Context, group, topic string) (int64, error) {
	return stack.Committed(ctx, s.admin, group, topic)
}

// counts returns (rows, distinct span ids) of run in ClickHouse.
func (s *site) counts(ctx context.Context, run string) (int64, int64, error) {
	v, err := s.ch.QueryInts(ctx, loadgen.CountQuery(loadgen.Traces, run))
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("unexpected answer %v", v)
	}
	return v[0], v[1], nil
}

// truncate empties the trace tables so that every run inserts into tables of
// the same size.
func (s *site) truncate(ctx context.Context) error {
	for _, t := range []string{"otel.otel_traces", "otel.otel_traces_trace_id_ts"} {
		if _, err := s.ch.Query(ctx, "TRUNCATE TABLE IF EXISTS "+t); err != nil {
			return err
		}
	}
	return nil
}

// variant is one collector configuration of a comparison.
type variant struct {
	Key   string // short name, in logs and file names
	Label string // in the report
	// Config is relative to the repository root; Sets are --set overrides.
	Config string
	Sets   []string
	// Exporter is the exporter id whose otelcol_exporter_sent_spans counts
	// the spans delivered to the destination measured.
	Exporter string
	// ClickHouseDown: ClickHouse is up when the collector starts, then
	// stopped, and the measure starts once the group's breaker is open.
	ClickHouseDown bool
}

const (
	referenceConfig = "testdata/otelcol-failover.yaml"
	groupLive       = "clickhouse/live"
)

// collector starts a fresh collector of variant v for the run called name.
func (b *bench) collector(s *site, v variant, name string) (*stack.Collector, error) {
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	col, err := stack.NewCollector(b.root, dir, filepath.Join(b.root, v.Config), s.ch, s.kafka, b.opts.collectorEnv...)
	if err != nil {
		return nil, err
	}
	for _, set := range v.Sets {
		col.Args = append(col.Args, "--set="+set)
	}
	if err := col.StartAndWait(60 * time.Second); err != nil {
		return nil, err
	}
	return col, nil
}

func delivered(col *stack.Collector, exporter string) (int64, error) {
	v, err := col.Metric("otelcol_exporter_sent_spans", "exporter="+exporter)
	return int64(v), err
}

// memberState is the breaker state of member in the traces instance of its
// group (the bench sends traces only; the collector runs one group instance
// per signal, and the gauge has a signal label). Collectors built before the
// gauge had that label report one series per member.
func memberState(col *stack.Collector, member string) (int, error) {
	v, err := col.Metric("otelcol_failover_group_member_state", "member="+member, "signal=traces")
	if err != nil || v != 0 {
		return int(v), err
	}
	// 0 may mean closed or "no such series": ask without the signal label,
	// which sums every signal's instance (all 0 when the traces one is).
	v, err = col.Metric("otelcol_failover_group_member_state", "member="+member)
	return int(v), err
}

// waitDelivered waits until the exporter delivered at least want spans,
// polling every `every`, and returns when it saw it.
func (b *bench) waitDelivered(col *stack.Collector, exporter string, want int64, every, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	var got int64
	var at time.Time
	err := stack.WaitFor(ctx, every, func() (bool, error) {
		var err error
		got, err = delivered(col, exporter)
		at = time.Now()
		return err == nil && got >= want, err
	})
	if err != nil {
		return at, fmt.Errorf("%s delivered %d of %d spans within %v: %w", exporter, got, want, timeout, err)
	}
	return at, nil
}

func (b *bench) runName(parts ...string) string {
	b.seq++
	return fmt.Sprintf("bench-%s-%d", strings.Join(parts, "-"), b.seq)
}

func collectorVersion(root string) string {
	out, err := exec.Command(filepath.Join(root, "bin", "otelcol-failover"), "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
