// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command demo is `make demo`: the product's promise in under three minutes
// on this machine. It starts a local ClickHouse engine (bin/devclickhouse), a
// local Kafka (bin/devkafka) and the collector with the reference
// configuration, sends steady OTLP load whose every item has a unique id,
// stops ClickHouse for a while, starts it again, waits for the DLQ replay and
// prints what happened. It exits non-zero if anything was lost.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
	"github.com/otelfailover/otelcol-failover/testbed/stack"
)

func main() {
	var (
		loadFor     = flag.Duration("load", 50*time.Second, "how long to send load")
		outageAt    = flag.Duration("outage-at", 12*time.Second, "when to stop ClickHouse, from the start of the load")
		outageFor   = flag.Duration("outage", 20*time.Second, "how long ClickHouse stays down")
		rate        = flag.Float64("rate", 30, "batches per second, over traces, metrics and logs")
		batchSize   = flag.Int("batch", 100, "items per batch")
		replayWait  = flag.Duration("replay-timeout", 90*time.Second, "how long to wait for the replay to finish")
		keepWorkdir = flag.Bool("keep", false, "keep the working directory (logs, data) after a successful run")
		killReplay  = flag.Bool("kill-mid-replay", false, "kill the collector (SIGKILL) while it replays the DLQ, then start it again: "+
			"the replay resumes and ClickHouse drops what it already took (the load then ends with the outage, so that no client request is cut)")
		protocol = flag.String("protocol", stack.ProtocolHTTP, "what the collector's clickhouse members speak to ClickHouse: "+
			"http (the HTTP interface, CLICKHOUSE_ENDPOINT=http://HOST:PORT) or native (the native TCP protocol, CLICKHOUSE_ENDPOINT=tcp://HOST:PORT); "+
			"devclickhouse serves both, the demo's own queries always go over HTTP")
	)
	flag.Parse()
	if *protocol != stack.ProtocolHTTP && *protocol != stack.ProtocolNative {
		fmt.Fprintf(os.Stderr, "demo: -protocol %q: want %s or %s\n", *protocol, stack.ProtocolHTTP, stack.ProtocolNative)
		os.Exit(2)
	}
	if *killReplay && *loadFor > *outageAt+*outageFor {
		// A client request cut by the kill would be retried as a new
		// request: the client's copy, not the collector's, is then
		// written twice. The kill is meant to hit the replay alone.
		*loadFor = *outageAt + *outageFor
	}
	os.Exit(run(*loadFor, *outageAt, *outageFor, *rate, *batchSize, *replayWait, *keepWorkdir, *killReplay, *protocol))
}

