// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Values of on_permanent_error.
const (
	// PermanentErrorNextMember parks data that a member rejected as bad in the
	// next member (usually the DLQ), where it can be inspected and replayed.
	PermanentErrorNextMember = "next_member"
	// PermanentErrorReturn returns the permanent error upstream at once.
	PermanentErrorReturn = "return"
)

// Config is the failover_group exporter's configuration.
type Config struct {
	// Members are tried in order; the first is the primary. Each is declared
	// inline as a one-key map `type[/name]: <that exporter's config>`. Decoded
	// by Unmarshal, because each element's type depends on its key.
	Members []MemberConfig `mapstructure:"members"`

	// AttemptTimeout bounds one attempt on one member, so that a hung member
	// fails over instead of stalling the pipeline.
	AttemptTimeout time.Duration `mapstructure:"attempt_timeout"`

	// OnPermanentError says what happens to data a member rejected as bad:
	// "next_member" (default) or "return".
	OnPermanentError string `mapstructure:"on_permanent_error"`

	CircuitBreaker BreakerConfig `mapstructure:"circuit_breaker"`

	// AllowInReplayPipelines accepts this group, with dead-letter members,
	// in pipelines fed by a kafka receiver (replay pipelines). Without it
	// the distribution's loop guard converter refuses such a config at
	// `validate`: replayed data is never given to a dead-letter member (the
	// runtime loop guard), so those members could never take data there.
	// Read by loopguardconverter; the group itself only documents it.
	AllowInReplayPipelines bool `mapstructure:"allow_in_replay_pipelines"`

	MemberStart MemberStartConfig `mapstructure:"member_start"`

	// Probe configures the background checks of members that are not
	// taking data: an open breaker, a member not started, a standby.
	Probe ProbeConfig `mapstructure:"probe"`

	// Deduplication configures the deduplication tokens of the batches
	// written to ClickHouse (exactly once, dedup_token.go) and the table
	// setting that makes ClickHouse honor them (dedup_schema.go).
	Deduplication DeduplicationConfig `mapstructure:"deduplication"`

	// DeadLetterBatch merges batches that go to a dead-letter member
	// untried (the members before it passed them by) into larger DLQ
	// records, which replay as larger inserts (park_batch.go).
	DeadLetterBatch DeadLetterBatchConfig `mapstructure:"dead_letter_batch"`

	// QueueConfig and BackOffConfig are the group's own exporterhelper queue
	// and retry, in front of the failover decision. Off by default: the group
	// answers synchronously, so a receiver sees an error when every member
	// failed. With a queue, retry is on by default with no time limit: data
	// waits (in memory, or on disk with `storage`) until a member takes it.
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// factories is the member factory registry this config was decoded with.
	factories memberFactories
	// now is the clock of the group's breakers and logs (tests give a
	// fake one through newFactory); nil means time.Now.
	now func() time.Time
	// probes picks a member's probe; nil means probeFor. Tests give probes
	// that fail on command, or none to count batches alone.
	probes func(mc *MemberConfig, signals []string) (destinationProbe, string)
}

// DeadLetterBatchConfig configures the merging of batches into DLQ records.
type DeadLetterBatchConfig struct {
	// Linger is how long a DLQ record waits for more batches before it is
	// written; the callers whose batches it holds wait with it. 0: off,
	// every batch is a record of its own.
	Linger time.Duration `mapstructure:"linger"`
	// MaxItems writes a record as soon as it holds this many items (it is
	// still cut to the member's record size limit).
	MaxItems int `mapstructure:"max_items"`
}

// BreakerConfig configures each member's circuit breaker.
type BreakerConfig struct {
	// FailureThreshold is the number of consecutive transient failures that
	// opens the breaker.
	FailureThreshold int `mapstructure:"failure_threshold"`
	// OpenDuration is how long the breaker stays open the first time; while
	// open, the member is skipped without any I/O.
	OpenDuration time.Duration `mapstructure:"open_duration"`
	// BackoffMultiplier grows the open period each time a probe fails.
	BackoffMultiplier float64 `mapstructure:"backoff_multiplier"`
	// MaxOpenDuration caps the open period.
	MaxOpenDuration time.Duration `mapstructure:"max_open_duration"`
	// SuccessThreshold is the number of successful probes in half-open state
	// that close the breaker again.
	SuccessThreshold int `mapstructure:"success_threshold"`
}

