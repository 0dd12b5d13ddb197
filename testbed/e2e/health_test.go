// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// ingestPipeline is the pipeline the readiness probe of the README asks for.
const ingestPipeline = "traces/ingest"

// ingestExporter is the ingest group's key in a verbose healthcheckv2 answer.
const ingestExporter = "exporter:failover_group/ingest"

// The health endpoints of the reference configuration tell the truth, under
// load, through every phase a deployment meets:
//
//	healthy                      liveness 200, readiness 200 (healthy)
//	standby DLQ (Kafka) down     liveness 200, readiness 200 (degraded: kafka/dlq)
//	ClickHouse down              liveness 200, readiness 200 (degraded: clickhouse/live), data parked;
//	                             unscoped readiness 500 (the replay group waits for ClickHouse by design)
//	ClickHouse and Kafka down    liveness 200, readiness 500 (no member can take data)
//	both back, no traffic        readiness 200 again (the groups' probes find them)
//
// Liveness and readiness are polled all along; every liveness answer must be
// 200, and every readiness answer 200 until Kafka is stopped on top of
// ClickHouse.
func TestHealthLivenessAndReadiness(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	e.warmUp()

	mon := e.monitorHealth()
	defer mon.stop()

	// Healthy.
	mon.setPhase("healthy", true)
	e.waitReady("the ingest group to report healthy", 30*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "healthy", "")
	})
	if h := e.readiness("", false); h.Code != 200 {
		t.Errorf("unscoped readiness while everything is up: %v", h)
	}
	if h := e.readiness("traces/nope", false); h.Code != 404 {
		t.Errorf("readiness of a pipeline the collector does not have: %v, want HTTP 404", h)
	}

	// Steady load from here on (the breakers move on failed batches), each
	// batch sent once and its answer kept by phase: while ready, every
	// batch must be accepted.
	load := e.startPhasedLoad(mon)
	defer load.stop()

	// The standby DLQ member down, ClickHouse up: ready, degraded.
	mon.setPhase("Kafka down", true)
	if err := e.kafka.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	h := e.waitReady("the ingest group to report kafka/dlq down (degraded)", 60*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "degraded", "kafka/dlq")
	})
	t.Logf("Kafka down, ClickHouse up: %v", h)
	mon.setPhase("Kafka back", true)
	e.startKafka()
	e.waitReady("the ingest group to report healthy after Kafka came back", 60*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "healthy", "")
	})

	// ClickHouse down, Kafka up: still ready (the data is parked), degraded.
	mon.setPhase("ClickHouse down", true)
	before := e.dlqRecords(ctx)
	e.stopClickHouse()
	h = e.waitReady("the ingest group to report clickhouse/live down (degraded)", 60*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "degraded", "clickhouse/live")
	})
	t.Logf("ClickHouse down: %v", h)
	// Keep the outage on while the DLQ takes a fair amount of data, with
	// readiness polled all along: 5 merged records, one per
	// dead_letter_batch::linger (2s), each holding many requests.
	e.waitUntil("data parked in the DLQ while ClickHouse is down", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := e.kafka.EndOffsets(ctx, "otlp_spans_dlq")
		return n >= before["otlp_spans_dlq"]+5, err
	})
	// Why readiness is scoped to the ingest pipeline: unscoped, it follows
	// the replay group too, which has no working member while ClickHouse is
	// down (by design: replay waits for ClickHouse).
	e.waitUntil("unscoped readiness to fail on the replay group", 60*time.Second, func(context.Context) (bool, error) {
		u := e.readiness("", false)
		if u.Code != 500 {
			return false, fmt.Errorf("unscoped readiness %v", u)
		}
		t.Logf("unscoped readiness while ClickHouse is down: %v", u)
		return true, nil
	})
	if err := wantIngest(e.readiness(ingestPipeline, true), 200, "degraded", "clickhouse/live"); err != nil {
		t.Errorf("readiness of %s after the DLQ took data: %v", ingestPipeline, err)
	}

	// ClickHouse and Kafka down: no member can take data, not ready.
	mon.setPhase("ClickHouse and Kafka down", false)
	if err := e.kafka.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	downSince := time.Now()
	h = e.waitReady("readiness to fail with ClickHouse and Kafka down", 90*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 500, "unavailable", "kafka/dlq")
	})
	t.Logf("not ready %v after Kafka stopped too: %v", time.Since(downSince).Round(time.Millisecond), h)
	if h.Status != "StatusRecoverableError" || h.Healthy {
		t.Errorf("readiness with no member: status %q healthy %v, want StatusRecoverableError, false", h.Status, h.Healthy)
	}
	if l := e.liveness(); l.Code != 200 {
		t.Errorf("liveness with ClickHouse and Kafka down: %v, want 200 (restarting would not help)", l)
	}
	// Not ready means what it says: a new batch is refused at once, with a
	// retryable answer (the client keeps its data).
	began := time.Now()
	r := e.loadOpts(ctx, loadgen.Options{Run: e.run + "-not-ready", Signals: []loadgen.Signal{loadgen.Traces}, Batches: 1, BatchSize: 10})
	if r.Rejected.Load() != 1 || r.FirstError == nil || !strings.Contains(r.FirstError.Error(), "HTTP 503") {
		t.Errorf("a batch sent while not ready: %d accepted, %d rejected (%v), want refused with HTTP 503", r.Accepted.Load(), r.Rejected.Load(), r.FirstError)
	}
	t.Logf("a batch sent while not ready: refused in %v: %v", time.Since(began).Round(time.Millisecond), r.FirstError)

	// Both back, without traffic: a replica out of its load balancer gets
	// none, so readiness must come back on the groups' own probes.
	stopping := time.Now()
	load.stop()
	t.Logf("load by phase (batches accepted/rejected): %s; stopped in %v", load, time.Since(stopping).Round(time.Millisecond))
	mon.setPhase("both back", false)
	e.startKafka()
	e.startClickHouse()
	back := time.Now()
	e.waitReady("readiness to pass again after both came back", 90*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "", "")
	})
	t.Logf("ready %v after both came back, without traffic", time.Since(back).Round(time.Millisecond))
	h = e.waitReady("the ingest group to report healthy after both came back", 90*time.Second, func(h *stack.HealthStatus) error {
		return wantIngest(h, 200, "healthy", "")
	})
	t.Logf("healthy %v after both came back: %v", time.Since(back).Round(time.Millisecond), h)

	mon.stop()
	mon.check(t)
	load.check(t)
}

