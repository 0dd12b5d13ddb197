// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

const buildHint = "build it with `make devservers` (or `make -C devservers devkafka`)"

func binaryPath(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("DEVKAFKA_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "devkafka")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("devkafka binary not found at %s: %v; %s", abs, err, buildHint)
	}
	return abs
}

var readyRe = regexp.MustCompile(`^devkafka ready on (\S+) topics=(\S*) partitions=(\d+) data=(.+)$`)

// broker is one devkafka subprocess.
type broker struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	extra  chan string
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBroker runs devkafka on a free port with args and waits for its ready
// line and a broker that answers metadata requests.
func startBroker(t *testing.T, args ...string) *broker {
	t.Helper()
	cmd := exec.Command(binaryPath(t), append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{cmd: cmd, stderr: &syncBuffer{}, extra: make(chan string, 16), done: make(chan struct{})}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				ready <- sc.Text()
				first = false
				continue
			}
			b.extra <- sc.Text()
		}
		if first {
			close(ready)
		}
		close(b.extra)
	}()
	go func() {
		err := cmd.Wait()
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-b.done
			}
		}
	})
	select {
	case line, ok := <-ready:
		if !ok {
			<-b.done
			t.Fatalf("devkafka exited before its ready line: %v\nstderr:\n%s", b.exitErr(), b.stderr.String())
		}
		m := readyRe.FindStringSubmatch(line)
		if m == nil || strings.HasSuffix(m[1], ":0") {
			t.Fatalf("unexpected ready line %q", line)
		}
		b.addr = m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line within 30s\nstderr:\n%s", b.stderr.String())
	}
	adm := b.admin(t)
	waitFor(t, 20*time.Second, "broker metadata", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := adm.BrokerMetadata(ctx)
		return err == nil
	})
	return b
}

func (b *broker) exitErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// stop sends SIGTERM and requires exit status 0 and no extra stdout.
func (b *broker) stop(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("devkafka did not exit within 20s of SIGTERM")
	}
	if err := b.exitErr(); err != nil {
		t.Fatalf("devkafka exit: %v\nstderr:\n%s", err, b.stderr.String())
	}
	for line := range b.extra {
		t.Errorf("unexpected extra stdout line %q", line)
	}
}

func (b *broker) admin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// endOffsets sums the end offsets of a topic's partitions (records written).
func endOffsets(t *testing.T, adm *kadm.Client, topic string) (int64, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	var total int64
	parts := 0
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			total += o.Offset
			parts++
		}
	})
	return total, parts
}

// committed sums a group's committed offsets on a topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			total += o.At
		}
	})
	return total
}

func newExporter(t *testing.T, addr, topic string) exporter.Traces {
	t.Helper()
	f := kafkaexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"brokers":          []any{addr},
		"traces":           map[string]any{"topic": topic, "encoding": "otlp_proto"},
		"sending_queue":    map[string]any{"enabled": false},
		"retry_on_failure": map[string]any{"enabled": false},
		"timeout":          "10s",
	}).Unmarshal(cfg); err != nil {
		t.Fatalf("exporter config: %v", err)
	}
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// newReceiver starts a contrib kafka receiver in consumer group group,
// committing a record only after next accepted it.
func newReceiver(t *testing.T, addr, group, topic string, next *sink) receiver.Traces {
	t.Helper()
	f := kafkareceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"brokers":            []any{addr},
		"group_id":           group,
		"initial_offset":     "earliest",
		"session_timeout":    "6s",
		"heartbeat_interval": "500ms",
		"traces":             map[string]any{"topics": []any{topic}, "encoding": "otlp_proto"},
		"message_marking":    map[string]any{"after": true},
		"autocommit":         map[string]any{"enable": true, "interval": "100ms"},
	}).Unmarshal(cfg); err != nil {
		t.Fatalf("receiver config: %v", err)
	}
	rcv, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return rcv
}

// sink is the receiver's next consumer: it records the spans of accepted
// batches and refuses batches holding a span named by refuse.
type sink struct {
	mu       sync.Mutex
	accepted map[string]int // span name -> times accepted
	refused  int
	refuse   string
}

func newSink(refuse string) *sink { return &sink{accepted: map[string]int{}, refuse: refuse} }

func (s *sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	var names []string
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				names = append(names, spans.At(k).Name())
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.refuse != "" && n == s.refuse {
			s.refused++
			return errors.New("sink refuses this batch")
		}
	}
	for _, n := range names {
		s.accepted[n]++
	}
	return nil
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted)
}

func (s *sink) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[name] > 0
}

func (s *sink) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

func (s *sink) refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func batch(prefix string, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "devkafka-e2e")
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("%s-%d", prefix, i))
		var tid [16]byte
		var sid [8]byte
		copy(tid[:], prefix)
		tid[15], sid[7] = byte(i), byte(i)+1
		sp.SetTraceID(pcommon.TraceID(tid))
		sp.SetSpanID(pcommon.SpanID(sid))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	}
	return td
}