// ProbeConfig configures the background probes of members' destinations
// (prober.go). A probe is a cheap check without data (a ClickHouse ping, a
// Kafka metadata request for the member's topics, a TCP connection); it
// runs only while the member is not taking data, so a healthy primary under
// load is never probed.
type ProbeConfig struct {
	// Interval is the time between two probes of a member. It bounds how
	// late a member that answers again is noticed (failback).
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds one probe; below Interval.
	Timeout time.Duration `mapstructure:"timeout"`
}

// DeduplicationConfig configures deduplication tokens.
type DeduplicationConfig struct {
	// Tokens gives every batch a token that its ClickHouse inserts carry
	// (insert_deduplication_token), its DLQ record keeps as a header and
	// every replay reuses, so ClickHouse drops an insert it already
	// committed. Off only for servers older than 22.12, which refuse
	// async_insert_deduplicate.
	Tokens bool `mapstructure:"tokens"`
	// TableWindow is the non_replicated_deduplication_window that the group
	// sets on the plain (not replicated) MergeTree tables a clickhouse
	// member creates (create_schema: true) when a table has none (0, the
	// server's default, with which ClickHouse ignores tokens). It is how many
	// of a table's latest inserts are remembered: a replay later than that
	// is not deduplicated. 0 leaves tables as they are.
	TableWindow int `mapstructure:"table_window"`
}

// defaultTableWindow matches replicated_deduplication_window, the window
// of replicated tables in ClickHouse 26.
const defaultTableWindow = 10000

func (d DeduplicationConfig) validate() error {
	if d.TableWindow < 0 {
		return atKey("table_window", fmt.Errorf("%w (0 leaves the tables' own setting), got %d", errNegative, d.TableWindow))
	}
	return nil
}

// MemberStartConfig configures how members are started: in the background,
// so that a destination that is down at start does not stop the collector.
type MemberStartConfig struct {
	// Timeout bounds one Start call of a member.
	Timeout time.Duration `mapstructure:"timeout"`
	// InitialInterval is the wait before the first restart of a member whose
	// Start failed; it doubles on each failure up to MaxInterval.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`
}

var _ component.Config = (*Config)(nil)

// clock is the clock of the group's breakers and logs.
func (c *Config) clock() func() time.Time {
	if c.now != nil {
		return c.now
	}
	return time.Now
}

type plainConfig Config

func createDefaultConfig(factories memberFactories, now func() time.Time) func() component.Config {
	return func() component.Config {
		retry := configretry.NewDefaultBackOffConfig()
		retry.Enabled = false
		return &Config{
			AttemptTimeout:   5 * time.Second,
			OnPermanentError: PermanentErrorNextMember,
			CircuitBreaker: BreakerConfig{
				FailureThreshold:  3,
				OpenDuration:      5 * time.Second,
				BackoffMultiplier: 2,
				MaxOpenDuration:   30 * time.Second,
				SuccessThreshold:  1,
			},
			Probe: ProbeConfig{
				Interval: time.Second,
				Timeout:  500 * time.Millisecond,
			},
			DeadLetterBatch: DeadLetterBatchConfig{MaxItems: 10000},
			Deduplication: DeduplicationConfig{
				Tokens:      true,
				TableWindow: defaultTableWindow,
			},
			MemberStart: MemberStartConfig{
				Timeout:         30 * time.Second,
				InitialInterval: time.Second,
				MaxInterval:     30 * time.Second,
			},
			QueueConfig:   configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
			BackOffConfig: retry,
			factories:     factories,
			now:           now,
		}
	}
}