// wantIngest checks a verbose readiness answer for the ingest pipeline: the
// HTTP code, failover_group/ingest's failover_group.health attribute (empty:
// any) and a member its error must name (empty: no error wanted when health
// is "healthy", anything otherwise).
func wantIngest(h *stack.HealthStatus, code int, health, member string) error {
	if h.Code != code {
		return fmt.Errorf("HTTP %d, want %d: %s", h.Code, code, h.Body)
	}
	g := h.Component(ingestExporter)
	if g == nil {
		return fmt.Errorf("no %s in the answer: %s", ingestExporter, h.Body)
	}
	if got := fmt.Sprint(g.Attributes["failover_group.health"]); health != "" && got != health {
		return fmt.Errorf("failover_group.health %q, want %q: %s", got, health, h.Body)
	}
	if health == "healthy" && g.Error != "" {
		return fmt.Errorf("healthy with an error: %s", h.Body)
	}
	if member != "" && !strings.Contains(g.Error, "member "+member) {
		return fmt.Errorf("error %q does not name member %s", g.Error, member)
	}
	return nil
}

// readiness asks the readiness endpoint; it fails the test if it does not
// answer at all.
func (e *env) readiness(pipeline string, verbose bool) *stack.HealthStatus {
	e.t.Helper()
	h, err := e.col.Readiness(pipeline, verbose)
	if err != nil {
		e.t.Fatalf("readiness of %q: %v", pipeline, err)
	}
	return h
}

func (e *env) liveness() *stack.HealthStatus {
	e.t.Helper()
	h, err := e.col.Liveness()
	if err != nil {
		e.t.Fatalf("liveness: %v", err)
	}
	return h
}

// waitReady polls the verbose readiness of the ingest pipeline until check
// passes, and returns that answer.
func (e *env) waitReady(what string, timeout time.Duration, check func(*stack.HealthStatus) error) *stack.HealthStatus {
	e.t.Helper()
	var last *stack.HealthStatus
	e.waitUntil(what, timeout, func(context.Context) (bool, error) {
		h, err := e.col.Readiness(ingestPipeline, true)
		if err != nil {
			return false, err
		}
		last = h
		if err := check(h); err != nil {
			return false, err
		}
		return true, nil
	})
	return last
}

