package failovergroupexporter // import "github.com/otelfailover/otelcol-failover/failovergroupexporter"

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

	MemberStart MemberStartConfig `mapstructure:"member_start"`

	// QueueConfig and BackOffConfig are the group's own exporterhelper queue
	// and retry, in front of the failover decision. Off by default: the group
	// answers synchronously, so a receiver sees an error when every member
	// failed. With a persistent queue (storage) data waits on disk instead.
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// factories is the member factory registry this config was decoded with.
	factories memberFactories
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

type plainConfig Config

func createDefaultConfig(factories memberFactories) func() component.Config {
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
			MemberStart: MemberStartConfig{
				Timeout:         30 * time.Second,
				InitialInterval: time.Second,
				MaxInterval:     30 * time.Second,
			},
			QueueConfig:   configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
			BackOffConfig: retry,
			factories:     factories,
		}
	}
}

// Unmarshal decodes the group's own keys normally and each member with its
// own factory's default config, so a member's config is decoded, defaulted
// and validated exactly as that exporter's own config would be.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	rest := conf.ToStringMap()
	rawMembers, hasMembers := rest["members"]
	delete(rest, "members")
	// plainConfig has Config's fields but not its Unmarshal method, so this
	// decodes the group's own keys (unknown keys are still errors) without
	// recursing into Unmarshal.
	if err := confmap.NewFromStringMap(rest).Unmarshal((*plainConfig)(c)); err != nil {
		return err
	}
	if !hasMembers || rawMembers == nil {
		c.Members = nil
		return nil
	}
	list, ok := rawMembers.([]any)
	if !ok {
		return fmt.Errorf("members: must be a list of one-key maps `- type[/name]: {config}`, got %T", rawMembers)
	}
	c.Members = make([]MemberConfig, 0, len(list))
	for i, raw := range list {
		m, err := c.factories.decodeMember(raw, c.AttemptTimeout)
		if err != nil {
			return fmt.Errorf("members[%d]%s: %w", i, m.labelSuffix(), err)
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
		errs = append(errs, errors.New("members: at least one member is required, e.g. `members: [{clickhouse/live: {endpoint: ...}}, {kafka/dlq: {brokers: [...]}}]`"))
	}
	seen := make(map[component.ID]int, len(c.Members))
	for i, m := range c.Members {
		if prev, dup := seen[m.id]; dup {
			errs = append(errs, fmt.Errorf("members[%d] %s: duplicate member id, already used by members[%d]; give each member its own name (`%s/<name>`)", i, m.id, prev, m.id.Type()))
			continue
		}
		seen[m.id] = i
		if err := confmap.Validate(m.cfg); err != nil {
			errs = append(errs, fmt.Errorf("members[%d] %s: %w", i, m.id, err))
		}
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("attempt_timeout: must be positive, got %v", c.AttemptTimeout))
	}
	switch c.OnPermanentError {
	case PermanentErrorNextMember, PermanentErrorReturn:
	default:
		errs = append(errs, fmt.Errorf("on_permanent_error: must be %q or %q, got %q", PermanentErrorNextMember, PermanentErrorReturn, c.OnPermanentError))
	}
	if err := c.CircuitBreaker.validate(); err != nil {
		errs = append(errs, fmt.Errorf("circuit_breaker: %w", err))
	}
	if err := c.MemberStart.validate(); err != nil {
		errs = append(errs, fmt.Errorf("member_start: %w", err))
	}
	return errors.Join(errs...)
}

func (b BreakerConfig) validate() error {
	var errs []error
	if b.FailureThreshold < 1 {
		errs = append(errs, fmt.Errorf("failure_threshold: must be at least 1, got %d", b.FailureThreshold))
	}
	if b.SuccessThreshold < 1 {
		errs = append(errs, fmt.Errorf("success_threshold: must be at least 1, got %d", b.SuccessThreshold))
	}
	if b.OpenDuration <= 0 {
		errs = append(errs, fmt.Errorf("open_duration: must be positive, got %v", b.OpenDuration))
	}
	if b.MaxOpenDuration <= 0 {
		errs = append(errs, fmt.Errorf("max_open_duration: must be positive, got %v", b.MaxOpenDuration))
	} else if b.OpenDuration > b.MaxOpenDuration {
		errs = append(errs, fmt.Errorf("max_open_duration: must not be shorter than open_duration (%v < %v)", b.MaxOpenDuration, b.OpenDuration))
	}
	if b.BackoffMultiplier < 1 {
		errs = append(errs, fmt.Errorf("backoff_multiplier: must be at least 1 (1 keeps open_duration constant), got %v", b.BackoffMultiplier))
	}
	return errors.Join(errs...)
}

func (s MemberStartConfig) validate() error {
	var errs []error
	if s.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %v", s.Timeout))
	}
	if s.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("initial_interval: must be positive, got %v", s.InitialInterval))
	}
	if s.MaxInterval <= 0 {
		errs = append(errs, fmt.Errorf("max_interval: must be positive, got %v", s.MaxInterval))
	} else if s.InitialInterval > s.MaxInterval {
		errs = append(errs, fmt.Errorf("max_interval: must not be shorter than initial_interval (%v < %v)", s.MaxInterval, s.InitialInterval))
	}
	return errors.Join(errs...)
}