// Unmarshal decodes the group's own keys normally and each member with its
// own factory's default config, so a member's config is decoded, defaulted
// and validated exactly as that exporter's own config would be.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	retrySet := conf.IsSet("retry_on_failure") && conf.Get("retry_on_failure") != nil
	rest := conf.ToStringMap()
	rawMembers, hasMembers := rest["members"]
	delete(rest, "members")
	// plainConfig has Config's fields but not its Unmarshal method, so this
	// decodes the group's own keys (unknown keys are still errors) without
	// recursing into Unmarshal.
	if err := confmap.NewFromStringMap(rest).Unmarshal((*plainConfig)(c)); err != nil {
		return err
	}
	if c.QueueConfig.HasValue() && !c.QueueConfig.Get().WaitForResult {
		// A queued batch waits until a member takes it: exporterhelper's
		// retry with no time limit (max_elapsed_time 0 means never stop),
		// unless the user set those keys (Validate then explains). With
		// wait_for_result the clients wait for the answer and keep their
		// data: a failure goes back to them, as without a queue, so retry
		// stays off unless set (checkQueueRetry bounds it).
		if !retrySet || !conf.IsSet("retry_on_failure::enabled") {
			c.BackOffConfig.Enabled = true
		}
		if !retrySet || !conf.IsSet("retry_on_failure::max_elapsed_time") {
			c.BackOffConfig.MaxElapsedTime = 0
		}
	}
	if !hasMembers || rawMembers == nil {
		c.Members = nil
		return nil
	}
	list, ok := rawMembers.([]any)
	if !ok {
		return atKey("members", fmt.Errorf("%w, got %T", errMembersNotList, rawMembers))
	}
	c.Members = make([]MemberConfig, 0, len(list))
	for i, raw := range list {
		m, err := c.factories.decodeMember(raw, groupSettings{attemptTimeout: c.AttemptTimeout})
		if err != nil {
			return atKey(fmt.Sprintf("members[%d]%s", i, m.labelSuffix()), err)
		}
		c.Members = append(c.Members, m)
	}
	return nil
}

// Validate checks the group's keys and every member's own config. Member
// config lives in unexported fields, so confmap.Validate does not descend
// into it and each error is reported once, prefixed with the member.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Members) == 0 {
		errs = append(errs, atKey("members", errNoMembers))
	}
	seen := make(map[component.ID]int, len(c.Members))
	for i := range c.Members {
		m := &c.Members[i]
		key := fmt.Sprintf("members[%d] %s", i, m.id)
		if prev, dup := seen[m.id]; dup {
			errs = append(errs, atKey(key, fmt.Errorf("%w, already used by members[%d]; give each member its own name (`%s/<name>`)", errDuplicateMember, prev, m.id.Type())))
			continue
		}
		seen[m.id] = i
		errs = append(errs, atKey(key, confmap.Validate(m.cfg)), c.checkMemberTimeout(key, m))
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, atKey("attempt_timeout", fmt.Errorf("%w, got %v", errNotPositive, c.AttemptTimeout)))
	}
	switch c.OnPermanentError {
	case PermanentErrorNextMember, PermanentErrorReturn:
	default:
		errs = append(errs, atKey("on_permanent_error", fmt.Errorf("%w, got %q", errOnPermanentError, c.OnPermanentError)))
	}
	errs = append(errs,
		atKey("circuit_breaker", c.CircuitBreaker.validate()),
		atKey("member_start", c.MemberStart.validate()),
		atKey("probe", c.Probe.validate()),
		atKey("deduplication", c.Deduplication.validate()),
		atKey("dead_letter_batch", c.DeadLetterBatch.validate()),
		c.checkQueueRetry())
	return errors.Join(errs...)
}

// checkMemberTimeout refuses a timeout the member cannot work with (the
// kafka exporter's produce request timeout floor): with its own `timeout`
// under the floor the member never starts, and the group would run without
// it; with attempt_timeout under it, every attempt is cut before a produce
// request may end.
func (c *Config) checkMemberTimeout(key string, m *MemberConfig) error {
	f := m.facts
	if f.minTimeout == 0 {
		return nil
	}
	if c.AttemptTimeout > 0 && c.AttemptTimeout < f.minTimeout {
		return atKey("attempt_timeout", fmt.Errorf("%v for %s: %w (%v, the kafka producer's request timeout floor; attempt_timeout bounds every attempt and is the member's `timeout` unless it sets one); "+
			"raise attempt_timeout to at least %v", c.AttemptTimeout, key, errTimeoutBelowFloor, f.minTimeout, f.minTimeout))
	}
	if f.timeout > 0 && f.timeout < f.minTimeout {
		return atKey(key+"::timeout", fmt.Errorf("%v: %w (%v, the kafka producer's request timeout floor); set it to at least %v", f.timeout, errTimeoutBelowFloor, f.minTimeout, f.minTimeout))
	}
	return nil
}

