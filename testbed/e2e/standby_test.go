// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// standbyDeadline is how soon a broken standby must show, from the issue
// "Members' health known before data needs it": the probe's failures open
// its breaker after circuit_breaker::failure_threshold (3) probes, one per
// probe::interval (1s).
const standbyDeadline = 10 * time.Second

// The DLQ member is the standby: while ClickHouse is up it takes no data,
// and only its background probe can tell that it could not. Kafka stopped
// while ClickHouse is up: the ingest group is degraded within seconds (its
// status, the member-state metric, one warning naming member, broker and
// topic) and stays ready, since ClickHouse takes the data; when Kafka is
// back, so is the group.
func TestStandbyKafkaStoppedIsReportedBeforeItIsNeeded(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	e.requireStandby("healthy", 30*time.Second, allSignals...)

	if err := e.kafka.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	took := e.requireStandby("degraded", standbyDeadline, allSignals...)
	t.Logf("DLQ member reported down %v after Kafka stopped", took.Round(time.Millisecond))
	e.requireOneProbeWarning(e.kafka.Addr, "otlp_spans_dlq")
	r, err := e.col.Readiness("traces/ingest", false)
	if err != nil || r.Code != 200 {
		t.Fatalf("readiness of traces/ingest while ClickHouse takes the data: %v, %v; want 200", r, err)
	}

	e.startKafka()
	took = e.requireStandby("healthy", 30*time.Second, allSignals...)
	t.Logf("DLQ member healthy again %v after Kafka started", took.Round(time.Millisecond))
}

// A DLQ topic that does not exist, with auto-creation off: reported at start,
// not when ClickHouse first fails and clients get errors; healthy again once
// the topic is created. Topics are destinations of their own: the logs
// topic missing degrades the logs instance of the group only, and traces
// and metrics can still be parked.
func TestStandbyTopicMissingIsReportedAtStart(t *testing.T) {
	const missing = "otlp_logs_dlq"
	e := newEnv(t, envOptions{kafkaWithout: []string{missing}})
	took := e.requireStandby("degraded", standbyDeadline, "logs")
	e.requireStandby("healthy", time.Second, "traces", "metrics")
	t.Logf("DLQ member reported down %v after the collector was ready", took.Round(time.Millisecond))
	e.requireOneProbeWarning(e.kafka.Addr, missing)
	if !strings.Contains(e.collectorLog(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Error("the warning does not give Kafka's error code")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := e.kafka.CreateTopics(ctx, missing); err != nil {
		t.Fatal(err)
	}
	took = e.requireStandby("healthy", 30*time.Second, allSignals...)
	t.Logf("DLQ member healthy again %v after the topic was created", took.Round(time.Millisecond))
}

var allSignals = []string{"traces", "metrics", "logs"}

// requireStandby waits until the ingest group's DLQ member is in the given
// health for each signal, as every view of it says: the member-state
// metric (0 closed, 2 open), and the group instance's component status in
// the readiness endpoint's verbose answer for the signal's ingest pipeline
// (StatusOK either way; the degradation in its error and
// failover_group.health attribute). It returns how long it took.
func (e *env) requireStandby(health string, timeout time.Duration, signals ...string) time.Duration {
	e.t.Helper()
	wantState := 0.0
	if health == "degraded" {
		wantState = 2
	}
	return e.waitUntil(fmt.Sprintf("the ingest group's DLQ member to be %s for %v", health, signals), timeout, func(context.Context) (bool, error) {
		for _, sig := range signals {
			state, series, err := e.col.MetricSeries("otelcol_failover_group_member_state", "group=failover_group/ingest", "member="+dlqMember, "otelcol_signal="+sig)
			if err != nil || series != 1 || state != wantState {
				return false, fmt.Errorf("%s member state: %v over %d series, err %w", sig, state, series, err)
			}
			r, err := e.col.Readiness(sig+"/ingest", true)
			if err != nil {
				return false, err
			}
			g := r.Component("exporter:failover_group/ingest")
			if g == nil {
				return false, fmt.Errorf("no failover_group/ingest in %v", r)
			}
			if g.Status != "StatusOK" || g.Attributes["failover_group.health"] != health {
				return false, fmt.Errorf("%s group status %s %v (%s)", sig, g.Status, g.Attributes, g.Error)
			}
			if health == "degraded" && !strings.Contains(g.Error, "member kafka/dlq circuit breaker is open") {
				return false, fmt.Errorf("group status error %q does not name the DLQ member", g.Error)
			}
		}
		return true, nil
	})
}

// requireOneProbeWarning: one WARN line for the DLQ member's failed probes
// (not one per signal, not one per probe), naming the member, the broker
// and the topic.
func (e *env) requireOneProbeWarning(broker, topic string) {
	e.t.Helper()
	var lines []string
	for l := range strings.SplitSeq(e.collectorLog(), "\n") {
		if strings.Contains(l, "\twarn\t") && strings.Contains(l, "failed its probe") && strings.Contains(l, `"member": "`+dlqMember+`"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		e.t.Fatalf("%d warnings for the DLQ member's failed probes, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, want := range []string{broker, topic} {
		if !strings.Contains(lines[0], want) {
			e.t.Errorf("the warning does not name %s: %s", want, lines[0])
		}
	}
}
