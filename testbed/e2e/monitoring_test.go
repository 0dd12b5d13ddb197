// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
)

// The shipped alerts and dashboard (deploy/monitoring) against a real
// Prometheus scraping the real collector every second, through an outage
// under load: ClickHouse stops, then Kafka too for a few seconds, then both
// come back, and a batch that ClickHouse refuses as bad is replayed into
// poison. The rules are loaded with their durations divided by 60
// (monitoringTimeScale: `for: 5m` is 5s here); the production durations
// are proven by `promtool test rules` (alerts_test.yaml).
//
//   - OtelcolFailoverParking goes pending, then firing, during the outage,
//     and is resolved once ClickHouse is back (inactive when the DLQ has
//     drained);
//   - OtelcolFailoverDLQNotDraining fires while replay is stalled (data
//     parked, ClickHouse down, every replay attempt failing);
//   - OtelcolFailoverDataRefused fires while Kafka is down too, and not
//     before;
//   - OtelcolFailoverPoisonArriving fires when the bad batch reaches the
//     poison topic;
//   - no alert is pending or firing before the outage, the standby alert
//     never, and every dashboard panel's query returns data.
func TestMonitoringOutageAlertsAndDashboard(t *testing.T) {
	requirePrometheus(t)
	// The reference configuration as it ships: its DLQ receivers have
	// records_delay on, which the dashboard's age panel reads.
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	e.warmUp()
	e.waitReplayConsumers()
	prom := e.startPrometheus()
	w := watchAlerts(t, prom)
	d := readDashboard(t, e.root)

	// ClickHouse refuses the poison service's spans as bad data (a CHECK
	// constraint), as in the poison tests.
	poisonService := e.run + "-poison"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := e.ch.Query(ctx, fmt.Sprintf(
		"ALTER TABLE otel.otel_traces ADD CONSTRAINT no_poison CHECK ServiceName != '%s'", poisonService)); err != nil {
		t.Fatal(err)
	}

	// Steady load through the whole scenario: 10 batches a second over the
	// three signals; a refused batch is sent again, as an OTLP client does.
	stopLoad := e.backgroundLoad(loadgen.Options{BatchSize: 20, Rate: 10, Duration: 5 * time.Minute, RetryFor: 2 * time.Minute})
	defer stopLoad()

	// Healthy: a few evaluations with data flowing and nothing pending.
	began := time.Now()
	e.waitUntil("three rule evaluations under load", 10*time.Second, func(ctx context.Context) (bool, error) {
		s, err := prom.Query(ctx, `sum(otelcol_failover_group_delivered_items{member="clickhouse/live"})`)
		return err == nil && len(s) == 1 && s[0].Value > 0 && time.Since(began) > 3*time.Second, err
	})
	for _, name := range alertNames(t, e.root) {
		w.requireNot(name, began)
	}

	// ClickHouse stops: the ingest group parks, the replay group stalls.
	e.stopClickHouse()
	outage := time.Now()
	pending := w.waitState("OtelcolFailoverParking", "pending", 30*time.Second)
	firing := w.waitState("OtelcolFailoverParking", "firing", 30*time.Second)
	t.Logf("OtelcolFailoverParking: pending %.1fs and firing %.1fs after ClickHouse stopped (for: 5m scaled to 5s)",
		pending.Sub(outage).Seconds(), firing.Sub(outage).Seconds())

	// One batch of spans that ClickHouse will refuse: parked now, poison on
	// replay.
	r := e.loadOpts(ctx, loadgen.Options{Run: poisonService, Signals: []loadgen.Signal{loadgen.Traces}, Batches: 1, BatchSize: 5, RetryFor: time.Minute})
	requireAcceptedBatches(t, r, 1)

	stalled := w.waitState("OtelcolFailoverDLQNotDraining", "firing", 60*time.Second)
	t.Logf("OtelcolFailoverDLQNotDraining: firing %.1fs after ClickHouse stopped (for: 15m scaled to 15s); %s",
		stalled.Sub(outage).Seconds(), w.timeline("OtelcolFailoverDLQNotDraining", outage))
	w.waitFiring("OtelcolFailoverDLQNotDraining", map[string]string{"otelcol_signal": "traces", "instance": fmt.Sprintf("127.0.0.1:%d", e.col.MetricsPort)}, 5*time.Second)
	w.requireNot("OtelcolFailoverDataRefused", began)

	// Kafka stops too: no member of the ingest group works.
	if err := e.kafka.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	bothDown := time.Now()
	refused := w.waitState("OtelcolFailoverDataRefused", "firing", 45*time.Second)
	t.Logf("OtelcolFailoverDataRefused: firing %.1fs after Kafka stopped too (for: 3m scaled to 3s)", refused.Sub(bothDown).Seconds())
	w.waitFiring("OtelcolFailoverDataRefused", map[string]string{"group": "failover_group/ingest", "severity": "critical"}, 5*time.Second)
	e.startKafka()
	kafkaBack := time.Now()
	e.waitUntil("the DLQ member to take data again", 30*time.Second, func(context.Context) (bool, error) {
		v, series, err := e.col.MetricSeries("otelcol_failover_group_member_state", "group=failover_group/ingest", "member="+dlqMember)
		return series == len(loadgen.AllSignals) && v == 0, err
	})

	// ClickHouse is back: live writes resume, the DLQ drains, the poison
	// batch goes to the poison topic.
	e.startClickHouse()
	back := time.Now()
	e.waitReplayConsumers()
	drained := e.waitDrained(60 * time.Second)
	drainedAt := time.Now()
	t.Logf("DLQ drained %.1fs after ClickHouse answered: %v", drainedAt.Sub(back).Seconds(), drained)
	resolved := w.waitState("OtelcolFailoverParking", "inactive", 30*time.Second)
	t.Logf("OtelcolFailoverParking: resolved %.1fs after ClickHouse answered (%.1fs after the drain); timeline from the outage: %s",
		resolved.Sub(back).Seconds(), resolved.Sub(drainedAt).Seconds(), w.timeline("OtelcolFailoverParking", outage))
	// How old the parked data was when replay read it (the dashboard's
	// records_delay panel): the first records were parked about when
	// ClickHouse stopped.
	age, err := prom.Query(ctx, `max(histogram_quantile(0.99, sum by (le, topic) (rate(otelcol_kafka_receiver_records_delay_bucket{topic=~".*_dlq"}[1m]))))`)
	if err != nil || len(age) != 1 {
		t.Fatalf("age of the DLQ data when replayed: %v, %v", age, err)
	}
	mean, err := prom.Query(ctx, `max(sum by (topic) (rate(otelcol_kafka_receiver_records_delay_sum{topic=~".*_dlq"}[1m])) / sum by (topic) (rate(otelcol_kafka_receiver_records_delay_count{topic=~".*_dlq"}[1m])))`)
	if err != nil || len(mean) != 1 {
		t.Fatalf("mean age of the DLQ data when replayed: %v, %v", mean, err)
	}
	t.Logf("age of the DLQ data when replayed: p99 %.1fs (interpolated in its bucket), mean %.1fs (largest topic); ClickHouse was down %.1fs",
		age[0].Value, mean[0].Value, back.Sub(outage).Seconds())
	if minAge := back.Sub(outage) / 2; age[0].Value < minAge.Seconds() {
		t.Errorf("p99 age of the replayed DLQ data %.1fs, want at least %v: the oldest records waited for the whole outage", age[0].Value, minAge)
	}
	poison := w.waitFiring("OtelcolFailoverPoisonArriving", map[string]string{"otelcol_signal": "traces"}, 30*time.Second)
	t.Logf("OtelcolFailoverPoisonArriving: %s", poison.Annotations["summary"])
	w.waitState("OtelcolFailoverDLQNotDraining", "inactive", 30*time.Second)
	w.waitState("OtelcolFailoverDataRefused", "inactive", 30*time.Second)

	// Every panel of the dashboard shows data.
	series := requirePanelsHaveData(t, prom, d, 20*time.Second)
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s: %d series", k, series[k])
	}
	t.Logf("dashboard panels with data:%s", b.String())

	// The standby alert is for a broken DLQ while ClickHouse works: with
	// ClickHouse down as well, it must stay quiet (the data-refused alert
	// speaks for both).
	w.requireNot("OtelcolFailoverStandbyUnhealthy", began)
	w.requireNot("OtelcolFailoverPoisonStalled", began)
	for _, name := range alertNames(t, e.root) {
		t.Logf("%s: %s", name, w.timeline(name, outage))
	}
	t.Logf("outage: ClickHouse down %.1fs (Kafka down too for %.1fs of it)", back.Sub(outage).Seconds(), kafkaBack.Sub(bothDown).Seconds())

	res := stopLoad()
	if res.Accepted.Load() == 0 {
		t.Fatalf("no batch accepted: %v", res.FirstError)
	}
	t.Logf("load: %d batches accepted, %d rejected after retries or at the stop (first error: %v), %d retries",
		res.Accepted.Load(), res.Rejected.Load(), res.FirstError, res.Retries.Load())
}