// checkQueueRetry: with a group queue, a batch must wait until a member
// takes it. Without retry, exporterhelper drops it at the first failure;
// with a time limit, once the limit has passed.
func (c *Config) checkQueueRetry() error {
	if !c.QueueConfig.HasValue() {
		return nil
	}
	if c.QueueConfig.Get().WaitForResult {
		// The queue holds no data of its own: each client waits for its
		// batch's answer and sends it again after an error. A retry
		// without end would keep a batch in the queue after its clients
		// gave up and sent it again: the data would arrive twice.
		if c.BackOffConfig.Enabled && c.BackOffConfig.MaxElapsedTime == 0 {
			return atKey("retry_on_failure::max_elapsed_time", errWaitingQueueRetryUnbounded)
		}
		return nil
	}
	if !c.BackOffConfig.Enabled {
		return atKey("retry_on_failure::enabled", errQueueWithoutRetry)
	}
	if c.BackOffConfig.MaxElapsedTime > 0 {
		return atKey("retry_on_failure::max_elapsed_time", fmt.Errorf("%v: %w", c.BackOffConfig.MaxElapsedTime, errQueueRetryBounded))
	}
	return nil
}

func (b DeadLetterBatchConfig) validate() error {
	var errs []error
	if b.Linger < 0 {
		errs = append(errs, atKey("linger", fmt.Errorf("%w (0 turns merging off), got %v", errNegative, b.Linger)))
	}
	if b.Linger > maxParkLinger {
		errs = append(errs, atKey("linger", fmt.Errorf("%v: %w %v: every caller whose data is parked waits that long, and clients time out (an OTLP SDK after 10 s)", b.Linger, errLongerThan, maxParkLinger)))
	}
	if b.MaxItems < 1 {
		errs = append(errs, atKey("max_items", fmt.Errorf("%w, got %d", errBelowOne, b.MaxItems)))
	}
	return errors.Join(errs...)
}

// maxParkLinger bounds dead_letter_batch::linger.
const maxParkLinger = 5 * time.Second

func (b BreakerConfig) validate() error {
	var errs []error
	if b.FailureThreshold < 1 {
		errs = append(errs, atKey("failure_threshold", fmt.Errorf("%w, got %d", errBelowOne, b.FailureThreshold)))
	}
	if b.SuccessThreshold < 1 {
		errs = append(errs, atKey("success_threshold", fmt.Errorf("%w, got %d", errBelowOne, b.SuccessThreshold)))
	}
	if b.OpenDuration <= 0 {
		errs = append(errs, atKey("open_duration", fmt.Errorf("%w, got %v", errNotPositive, b.OpenDuration)))
	}
	if b.MaxOpenDuration <= 0 {
		errs = append(errs, atKey("max_open_duration", fmt.Errorf("%w, got %v", errNotPositive, b.MaxOpenDuration)))
	} else if b.OpenDuration > b.MaxOpenDuration {
		errs = append(errs, atKey("max_open_duration", fmt.Errorf("%w open_duration (%v < %v)", errShorterThan, b.MaxOpenDuration, b.OpenDuration)))
	}
	if b.BackoffMultiplier < 1 {
		errs = append(errs, atKey("backoff_multiplier", fmt.Errorf("%w (1 keeps open_duration constant), got %v", errBelowOne, b.BackoffMultiplier)))
	}
	return errors.Join(errs...)
}

func (p ProbeConfig) validate() error {
	var errs []error
	if p.Interval <= 0 {
		errs = append(errs, atKey("interval", fmt.Errorf("%w, got %v", errNotPositive, p.Interval)))
	}
	if p.Timeout <= 0 {
		errs = append(errs, atKey("timeout", fmt.Errorf("%w, got %v", errNotPositive, p.Timeout)))
	} else if p.Interval > 0 && p.Timeout >= p.Interval {
		errs = append(errs, atKey("timeout", fmt.Errorf("%w interval (%v >= %v): a probe must end before the next one is due", errNotBelow, p.Timeout, p.Interval)))
	}
	return errors.Join(errs...)
}

func (s MemberStartConfig) validate() error {
	var errs []error
	if s.Timeout <= 0 {
		errs = append(errs, atKey("timeout", fmt.Errorf("%w, got %v", errNotPositive, s.Timeout)))
	}
	if s.InitialInterval <= 0 {
		errs = append(errs, atKey("initial_interval", fmt.Errorf("%w, got %v", errNotPositive, s.InitialInterval)))
	}
	if s.MaxInterval <= 0 {
		errs = append(errs, atKey("max_interval", fmt.Errorf("%w, got %v", errNotPositive, s.MaxInterval)))
	} else if s.InitialInterval > s.MaxInterval {
		errs = append(errs, atKey("max_interval", fmt.Errorf("%w initial_interval (%v < %v)", errShorterThan, s.MaxInterval, s.InitialInterval)))
	}
	return errors.Join(errs...)
}
