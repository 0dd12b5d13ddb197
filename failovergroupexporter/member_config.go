// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
)

// Member options: keys written next to the member's `type[/name]` key, in
// the same list element. They are the group's settings for that member, not
// the exporter's.
const optionDeadLetter = "dead_letter"

var memberOptions = []string{optionDeadLetter}

// MemberConfig is one decoded member: its id as written in the group, its
// own exporter config (decoded by its own factory), the group's options for
// it, and what the group needs to know of the exporter's effective config.
type MemberConfig struct {
	id      component.ID
	cfg     component.Config
	factory exporter.Factory
	// deadLetter: the member parks data for later replay (a DLQ). Data
	// replayed from a DLQ is never given to it (loop guard). Option
	// `dead_letter`; default true for kafka members, false otherwise.
	deadLetter bool
	// deadLetterSet: the user wrote dead_letter (print-config shows it).
	deadLetterSet bool
	facts         memberFacts
}

// ID is the member as configured, e.g. clickhouse/live.
func (m MemberConfig) ID() component.ID { return m.id }

// Config is the member's own exporter config.
func (m MemberConfig) Config() component.Config { return m.cfg }

// DeadLetter reports whether the member is a dead-letter queue.
func (m MemberConfig) DeadLetter() bool { return m.deadLetter }

// Marshal writes the member back as its map, so that `otelcol print-config`
// shows members (with secrets still redacted by the member config's own
// opaque types).
func (m MemberConfig) Marshal(conf *confmap.Conf) error {
	sub := confmap.New()
	if err := sub.Marshal(m.cfg); err != nil {
		return err
	}
	out := map[string]any{m.id.String(): sub.ToStringMap()}
	if m.deadLetterSet {
		out[optionDeadLetter] = m.deadLetter
	}
	return conf.Merge(confmap.NewFromStringMap(out))
}

func (m MemberConfig) labelSuffix() string {
	if m.id.Type().String() == "" {
		return ""
	}
	return " " + m.id.String()
}

// memberFactories is the registry of exporter factories members can be built
// from, keyed by type and by deprecated type alias (otlp, otlphttp).
type memberFactories map[component.Type]exporter.Factory

func newMemberFactories(factories []exporter.Factory) memberFactories {
	r := make(memberFactories, len(factories)*2)
	for _, f := range factories {
		r[f.Type()] = f
		if a, ok := f.(interface{ DeprecatedAlias() component.Type }); ok && a.DeprecatedAlias().String() != "" {
			r[a.DeprecatedAlias()] = f
		}
	}
	return r
}

func (r memberFactories) typeNames() string {
	names := make([]string, 0, len(r))
	for t := range r {
		names = append(names, t.String())
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// decodeMember turns one list element, `type[/name]: config` plus member
// options, into a MemberConfig. The exporter config is decoded by the
// member's own factory after the group's overrides (member_overrides.go).
func (r memberFactories) decodeMember(raw any, g groupSettings) (MemberConfig, error) {
	elem, ok := raw.(map[string]any)
	if !ok {
		return MemberConfig{}, fmt.Errorf("%w, got %s", errMemberShape, describe(raw))
	}
	key, body, options, err := splitMemberElement(elem)
	if err != nil {
		return MemberConfig{}, err
	}
	var id component.ID
	if err := id.UnmarshalText([]byte(key)); err != nil {
		return MemberConfig{}, fmt.Errorf("%w %q: %w", errInvalidMemberID, key, err)
	}
	m := MemberConfig{id: id}
	if id.Type() == metadata.Type {
		return m, errNestedGroup
	}
	factory, ok := r[id.Type()]
	if !ok {
		return m, fmt.Errorf("%w %q; known types: %s (custom builds can add factories with NewFactoryWithMembers)", errUnknownMemberType, id.Type(), r.typeNames())
	}
	m.factory = factory
	if err := m.setOptions(options); err != nil {
		return m, err
	}

	userMap := map[string]any{}
	if body != nil {
		if userMap, ok = body.(map[string]any); !ok {
			return m, fmt.Errorf("%w, got %s", errMemberConfigNotMap, describe(body))
		}
	}
	user := confmap.NewFromStringMap(userMap)
	defaults := confmap.New()
	cfg := factory.CreateDefaultConfig()
	if err := defaults.Marshal(cfg); err != nil {
		return m, fmt.Errorf("cannot read the default config of %q: %w", id.Type(), err)
	}
	if err := checkSynchronous(user); err != nil {
		return m, err
	}
	if err := user.Merge(confmap.NewFromStringMap(groupOverrides(id, defaults, user, g))); err != nil {
		return m, err
	}
	if err := user.Unmarshal(cfg); err != nil {
		return m, err
	}
	m.cfg = cfg
	m.facts = readFacts(id, cfg)
	return m, nil
}

// splitMemberElement separates the member's `type[/name]` key from the
// member options in one list element.
func splitMemberElement(elem map[string]any) (key string, body any, options map[string]any, err error) {
	var keys []string
	for k, v := range elem {
		if isMemberOption(k) {
			if options == nil {
				options = map[string]any{}
			}
			options[k] = v
			continue
		}
		keys = append(keys, k)
		key, body = k, v
	}
	if len(keys) != 1 {
		sort.Strings(keys)
		return "", nil, nil, fmt.Errorf("%w, got the keys %q", errMemberShape, keys)
	}
	return key, body, options, nil
}

func isMemberOption(k string) bool {
	return slices.Contains(memberOptions, k)
}

func (m *MemberConfig) setOptions(options map[string]any) error {
	m.deadLetter = m.id.Type() == kafkaType
	v, set := options[optionDeadLetter]
	if !set || v == nil { // `dead_letter:` with no value keeps the default
		return nil
	}
	b, ok := v.(bool)
	if !ok {
		return atKey(optionDeadLetter, fmt.Errorf("%w, got %s", errNotABool, describe(v)))
	}
	m.deadLetter, m.deadLetterSet = b, true
	return nil
}

func describe(v any) string {
	if v == nil {
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}
