// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command dlq inspects and redrives the Kafka dead-letter queue (DLQ) and
// poison topics of an otelcol-failover collector. It reads the collector's
// own config file to find brokers, auth, topics and replay consumer groups,
// so it needs no settings of its own.
//
//	dlq stats   [--config FILE] [--topic T] [--json]
//	dlq peek    [--config FILE] [-n N] [--topic T] [--json]
//	dlq redrive [--config FILE] --from poison|TOPIC --to dlq|TOPIC [--reason R] [--since T] [--apply]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// defaultConfig is where the container image keeps the collector's config.
const defaultConfig = "/etc/otelcol-failover/config.yaml"

const usage = `dlq inspects and redrives the Kafka DLQ and poison topics of otelcol-failover,
reading brokers, auth, topics and replay consumer groups from the collector's config.

Usage:
  dlq stats   [flags]   records, bytes, replay lag, stamp times, reasons per topic and partition
  dlq peek    [flags]   decode records: signal, item counts, services, time range, stamp headers
  dlq redrive [flags]   copy poison records back into the DLQ (dry run unless --apply)
  dlq version

Run 'dlq <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit status: 0 done, 1 failed,
// 2 bad usage.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "dlq", version)
		return 0
	case "stats", "peek", "redrive":
	default:
		fmt.Fprintf(stderr, "dlq: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet("dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", defaultConfig, "the collector's config file")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the brokers' answers before failing")
	var (
		topic, from, to, reason, since string
		asJSON, apply                  bool
		n                              int
	)
	switch cmd {
	case "stats", "peek":
		fs.StringVar(&topic, "topic", "", "only this DLQ or poison topic (default: all of the config's)")
		fs.BoolVar(&asJSON, "json", false, "write JSON instead of text")
		if cmd == "peek" {
			fs.IntVar(&n, "n", 10, "records to decode per topic, from the oldest")
		}
	case "redrive":
		fs.StringVar(&from, "from", "", "`poison` (every poison topic) or a poison topic")
		fs.StringVar(&to, "to", "", "`dlq` (the DLQ topic of each record's signal) or a DLQ topic")
		fs.StringVar(&reason, "reason", "", "only records whose poison reason matches this pattern (path.Match: permanent:*)")
		fs.StringVar(&since, "since", "", "only records poisoned at or after this time (RFC 3339, a date, or a duration back from now: 2h)")
		fs.BoolVar(&apply, "apply", false, "write the copies (default: dry run, print what would be copied)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dlq %s: unexpected argument %q (flags start with -)\n", cmd, fs.Arg(0))
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "dlq %s: --timeout must be positive\n", cmd)
		return 2
	}
	var ropts redriveOptions
	switch cmd {
	case "peek":
		if n <= 0 {
			fmt.Fprintf(stderr, "dlq peek: -n must be at least 1\n")
			return 2
		}
	case "redrive":
		if from == "" || to == "" {
			fmt.Fprintf(stderr, "dlq redrive: --from and --to are required, e.g. --from poison --to dlq\n")
			return 2
		}
		at, err := parseSince(since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "dlq redrive: %v\n", err)
			return 2
		}
		ropts = redriveOptions{from: from, to: to, reason: reason, since: at, apply: apply}
	}

	s, err := loadConfig(*config, lookup)
	if err != nil {
		// loadConfig scrubs the secrets it read from its errors.
		fmt.Fprintf(stderr, "dlq %s: %v\n", cmd, err)
		return 1
	}
	sess := newSession(*timeout)
	defer sess.close()
	switch cmd {
	case "stats":
		err = runStats(ctx, s, sess, topic, asJSON, stdout)
	case "peek":
		err = runPeek(ctx, s, sess, peekOptions{n: n, topic: topic, json: asJSON}, stdout)
	case "redrive":
		err = runRedrive(ctx, s, sess, ropts, stdout)
	}
	if err != nil {
		msg := strings.TrimSpace(scrub(err.Error(), s.secrets))
		fmt.Fprintf(stderr, "dlq %s: %s\n", cmd, strings.ReplaceAll(msg, "\n", "\ndlq "+cmd+": "))
		return 1
	}
	return 0
}