func run(loadFor, outageAt, outageFor time.Duration, rate float64, batchSize int, replayWait time.Duration, keep, killReplay bool, protocol string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer stack.KillAll() // whatever happens, no process is left behind

	root, err := stack.RepoRoot()
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "otelcol-failover-demo-")
	if err != nil {
		return fail(err)
	}
	say("working directory %s (logs of every process are there)", dir)

	ch, err := stack.NewClickHouse(root, dir)
	if err != nil {
		return fail(err)
	}
	ch.Protocol = protocol
	chEndpoint, err := ch.CollectorEndpoint()
	if err != nil {
		return fail(err)
	}
	kafka, err := stack.NewKafka(root, dir, 4)
	if err != nil {
		return fail(err)
	}
	col, err := stack.NewCollector(root, dir, filepath.Join(root, "testdata", "otelcol-failover.yaml"), ch, kafka)
	if err != nil {
		return fail(err)
	}
	shutdown := func() {
		_ = col.Stop(30 * time.Second)
		_ = kafka.Stop(10 * time.Second)
		_ = ch.Stop(20 * time.Second)
	}
	defer shutdown()

	if _, err := ch.Start(60 * time.Second); err != nil {
		return fail(err)
	}
	say("ClickHouse engine (chDB) serving HTTP on %s and the native protocol on %s", ch.Endpoint(), ch.NativeEndpoint())
	if _, err := kafka.Start(30 * time.Second); err != nil {
		return fail(err)
	}
	say("Kafka serving on %s, DLQ topics %s", kafka.Addr, strings.Join(stack.DLQTopics, ", "))
	if err := col.StartAndWait(60 * time.Second); err != nil {
		return fail(err)
	}
	say("collector healthy, OTLP/HTTP on %s, config testdata/otelcol-failover.yaml, ClickHouse over %s (CLICKHOUSE_ENDPOINT=%s)", col.OTLPHTTP, protocol, chEndpoint)

	runID := fmt.Sprintf("demo-%d", time.Now().Unix())
	batches := int(rate * loadFor.Seconds() / float64(len(loadgen.AllSignals)))
	began := time.Now()
	say("sending %d items per signal at %.0f batches/s for %v (service.name=%s)", batches*batchSize, rate, loadFor, runID)
	loadDone := make(chan *loadgen.Result, 1)
	go func() {
		loadDone <- loadgen.Run(ctx, loadgen.Options{
			Endpoint: col.OTLPHTTP, Run: runID, Signals: loadgen.AllSignals,
			Batches: batches, BatchSize: batchSize, Workers: 96, Rate: rate, RetryFor: 2 * time.Minute,
		})
	}()

	var outageStart, outageEnd time.Time
	if stack.Sleep(ctx, outageAt) != nil {
		return interrupted()
	}
	if err := ch.Stop(20 * time.Second); err != nil {
		return fail(err)
	}
	outageStart = time.Now()
	say("ClickHouse STOPPED (outage of %v begins)", outageFor)
	if stack.Sleep(ctx, outageFor) != nil {
		return interrupted()
	}
	if _, err := ch.Start(60 * time.Second); err != nil {
		return fail(err)
	}
	outageEnd = time.Now()
	say("ClickHouse STARTED again")
	liveBack := failback(ctx, col, outageEnd, "failover_group/ingest", "clickhouse/live")
	replayBack := failback(ctx, col, outageEnd, "failover_group/replay", "clickhouse/replay")

	var res *loadgen.Result
	select {
	case res = <-loadDone:
	case <-ctx.Done():
		return interrupted()
	}
	say("load finished: %d batches accepted, %d rejected", res.Accepted.Load(), res.Rejected.Load())
	killed, before := "", counts{}
	if killReplay {
		var kerr error
		if killed, before, kerr = killMidReplay(ctx, col); kerr != nil {
			return fail(kerr)
		}
	}

	// Wait for the replay: every id of every signal in ClickHouse.
	want := int64(batches * batchSize)
	say("waiting for the DLQ replay (up to %v)...", replayWait)
	waitCtx, cancel := context.WithTimeout(ctx, replayWait)
	defer cancel()
	distinct := map[loadgen.Signal]int64{}
	rows := map[loadgen.Signal]int64{}
	_ = stack.WaitFor(waitCtx, time.Second, func() (bool, error) {
		all := true
		for _, s := range loadgen.AllSignals {
			v, err := ch.QueryInts(waitCtx, loadgen.CountQuery(s, runID))
			if err != nil || len(v) != 2 {
				return false, err
			}
			rows[s], distinct[s] = v[0], v[1]
			all = all && v[1] >= want
		}
		return all, nil
	})
	if ctx.Err() != nil {
		return interrupted()
	}
	replayedAt := time.Now()

	after := readCounts(col)
	live, parked, replayed := before.live+after.live, before.parked+after.parked, before.replayed+after.replayed
	var sent, inCH, dups int64
	for _, s := range loadgen.AllSignals {
		sent += res.Items(s)
		inCH += distinct[s]
		dups += rows[s] - distinct[s]
	}
	lost := int64(len(loadgen.AllSignals))*want - inCH
	changes := stateChanges(col.LogPath)
	// The DLQ as an operator sees it after the drain, with bin/dlq and the
	// collector's own config; read while Kafka still runs.
	dlqStats := runDLQStats(ctx, root, kafka.Addr)
	shutdown()

	fmt.Println()
	fmt.Println("┌─ otelcol-failover demo ─────────────────────────────────────────────")
	fmt.Printf("│ protocol          %s: the clickhouse members wrote over %s\n", protocol, chEndpoint)
	fmt.Printf("│ sent              %9d items (%d spans, %d metric points, %d log records)\n", sent, res.Items(loadgen.Traces), res.Items(loadgen.Metrics), res.Items(loadgen.Logs))
	fmt.Printf("│ written live      %9.0f into ClickHouse by failover_group/ingest\n", live)
	fmt.Printf("│ parked in the DLQ %9.0f into Kafka: ClickHouse down %v, then until a probe found it back\n", parked, outageEnd.Sub(outageStart).Round(time.Second))
	fmt.Printf("│ replayed          %9.0f from Kafka into ClickHouse by failover_group/replay\n", replayed)
	fmt.Printf("│ in ClickHouse     %9d distinct ids\n", inCH)
	mark := "OK, nothing lost"
	if lost != 0 {
		mark = "ITEMS LOST"
	}
	fmt.Printf("│ lost              %9d   %s\n", lost, mark)
	dupMark := "OK, exactly once"
	if dups != 0 {
		dupMark = "DUPLICATE ROWS"
	}
	fmt.Printf("│ duplicates        %9d   %s\n", dups, dupMark)
	if killed != "" {
		fmt.Printf("│ crash             %s\n", killed)
	}
	fmt.Printf("│ failback          primary took data %s after ClickHouse answered, replay began %s after\n", <-liveBack, <-replayBack)
	fmt.Printf("│ timeline          load +0s, ClickHouse down +%.0fs, up +%.0fs, replay done +%.0fs\n",
		outageStart.Sub(began).Seconds(), outageEnd.Sub(began).Seconds(), replayedAt.Sub(began).Seconds())
	fmt.Println("│ state changes of the groups' members:")
	for _, c := range summarize(changes) {
		fmt.Printf("│   %+6.1fs  %-22s %-17s %s\n", c.at.Sub(began).Seconds(), c.group, c.member, c.what)
	}
	fmt.Println("└─────────────────────────────────────────────────────────────────────")
	fmt.Println()
	fmt.Println("bin/dlq stats --config testdata/otelcol-failover.yaml  (the DLQ after the drain: lag 0)")
	fmt.Print(dlqStats)
	if lost != 0 || dups != 0 {
		say("logs kept in %s", dir)
		return 1
	}
	if !keep {
		_ = os.RemoveAll(dir)
	}
	return 0
}

