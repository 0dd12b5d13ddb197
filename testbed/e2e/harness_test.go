// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2e proves the product's promise with the real binaries on
// loopback: bin/otelcol-failover, bin/devclickhouse and bin/devkafka, the
// reference configuration, items with unique ids sent over OTLP and counted
// back in ClickHouse.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// env is one stack: devclickhouse, devkafka and a collector, each in its own
// process, with logs in a per-test directory that is printed on failure.
type env struct {
	t     *testing.T
	root  string
	dir   string
	ch    *stack.ClickHouse
	kafka *stack.Kafka
	col   *stack.Collector
	// run is the service.name of this test's items.
	run string
}

type envOptions struct {
	// config is the collector config, relative to the repository root;
	// default: the reference configuration.
	config string
	// clickHouseDown leaves ClickHouse stopped at the start.
	clickHouseDown bool
	// collectorEnv is added to the collector's environment.
	collectorEnv []string
	// collectorArgs are added to the collector's command line (--set=...).
	collectorArgs []string
	// kafkaWithout are topics devkafka does not create at start, and with
	// auto-creation off (a common production setting) nobody creates.
	kafkaWithout []string
	// beforeCollector runs once ClickHouse and Kafka are up, before the
	// collector starts (to point a test double at them).
	beforeCollector func(e *env)
	// protocol is what the collector's clickhouse members speak to
	// devclickhouse: stack.ProtocolHTTP (default, also when empty) or
	// stack.ProtocolNative (forEachProtocol runs a test over both).
	protocol string
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"otelcol-failover", "devclickhouse", "devkafka"} {
		if _, err = os.Stat(filepath.Join(root, "bin", b)); err != nil {
			t.Fatalf("bin/%s not found: run `make build devservers` (make test builds them first)", b)
		}
	}
	if opts.config == "" {
		opts.config = "testdata/otelcol-failover.yaml"
	}
	e := &env{t: t, root: root, dir: t.TempDir(), run: fmt.Sprintf("e2e-%s-%d", sanitize(t.Name()), time.Now().UnixNano())}
	t.Cleanup(e.stopAll)

	if e.ch, err = stack.NewClickHouse(root, e.dir); err != nil {
		t.Fatal(err)
	}
	e.ch.Protocol = opts.protocol
	if !opts.clickHouseDown {
		e.startClickHouse()
	}
	if e.kafka, err = stack.NewKafka(root, e.dir, 4); err != nil {
		t.Fatal(err)
	}
	if len(opts.kafkaWithout) > 0 {
		e.kafka.Without(opts.kafkaWithout...)
	}
	e.startKafka()
	if e.col, err = stack.NewCollector(root, e.dir, filepath.Join(root, opts.config), e.ch, e.kafka, opts.collectorEnv...); err != nil {
		t.Fatal(err)
	}
	e.col.Args = append(e.col.Args, opts.collectorArgs...)
	if opts.beforeCollector != nil {
		opts.beforeCollector(e)
	}
	e.startCollector()
	return e
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

func (e *env) startClickHouse() {
	e.t.Helper()
	if _, err := e.ch.Start(60 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stopClickHouse() {
	e.t.Helper()
	if err := e.ch.Stop(20 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) startKafka() {
	e.t.Helper()
	if _, err := e.kafka.Start(30 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) startCollector() {
	e.t.Helper()
	if err := e.col.StartAndWait(60 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stopCollector() {
	e.t.Helper()
	if err := e.col.Stop(60 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// stopAll stops everything; on failure it prints the tail of each log.
func (e *env) stopAll() {
	if e.col != nil {
		_ = e.col.Stop(30 * time.Second)
	}
	if e.kafka != nil {
		_ = e.kafka.Stop(10 * time.Second)
	}
	if e.ch != nil {
		_ = e.ch.Stop(20 * time.Second)
	}
	if e.t.Failed() {
		for _, name := range []string{"otelcol-failover.log", "devclickhouse.log", "devkafka.log"} {
			b, err := os.ReadFile(filepath.Join(e.dir, name))
			if err != nil {
				continue
			}
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			e.t.Logf("==== tail of %s ====\n%s", name, b)
		}
	}
}

// load sends batches of every signal with unique ids, retrying a rejected
// batch as an OTLP client would.
func (e *env) load(ctx context.Context, batches, batchSize int, rate float64) *loadgen.Result {
	return loadgen.Run(ctx, loadgen.Options{
		Endpoint:  e.col.OTLPHTTP,
		Run:       e.run,
		Signals:   loadgen.AllSignals,
		Batches:   batches,
		BatchSize: batchSize,
		Workers:   clientConnections,
		Rate:      rate,
		RetryFor:  2 * time.Minute,
	})
}

// counts returns (rows, distinct ids) of signal s for this run.
func (e *env) counts(ctx context.Context, s loadgen.Signal) (int64, int64, error) {
	v, err := e.ch.QueryInts(ctx, loadgen.CountQuery(s, e.run))
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("unexpected answer %v", v)
	}
	return v[0], v[1], nil
}

// requireAllInClickHouse waits until every one of want ids of every signal is
// in ClickHouse, then reports duplicates (at-least-once delivery may repeat a
// batch whose answer was lost; it must never lose one).
func (e *env) requireAllInClickHouse(want int64, timeout time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range loadgen.AllSignals {
		var rows, distinct int64
		err := stack.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
			var err error
			rows, distinct, err = e.counts(ctx, s)
			return err == nil && distinct >= want, err
		})
		if err != nil {
			e.t.Fatalf("%s: %d of %d ids in ClickHouse (%d lost) after %v: %v", s, distinct, want, want-distinct, timeout, err)
		}
		if distinct != want {
			e.t.Fatalf("%s: %d distinct ids in ClickHouse, sent %d", s, distinct, want)
		}
		e.t.Logf("%s: all %d ids in ClickHouse, %d duplicate rows", s, want, rows-distinct)
	}
}

func (e *env) dlqRecords(ctx context.Context) map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, topic := range stack.DLQTopics {
		n, err := e.kafka.EndOffsets(ctx, topic)
		if err != nil {
			e.t.Fatalf("DLQ end offsets of %s: %v", topic, err)
		}
		out[topic] = n
	}
	return out
}

func requireAccepted(t *testing.T, res *loadgen.Result, batches int) {
	t.Helper()
	want := int64(batches * len(loadgen.AllSignals))
	if res.Accepted.Load() != want || res.Rejected.Load() != 0 {
		t.Fatalf("OTLP client: %d of %d batches accepted, %d rejected (first error: %v)", res.Accepted.Load(), want, res.Rejected.Load(), res.FirstError)
	}
}