// Kafka stops while ClickHouse works: the DLQ member and the poison member
// fail their probes, OtelcolFailoverStandbyUnhealthy fires for both groups
// and resolves when Kafka is back; nothing else fires (the data goes to
// ClickHouse).
func TestMonitoringStandbyUnhealthy(t *testing.T) {
	requirePrometheus(t)
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	prom := e.startPrometheus()
	w := watchAlerts(t, prom)
	began := time.Now()

	if err := e.kafka.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	r := e.loadOpts(t.Context(), loadgen.Options{Batches: 5, BatchSize: 10, RetryFor: time.Minute})
	requireAcceptedBatches(t, r, 5*int64(len(loadgen.AllSignals)))
	for _, group := range []string{"failover_group/ingest", "failover_group/poison"} {
		a := w.waitFiring("OtelcolFailoverStandbyUnhealthy", map[string]string{"group": group}, 45*time.Second)
		t.Logf("%s: %s", group, a.Annotations["summary"])
	}
	firing := w.firstSince("OtelcolFailoverStandbyUnhealthy", "firing", stopped)
	t.Logf("OtelcolFailoverStandbyUnhealthy: firing %.1fs after Kafka stopped (for: 5m scaled to 5s)", firing.Sub(stopped).Seconds())

	e.startKafka()
	back := time.Now()
	resolved := w.waitState("OtelcolFailoverStandbyUnhealthy", "inactive", 30*time.Second)
	t.Logf("OtelcolFailoverStandbyUnhealthy: resolved %.1fs after Kafka started; %s", resolved.Sub(back).Seconds(),
		w.timeline("OtelcolFailoverStandbyUnhealthy", stopped))
	for _, name := range []string{"OtelcolFailoverParking", "OtelcolFailoverDataRefused", "OtelcolFailoverDLQNotDraining", "OtelcolFailoverPoisonArriving", "OtelcolFailoverPoisonStalled"} {
		w.requireNot(name, began)
	}
}

// requireAcceptedBatches: the client's want batches were all accepted.
func requireAcceptedBatches(t *testing.T, r *loadgen.Result, want int64) {
	t.Helper()
	if r.Accepted.Load() != want || r.Rejected.Load() != 0 {
		t.Fatalf("OTLP client: %d of %d batches accepted, %d rejected (first error: %v)", r.Accepted.Load(), want, r.Rejected.Load(), r.FirstError)
	}
}

// backgroundLoad sends load described by opts until the returned function
// is called (or opts run out); that function stops it, waits for the last
// answers and returns the result. It may be called more than once.
func (e *env) backgroundLoad(opts loadgen.Options) func() *loadgen.Result {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *loadgen.Result, 1)
	go func() { done <- e.loadOpts(ctx, opts) }()
	var once sync.Once
	var res *loadgen.Result
	return func() *loadgen.Result {
		once.Do(func() {
			cancel()
			res = <-done
		})
		return res
	}
}