// runDLQStats runs `bin/dlq stats` on the reference configuration against
// the demo's Kafka and returns its output (or why it failed).
func runDLQStats(ctx context.Context, root, brokers string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "dlq"), "stats", "--config", filepath.Join(root, "testdata", "otelcol-failover.yaml"))
	cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+brokers)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(dlq stats failed: %v)\n", out, err)
	}
	return string(out)
}

// counts are the items the groups' members took, from the collector's
// metrics.
type counts struct{ live, parked, replayed float64 }

func readCounts(col *stack.Collector) counts {
	var c counts
	c.live, _ = col.Metric("otelcol_failover_group_delivered_items", "member=clickhouse/live")
	c.parked, _ = col.Metric("otelcol_failover_group_delivered_items", "member=kafka/dlq")
	c.replayed, _ = col.Metric("otelcol_failover_group_delivered_items", "member=clickhouse/replay")
	return c
}

// killAfter is how far into the replay the collector is killed: far enough
// that records it replayed are not committed yet.
const killAfter = 2000

// killMidReplay waits until the replay is under way, kills the collector
// with SIGKILL (a crash: no shutdown, offsets of replayed records not
// committed) and starts it again. It returns what happened, for the
// summary, and the counts read just before the kill (the restarted
// collector's metrics start from zero).
func killMidReplay(ctx context.Context, col *stack.Collector) (string, counts, error) {
	say("waiting for the replay to be under way, to kill the collector in the middle of it...")
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var before counts
	err := stack.WaitFor(waitCtx, 20*time.Millisecond, func() (bool, error) {
		before = readCounts(col)
		return before.replayed >= killAfter, nil
	})
	if err != nil {
		return "", before, fmt.Errorf("the replay did not reach %d items: %w", killAfter, err)
	}
	col.Kill()
	say("collector KILLED (SIGKILL) after replaying %.0f items; starting it again", before.replayed)
	if err := col.StartAndWait(60 * time.Second); err != nil {
		return "", before, err
	}
	say("collector restarted; the replay resumes from the last committed offsets")
	return fmt.Sprintf("collector killed (SIGKILL) %.0f items into the replay and restarted; replayed counts the records replayed again, which ClickHouse dropped by their tokens", before.replayed), before, nil
}