// TestExporterToReceiver: the contrib kafka exporter produces through
// devkafka and the contrib kafka receiver consumes in a consumer group, which
// commits what it consumed.
func TestExporterToReceiver(t *testing.T) {
	b := startBroker(t, "--topics", "otlp_spans,otlp_spans_dlq", "--partitions", "4")
	adm := b.admin(t)
	ctx := context.Background()

	exp := newExporter(t, b.addr, "otlp_spans")
	const batches, per = 10, 20
	for i := range batches {
		if err := exp.ConsumeTraces(ctx, batch(fmt.Sprintf("b%02d", i), per)); err != nil {
			t.Fatalf("ConsumeTraces: %v", err)
		}
	}
	records, parts := endOffsets(t, adm, "otlp_spans")
	if parts != 4 || records < batches {
		t.Fatalf("otlp_spans: %d records in %d partitions", records, parts)
	}
	if _, dlqParts := endOffsets(t, adm, "otlp_spans_dlq"); dlqParts != 4 {
		t.Errorf("seeded topic otlp_spans_dlq has %d partitions, want 4", dlqParts)
	}

	next := newSink("")
	rcv := newReceiver(t, b.addr, "e2e", "otlp_spans", next)
	waitFor(t, 60*time.Second, "all spans consumed", func() bool { return next.distinct() == batches*per })
	waitFor(t, 30*time.Second, "offsets committed", func() bool { return committed(t, adm, "e2e", "otlp_spans") == records })
	if err := rcv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
}

// TestUncommittedBatchRedelivered: a batch that the receiver's pipeline
// refuses is not committed and comes again once the receiver restarts in the
// same consumer group; batches it accepted are committed.
func TestUncommittedBatchRedelivered(t *testing.T) {
	b := startBroker(t, "--topics", "otlp_spans", "--partitions", "2")
	adm := b.admin(t)
	ctx := context.Background()

	exp := newExporter(t, b.addr, "otlp_spans")
	for _, p := range []string{"ok1", "poison", "ok2", "ok3"} {
		if err := exp.ConsumeTraces(ctx, batch(p, 5)); err != nil {
			t.Fatalf("ConsumeTraces: %v", err)
		}
	}
	records, _ := endOffsets(t, adm, "otlp_spans")

	first := newSink("poison-0")
	rcv := newReceiver(t, b.addr, "replay", "otlp_spans", first)
	waitFor(t, 60*time.Second, "the poison batch refused", func() bool { return first.refusals() > 0 })
	if first.has("poison-0") {
		t.Fatal("refused batch recorded as accepted")
	}
	// Everything but the refused record (and what follows it in its
	// partition) gets committed.
	waitFor(t, 30*time.Second, "the accepted records committed", func() bool {
		return committed(t, adm, "replay", "otlp_spans") > 0
	})
	if got := committed(t, adm, "replay", "otlp_spans"); got >= records {
		t.Fatalf("committed %d of %d records although one was refused", got, records)
	}
	t.Logf("first receiver: refused %d time(s), committed %d of %d records", first.refusals(), committed(t, adm, "replay", "otlp_spans"), records)
	if err := rcv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := newSink("")
	rcv2 := newReceiver(t, b.addr, "replay", "otlp_spans", second)
	waitFor(t, 60*time.Second, "the refused batch delivered again", func() bool { return second.has("poison-0") })
	waitFor(t, 60*time.Second, "every batch accepted once by one of the receivers", func() bool {
		for _, p := range []string{"ok1", "poison", "ok2", "ok3"} {
			if !first.has(p+"-0") && !second.has(p+"-0") {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "all offsets committed", func() bool { return committed(t, adm, "replay", "otlp_spans") == records })
	t.Logf("second receiver accepted %v", second.snapshot())
	if err := rcv2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
}

// TestRestart: without --data a restart starts empty (topics seeded again);
// with --data the records and committed offsets survive.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	produce := func(b *broker) {
		t.Helper()
		exp := newExporter(t, b.addr, "otlp_spans")
		if err := exp.ConsumeTraces(ctx, batch("r", 3)); err != nil {
			t.Fatalf("ConsumeTraces: %v", err)
		}
		_ = exp.Shutdown(ctx)
	}

	b := startBroker(t, "--topics", "otlp_spans")
	produce(b)
	if n, _ := endOffsets(t, b.admin(t), "otlp_spans"); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	b.stop(t)
	b = startBroker(t, "--topics", "otlp_spans")
	if n, parts := endOffsets(t, b.admin(t), "otlp_spans"); n != 0 || parts != 4 {
		t.Fatalf("in-memory restart: %d records in %d partitions, want 0 in 4", n, parts)
	}
	b.stop(t)

	dir := t.TempDir()
	b = startBroker(t, "--topics", "otlp_spans", "--data", dir)
	produce(b)
	adm := b.admin(t)
	if _, err := adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "otlp_spans", Partition: 0, Offset: 0})); err != nil {
		t.Fatalf("commit: %v", err)
	}
	b.stop(t)
	b = startBroker(t, "--topics", "otlp_spans", "--data", dir)
	adm = b.admin(t)
	if n, _ := endOffsets(t, adm, "otlp_spans"); n != 1 {
		t.Fatalf("persistent restart: %d records, want 1", n)
	}
	if got := committed(t, adm, "g", "otlp_spans"); got != 1 {
		t.Fatalf("persistent restart: committed %d, want 1", got)
	}
	b.stop(t)
}
