// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"go.opentelemetry.io/collector/pipeline"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// Config is the dlq_routing connector's configuration.
//
// One connector configuration serves traces, metrics and logs: each signal's
// instance uses the pipelines of its own signal from each list.
type Config struct {
	// ReplayPipelines receive the data recognized as replayed from the DLQ
	// (and only that data). Required.
	ReplayPipelines []pipeline.ID `mapstructure:"replay_pipelines"`

	// DefaultPipelines receive everything else. Optional: without them,
	// data that does not match is refused with an error.
	DefaultPipelines []pipeline.ID `mapstructure:"default_pipelines"`

	// PoisonPipelines receive replayed data that the replay pipelines
	// rejected permanently (bad data), so that it does not block the DLQ
	// partition. Optional: without them the permanent error is returned.
	PoisonPipelines []pipeline.ID `mapstructure:"poison_pipelines"`

	// Match says how replayed data is recognized from the client metadata
	// that the kafka receiver attaches to each record.
	Match MatchConfig `mapstructure:"match"`

	// Replay paces the data going to the replay pipelines (replay_pace.go).
	Replay ReplayConfig `mapstructure:"replay"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// MatchConfig holds the criteria; data is replayed DLQ data if ANY
// configured criterion matches.
type MatchConfig struct {
	// Topics matches the kafka receiver's `kafka.topic` metadata: data read
	// from one of these topics (exact names) is replayed data.
	Topics []string `mapstructure:"topics"`

	// DLQHeader matches data carrying the `otelcol-failover-group` metadata
	// key, which failover_group stamps on data it dead-letters and which
	// survives Kafka as a record header (kafka exporter
	// include_metadata_keys, kafka receiver headers-as-metadata). Default
	// true.
	DLQHeader bool `mapstructure:"dlq_header"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ReplayConfig paces the replay, so that draining the DLQ leaves room for
// the live data.
type ReplayConfig struct {
	// MaxItemsPerSecond caps the items (spans, data points, log records)
	// this connector hands to the replay pipelines per second, over all
	// partitions of its signal. 0: no limit (the default: the DLQ drains as
	// fast as ClickHouse takes it).
	MaxItemsPerSecond float64 `mapstructure:"max_items_per_second"`

	// HoldWhileFailingOver holds replayed data back while a failover_group
	// of this collector that has a dead-letter member (a live group) is
	// failing over: its first member's breaker is open or the member is not
	// started, or it parked data in the last second. Default true: a ClickHouse that just came
	// back, or is straining, gets the live data first.
	HoldWhileFailingOver bool `mapstructure:"hold_while_failing_over"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func createDefaultConfig() *Config {
	return &Config{Match: MatchConfig{DLQHeader: true}, Replay: ReplayConfig{HoldWhileFailingOver: true}}
}

// Configuration errors; each message names the key at fault (first) and
// says how to fix it.
var (
	errNoReplayPipelines = errors.New("must list at least one pipeline, the one(s) that data replayed from the DLQ goes to, e.g. [traces/replay]")
	errListedTwice       = errors.New("is listed twice; list each one once")
	errSharedPipeline    = errors.New("must not be shared between two lists")
	errUnsupportedSignal = errors.New("signal is not supported; dlq_routing routes traces, metrics and logs")
	errEmptyTopic        = errors.New("topic name is empty; remove the entry or name the DLQ topic")
	errBadRate           = errors.New("must be a number of items per second, 0 or more (0: no limit)")
	errNoMatch           = fmt.Errorf("no criterion is configured, so no data would ever be recognized as replayed; "+
		"set match::topics to the DLQ topic(s) the kafka receiver reads, and/or set match::dlq_header to true (matches the %q metadata that failover_group stamps)",
		dlqmeta.KeyGroup)
)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.ReplayPipelines) == 0 {
		errs = append(errs, fmt.Errorf("replay_pipelines: %w", errNoReplayPipelines))
	}
	lists := []struct {
		key string
		ids []pipeline.ID
	}{
		{"replay_pipelines", cfg.ReplayPipelines},
		{"default_pipelines", cfg.DefaultPipelines},
		{"poison_pipelines", cfg.PoisonPipelines},
	}
	firstList := map[pipeline.ID]string{}
	for _, l := range lists {
		seen := map[pipeline.ID]bool{}
		for _, id := range l.ids {
			if err := checkSignal(id); err != nil {
				errs = append(errs, fmt.Errorf("%s: pipeline %q: %w", l.key, id, err))
			}
			if seen[id] {
				errs = append(errs, fmt.Errorf("%s: pipeline %q %w", l.key, id, errListedTwice))
				continue
			}
			seen[id] = true
			if other, ok := firstList[id]; ok {
				errs = append(errs, fmt.Errorf("%s: pipeline %q is also in %s: a pipeline %w (%s); remove it from one of them",
					l.key, id, other, errSharedPipeline, overlapReason(other, l.key)))
				continue
			}
			firstList[id] = l.key
		}
	}

	seenTopic := map[string]bool{}
	for i, t := range cfg.Match.Topics {
		switch {
		case strings.TrimSpace(t) == "":
			errs = append(errs, fmt.Errorf("match::topics[%d]: %w", i, errEmptyTopic))
		case seenTopic[t]:
			errs = append(errs, fmt.Errorf("match::topics: topic %q %w", t, errListedTwice))
		}
		seenTopic[t] = true
	}
	if r := cfg.Replay.MaxItemsPerSecond; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		errs = append(errs, fmt.Errorf("replay::max_items_per_second: %w, got %v", errBadRate, r))
	}
	if len(cfg.Match.Topics) == 0 && !cfg.Match.DLQHeader {
		errs = append(errs, fmt.Errorf("match: %w", errNoMatch))
	}
	return errors.Join(errs...)
}

func checkSignal(id pipeline.ID) error {
	switch id.Signal() {
	case pipeline.SignalTraces, pipeline.SignalMetrics, pipeline.SignalLogs:
		return nil
	default:
		return fmt.Errorf("%q: %w", id.Signal(), errUnsupportedSignal)
	}
}

func overlapReason(first, second string) string {
	switch first + "," + second {
	case "replay_pipelines,default_pipelines":
		return "replayed data goes only to the replay pipelines and other data only to the default ones"
	case "replay_pipelines,poison_pipelines":
		return "data the replay pipelines rejected would be sent back to a pipeline that rejected it"
	default:
		return "rejected replay data would be mixed into the data of the default pipelines"
	}
}