type change struct {
	at     time.Time
	group  string // the group logs a member's change once for all its signals
	member string
	what   string
}

// stateChanges reads the group's state-change log lines (one per change, not
// per batch) from the collector log.
func stateChanges(logPath string) []change {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []change
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 5)
		if len(parts) < 5 || !strings.HasPrefix(parts[2], "failovergroupexporter/") {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", parts[0])
		if err != nil {
			continue
		}
		var fields map[string]any
		_ = json.Unmarshal([]byte(parts[4]), &fields)
		str := func(k string) string { s, _ := fields[k].(string); return s }
		what := parts[3]
		switch {
		case strings.Contains(what, "answered a probe"):
			what = "probe succeeded: the next batch goes to it"
		case strings.Contains(what, "failed its probe"):
			what = "probe failed"
		case strings.Contains(what, "breaker opened"):
			what = "breaker open: skipped, data to the next member"
		case strings.Contains(what, "half-open"):
			what = "breaker half-open: probing"
		case strings.Contains(what, "breaker closed"):
			what = "breaker closed: takes data again"
		case strings.Contains(what, "could not start"):
			what = "could not start: retrying in the background"
		case strings.Contains(what, "Member started"):
			what = "started"
		default:
			continue
		}
		out = append(out, change{at: at, group: str("otelcol.component.id"), member: str("member"), what: what})
	}
	return out
}

// summarize folds a half-open that a batch closed or reopened within two
// seconds into one line.
func summarize(changes []change) []change {
	var folded []change
	for i := 0; i < len(changes); i++ {
		c := changes[i]
		next := func(prefix string) bool {
			return i+1 < len(changes) && changes[i+1].member == c.member && changes[i+1].group == c.group &&
				strings.HasPrefix(changes[i+1].what, prefix) && changes[i+1].at.Sub(c.at) < 2*time.Second
		}
		switch {
		case strings.HasPrefix(c.what, "breaker half-open") && next("breaker open"):
			c.what = "trial batch failed: open again, for longer"
			i++
		case strings.HasPrefix(c.what, "breaker half-open") && next("breaker closed"):
			c.what = "trial batch succeeded: breaker closed, takes data again"
			i++
		}
		folded = append(folded, c)
	}
	return folded
}

// failback measures, in the background, how long after ClickHouse answered
// (`since`) the group's member took data again: the first rise of its
// delivered-items metric, polled every 20 ms.
func failback(ctx context.Context, col *stack.Collector, since time.Time, group, member string) <-chan string {
	out := make(chan string, 1)
	go func() {
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		at, err := col.WaitIncrease(waitCtx, 20*time.Millisecond, "otelcol_failover_group_delivered_items", "group="+group, "member="+member)
		if err != nil {
			out <- "(not seen: " + err.Error() + ")"
			return
		}
		out <- at.Sub(since).Round(10 * time.Millisecond).String()
	}()
	return out
}

func say(format string, args ...any) {
	fmt.Printf("%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "demo failed:", err)
	return 2
}

func interrupted() int {
	fmt.Fprintln(os.Stderr, "demo interrupted; every process it started is stopped")
	return 130
}
