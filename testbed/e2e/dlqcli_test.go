// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

// The dlq command against what the real collector parked: ClickHouse is
// stopped, load goes to the DLQ topics, and bin/dlq, given the reference
// configuration and the test's broker through KAFKA_BROKERS (as an operator
// runs it), counts the parked records per topic with their stamp and
// decodes them.

// dlqCLI runs bin/dlq from the repository root with KAFKA_BROKERS set to
// the test's broker and returns its stdout; a non-zero exit fails the test.
func (e *env) dlqCLI(args ...string) string {
	e.t.Helper()
	bin := filepath.Join(e.root, "bin", "dlq")
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+e.kafka.Addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("bin/dlq %s: %v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// dlqStatsTopic is the part of `dlq stats --json` the test reads.
type dlqStatsTopic struct {
	Topic   string           `json:"topic"`
	Role    string           `json:"role"`
	Records int64            `json:"records"`
	Lag     map[string]int64 `json:"lag"`
	Reasons []struct {
		Reason       string `json:"reason"`
		FailedMember string `json:"failed_member"`
		Records      int64  `json:"records"`
	} `json:"reasons"`
}

// dlqPeekRecord is the part of `dlq peek --json` the test reads.
type dlqPeekRecord struct {
	Topic       string            `json:"topic"`
	Signal      string            `json:"signal"`
	Items       int               `json:"items"`
	Services    []string          `json:"services"`
	First       *time.Time        `json:"first_item_time"`
	Headers     map[string]string `json:"headers"`
	DecodeError string            `json:"decode_error"`
}

// requireDlqBinary fails (never skips) the test without bin/dlq.
func requireDlqBinary(t *testing.T) {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "dlq")); err != nil {
		t.Fatalf("bin/dlq not found: run `make build` (make test builds it first): %v", err)
	}
}

func TestDlqcliStatsAndPeekParkedRecords(t *testing.T) {
	requireDlqBinary(t)
	e := newEnv(t, envOptions{})
	e.waitLiveStarted()
	e.stopClickHouse()

	const batches, size = 10, 20
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res := e.loadOpts(ctx, loadgen.Options{Batches: batches, BatchSize: size, RetryFor: 30 * time.Second})
	requireAccepted(t, res, batches)
	parked := e.dlqRecords(ctx)
	for _, topic := range stack.DLQTopics {
		if parked[topic] == 0 {
			t.Fatalf("nothing parked in %s with ClickHouse down: %v", topic, parked)
		}
	}
	t.Logf("parked: %v", parked)

	const config = "testdata/otelcol-failover.yaml"

	// stats: every parked record, per topic, with the live member's
	// transient failure as the reason, and all of it due to the replay
	// (ClickHouse is still down: nothing is committed).
	var stats []dlqStatsTopic
	if err := json.Unmarshal([]byte(e.dlqCLI("stats", "--config", config, "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ts := range stats {
		seen[ts.Topic] = true
		want, isDLQ := parked[ts.Topic]
		if !isDLQ {
			if ts.Role != "poison" || ts.Records != 0 {
				t.Errorf("%s: role %s, %d records; want an empty poison topic", ts.Topic, ts.Role, ts.Records)
			}
			continue
		}
		if ts.Records != want {
			t.Errorf("%s: stats counts %d records, the broker holds %d", ts.Topic, ts.Records, want)
		}
		if group := replayGroups[ts.Topic]; ts.Lag[group] != want {
			t.Errorf("%s: lag of %s is %v, want %d (nothing replayed while ClickHouse is down)", ts.Topic, group, ts.Lag, want)
		}
		var counted int64
		for _, r := range ts.Reasons {
			counted += r.Records
			if !strings.HasPrefix(r.Reason, "transient:") || r.FailedMember != liveMember {
				t.Errorf("%s: %d records with reason %q and failed member %q; want transient:... and %s", ts.Topic, r.Records, r.Reason, r.FailedMember, liveMember)
			}
		}
		if counted != want {
			t.Errorf("%s: reasons count %d records, want %d", ts.Topic, counted, want)
		}
	}
	for _, topic := range append(append([]string{}, stack.DLQTopics...), stack.PoisonTopics...) {
		if !seen[topic] {
			t.Errorf("stats left out %s", topic)
		}
	}

	// The table says so for people.
	table := e.dlqCLI("stats", "--config", config)
	t.Logf("dlq stats:\n%s", table)
	for _, topic := range stack.DLQTopics {
		row := fmt.Sprintf(`(?m)^%s +dlq +all +%d +\d+ +%s +%d +20\d\d-`, topic, parked[topic], replayGroups[topic], parked[topic])
		if !regexp.MustCompile(row).MatchString(table) {
			t.Errorf("no total row for %s in the table (want %s)", topic, row)
		}
		reason := fmt.Sprintf(`(?m)^%s +transient:\S+ +%s +- +\d+$`, topic, liveMember)
		if !regexp.MustCompile(reason).MatchString(table) {
			t.Errorf("no reason row for %s in the table (want %s)", topic, reason)
		}
	}

	// peek: records decoded as the load sent them.
	var recs []dlqPeekRecord
	if err := json.Unmarshal([]byte(e.dlqCLI("peek", "-n", "2", "--config", config, "--json")), &recs); err != nil {
		t.Fatal(err)
	}
	perTopic := map[string]int{}
	for _, r := range recs {
		perTopic[r.Topic]++
		if r.DecodeError != "" || r.Items == 0 || len(r.Services) != 1 || r.Services[0] != e.run || r.First == nil {
			t.Errorf("%s: decoded as %+v; want items of service %s with times", r.Topic, r, e.run)
		}
		if r.Headers["otelcol-failover-group"] != "failover_group/ingest" || r.Headers["otelcol-failover-failed-member"] != liveMember ||
			r.Headers["otelcol-failover-dedup-token"] == "" {
			t.Errorf("%s: headers %v; want the ingest group's stamp with a token", r.Topic, r.Headers)
		}
	}
	for _, topic := range stack.DLQTopics {
		if want := min(2, int(parked[topic])); perTopic[topic] != want {
			t.Errorf("peek -n 2 decoded %d records of %s, want %d", perTopic[topic], topic, want)
		}
	}
	text := e.dlqCLI("peek", "-n", "2", "--config", config)
	t.Logf("dlq peek -n 2:\n%s", text)
	for _, want := range []string{
		"traces: ", " spans in ", "metrics: ", " data points in ", "logs: ", " log records in ",
		"services: " + e.run, "otelcol-failover-failed-member: " + liveMember, "otelcol-failover-reason: transient:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("peek's text has no %q", want)
		}
	}
}
