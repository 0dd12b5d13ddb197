package failovergroupexporter // import "github.com/otelfailover/otelcol-failover/failovergroupexporter"

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelfailover/otelcol-failover/failovergroupexporter/internal/metadata"
	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// MemberConfig is one decoded member: its id as written in the group and its
// own exporter config, decoded by its own factory.
type MemberConfig struct {
	id      component.ID
	cfg     component.Config
	factory exporter.Factory
	// topics are the topics a kafka member writes, by signal name (traces,
	// metrics, logs): data read back from one of them is DLQ data even
	// without the group's stamp (loop guard).
	topics map[string]string
}

// ID is the member as configured, e.g. clickhouse/live.
func (m MemberConfig) ID() component.ID { return m.id }

// Config is the member's own exporter config.
func (m MemberConfig) Config() component.Config { return m.cfg }

// Marshal writes the member back as its one-key map, so that
// `otelcol print-config` shows members (with secrets still redacted by the
// member config's own opaque types).
func (m MemberConfig) Marshal(conf *confmap.Conf) error {
	sub := confmap.New()
	if err := sub.Marshal(m.cfg); err != nil {
		return err
	}
	return conf.Merge(confmap.NewFromStringMap(map[string]any{m.id.String(): sub.ToStringMap()}))
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

// decodeMember turns one `type[/name]: config` element into a MemberConfig.
// The member's own async queue and long retries would hide failures from the
// group, so unless the user set them they are switched off here; an async
// queue the user asked for is refused.
func (r memberFactories) decodeMember(raw any, attemptTimeout time.Duration) (MemberConfig, error) {
	elem, ok := raw.(map[string]any)
	if !ok || len(elem) != 1 {
		return MemberConfig{}, fmt.Errorf("each member must be a one-key map `- type[/name]: {config}`, got %s", describe(raw))
	}
	var key string
	var body any
	for k, v := range elem {
		key, body = k, v
	}
	var id component.ID
	if err := id.UnmarshalText([]byte(key)); err != nil {
		return MemberConfig{}, fmt.Errorf("invalid member id %q: %w", key, err)
	}
	m := MemberConfig{id: id}
	if id.Type() == metadata.Type {
		return m, errors.New("a member cannot itself be a failover_group; list its members in this group instead")
	}
	factory, ok := r[id.Type()]
	if !ok {
		return m, fmt.Errorf("unknown member type %q; known types: %s (custom builds can add factories with NewFactoryWithMembers)", id.Type(), r.typeNames())
	}
	m.factory = factory

	userMap := map[string]any{}
	if body != nil {
		userMap, ok = body.(map[string]any)
		if !ok {
			return m, fmt.Errorf("member config must be a map, got %s", describe(body))
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
	if err := user.Merge(confmap.NewFromStringMap(groupOverrides(defaults, user, attemptTimeout))); err != nil {
		return m, err
	}
	if err := user.Unmarshal(cfg); err != nil {
		return m, err
	}
	m.cfg = cfg
	if id.Type() == kafkaType {
		m.topics = signalTopics(cfg)
	}
	return m, nil
}

// signalTopics reads `<signal>::topic` from a member config (the kafka
// exporter's shape), defaults included.
func signalTopics(cfg component.Config) map[string]string {
	conf := confmap.New()
	if err := conf.Marshal(cfg); err != nil {
		return nil
	}
	topics := map[string]string{}
	for _, sig := range []string{"traces", "metrics", "logs"} {
		if t, ok := conf.Get(sig + "::topic").(string); ok && t != "" {
			topics[sig] = t
		}
	}
	return topics
}

// groupOverrides are the member settings the group changes when the user did
// not set them:
//   - sending_queue off: the member must report failures synchronously;
//   - retry_on_failure off: the group fails over instead of waiting;
//   - timeout = attempt_timeout: the member's own deadline matches the group's;
//   - include_metadata_keys += the DLQ keys, so a kafka member writes them
//     as record headers (and, with a batching queue the user set, the batch
//     partition keys too, as kafka requires).
func groupOverrides(defaults, user *confmap.Conf, attemptTimeout time.Duration) map[string]any {
	o := map[string]any{}
	if defaults.IsSet("sending_queue") && !userSet(user, "sending_queue") {
		o["sending_queue"] = map[string]any{"enabled": false}
	}
	if defaults.IsSet("retry_on_failure") && !userSet(user, "retry_on_failure") {
		o["retry_on_failure"] = map[string]any{"enabled": false}
	}
	// A non-positive attempt_timeout is the group's error to report
	// (Validate names attempt_timeout), not the member's `timeout`.
	if defaults.IsSet("timeout") && !userSet(user, "timeout") && attemptTimeout > 0 {
		o["timeout"] = attemptTimeout.String()
	}
	if defaults.IsSet("include_metadata_keys") {
		keys := toStrings(user.Get("include_metadata_keys"))
		for _, k := range dlqmeta.Keys {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		o["include_metadata_keys"] = keys
		// A (synchronous) batching queue the user set must partition
		// batches by every include_metadata_keys value, or kafka refuses the
		// config for keys the user never wrote: add the DLQ keys there too.
		if userSet(user, "sending_queue::batch") {
			pk := toStrings(user.Get("sending_queue::batch::partition::metadata_keys"))
			for _, k := range dlqmeta.Keys {
				if !slices.Contains(pk, k) {
					pk = append(pk, k)
				}
			}
			o["sending_queue"] = map[string]any{"batch": map[string]any{"partition": map[string]any{"metadata_keys": pk}}}
		}
	}
	return o
}

// userSet: the user gave the key a value. A key written with no value
// (`sending_queue:`) means "the default", which is the group's override; left
// alone it would bring the member's own default (an async queue) back.
func userSet(user *confmap.Conf, key string) bool {
	return user.IsSet(key) && user.Get(key) != nil
}

// checkSynchronous refuses a member queue that the user turned on without
// wait_for_result: the member would accept every batch into memory and the
// group would never see a failure, so it could never fail over.
func checkSynchronous(user *confmap.Conf) error {
	if !user.IsSet("sending_queue") {
		return nil
	}
	q, ok := user.Get("sending_queue").(map[string]any)
	if !ok { // `sending_queue:` with no value keeps the default, which the group turns off.
		if user.Get("sending_queue") == nil {
			return nil
		}
		return fmt.Errorf("sending_queue: must be a map, got %s", describe(user.Get("sending_queue")))
	}
	if enabled, set := q["enabled"]; set && enabled == false {
		return nil
	}
	if wait, _ := q["wait_for_result"].(bool); wait {
		return nil
	}
	return errors.New("sending_queue: a member's asynchronous queue hides its failures from the group, which then never fails over; " +
		"remove the member's sending_queue (the group turns it off by default), set `sending_queue: {wait_for_result: true}`, " +
		"or put the queue on the group itself (failover_group `sending_queue`, with `storage` to survive restarts)")
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list)+len(dlqmeta.Keys))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	if ss, ok := v.([]string); ok {
		out = append(out, ss...)
	}
	return out
}

func describe(v any) string {
	if v == nil {
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

var (
	timeoutConfigType = reflect.TypeFor[exporterhelper.TimeoutConfig]()
	retryConfigType   = reflect.TypeFor[configretry.BackOffConfig]()
	queueConfigType   = reflect.TypeFor[configoptional.Optional[exporterhelper.QueueBatchConfig]]()
)

// enforcesTimeout reports whether a member bounds every call itself within
// attempt_timeout, so that the group need not put a deadline of its own on
// each attempt (context.WithTimeout allocates on every batch). That holds
// when the member's config carries exporterhelper's TimeoutConfig (which
// exporters built on exporterhelper pass to exporterhelper.WithTimeout, as
// clickhouse, kafka and otlp_grpc do) with 0 < timeout <= attempt_timeout,
// and the member has neither its own retries (each retry gets a fresh
// timeout) nor its own queue (a blocking queue can wait past the timeout).
// The group sets timeout = attempt_timeout and turns the member's retry and
// queue off unless the user set them, so default members qualify. Anything
// else (otlp_http, whose timeout is its HTTP client's; debug; file; custom
// members) gets the group's deadline.
func enforcesTimeout(cfg component.Config, attemptTimeout time.Duration) bool {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	var timeout time.Duration
	hasTimeout := false
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		f := v.Field(i)
		switch f.Type() {
		case timeoutConfigType:
			timeout, hasTimeout = f.Interface().(exporterhelper.TimeoutConfig).Timeout, true
		case retryConfigType:
			if f.Interface().(configretry.BackOffConfig).Enabled {
				return false
			}
		case queueConfigType:
			q := f.Interface().(configoptional.Optional[exporterhelper.QueueBatchConfig])
			if q.HasValue() {
				return false
			}
		}
	}
	return hasTimeout && timeout > 0 && timeout <= attemptTimeout
}