// healthMonitor polls liveness and the ingest readiness every 200 ms and
// keeps every answer that breaks the phase's promise.
type healthMonitor struct {
	col  *stack.Collector
	mu   sync.Mutex
	bad  []string
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// phase and whether readiness must be 200 in it.
	phase     atomic.Pointer[string]
	mustReady atomic.Bool
	polls     atomic.Int64
}

func (e *env) monitorHealth() *healthMonitor {
	m := &healthMonitor{col: e.col, done: make(chan struct{})}
	m.setPhase("start", true)
	m.wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			phase, mustReady := *m.phase.Load(), m.mustReady.Load()
			m.polls.Add(1)
			if h, err := m.col.Liveness(); err != nil || h.Code != 200 {
				m.record("%s: liveness %v %v", phase, h, err)
			}
			h, err := m.col.Readiness(ingestPipeline, false)
			// The phase may have moved on while the request was out.
			if mustReady && m.mustReady.Load() && (err != nil || h.Code != 200) {
				m.record("%s: readiness %v %v", phase, h, err)
			}
		}
	})
	return m
}

func (m *healthMonitor) current() (phase string, mustReady bool) {
	return *m.phase.Load(), m.mustReady.Load()
}

func (m *healthMonitor) setPhase(phase string, mustReady bool) {
	m.phase.Store(&phase)
	m.mustReady.Store(mustReady)
}

func (m *healthMonitor) record(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bad = append(m.bad, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func (m *healthMonitor) stop() {
	m.once.Do(func() { close(m.done) })
	m.wg.Wait()
}

func (m *healthMonitor) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("health monitor: %d polls of liveness and readiness", m.polls.Load())
	if len(m.bad) > 0 {
		t.Errorf("%d health answers broke their phase's promise (liveness always 200; readiness 200 until ClickHouse and Kafka are both down):\n%s",
			len(m.bad), strings.Join(m.bad, "\n"))
	}
}

// phasedLoad sends one batch of every signal about every 100 ms, each sent
// once (no retry: a refused batch is counted, and the load keeps flowing
// while no member can take data), and counts the answers by the monitor's
// phase. A batch refused in a phase where readiness must pass is a broken
// promise: the collector said "ready" and refused data. (A batch in flight
// on kafka/dlq when Kafka stops may get no answer until Kafka is back: the
// kafka exporter's synchronous produce does not give up in-flight records
// when its context ends; the loadgen client gives up after 30 s.)
type phasedLoad struct {
	mon *healthMonitor
	// cancel ends the run in flight at stop (it may be waiting for Kafka).
	cancel  context.CancelFunc
	halt    atomic.Bool
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.Mutex
	byPhase map[string]*phaseCounts
	order   []string
	bad     []string
}

type phaseCounts struct{ accepted, rejected int64 }

func (e *env) startPhasedLoad(mon *healthMonitor) *phasedLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &phasedLoad{mon: mon, cancel: cancel, byPhase: map[string]*phaseCounts{}}
	l.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; !l.halt.Load(); i++ {
			phase, mustReady := mon.current()
			r := e.loadOpts(ctx, loadgen.Options{
				Run: fmt.Sprintf("%s-load-%d", e.run, i), Batches: 1, BatchSize: 20, Workers: len(loadgen.AllSignals),
			})
			phaseAfter, _ := mon.current()
			l.mu.Lock()
			c := l.byPhase[phase]
			if c == nil {
				c = &phaseCounts{}
				l.byPhase[phase] = c
				l.order = append(l.order, phase)
			}
			c.accepted += r.Accepted.Load()
			c.rejected += r.Rejected.Load()
			if r.Rejected.Load() > 0 && mustReady && phaseAfter == phase && ctx.Err() == nil {
				l.bad = append(l.bad, fmt.Sprintf("%s %s: %d of %d batches refused: %v",
					time.Now().Format("15:04:05.000"), phase, r.Rejected.Load(), len(loadgen.AllSignals), r.FirstError))
			}
			l.mu.Unlock()
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	})
	return l
}

func (l *phasedLoad) stop() {
	l.once.Do(func() { l.halt.Store(true); l.cancel() })
	l.wg.Wait()
}

func (l *phasedLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, p := range l.order {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p, l.byPhase[p].accepted, l.byPhase[p].rejected))
	}
	return strings.Join(parts, "; ")
}

func (l *phasedLoad) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Errorf("batches refused while the collector had to be ready:\n%s", strings.Join(l.bad, "\n"))
	}
}
