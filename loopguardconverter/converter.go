// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package loopguardconverter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// Component types and keys this converter reads. They are the user-facing
// names of contrib's kafka receiver and exporter (v0.155.0) and of this
// distribution's failover_group exporter.
const (
	typeKafka = "kafka"
	typeGroup = "failover_group"

	keyMembers    = "members"
	keyAllow      = "allow_in_replay_pipelines"
	keyDeadLetter = "dead_letter"
	keyQueue      = "sending_queue"
	keyBatch      = "batch"
	keyDedup      = "deduplication"
	keyTokens     = "tokens"

	keyTopics        = "topics"
	keyExcludeTopics = "exclude_topics"
	keyTopic         = "topic"
	keyTopicFromMeta = "topic_from_metadata_key"
	keyBrokers       = "brokers"

	// metadataKafkaTopic is the client metadata key the kafka receiver sets
	// to the topic each record was read from.
	metadataKafkaTopic = "kafka.topic"
	// defaultBroker is configkafka's default for brokers.
	defaultBroker = "localhost:9092"
)

// defaultTopics are the kafka receiver's (one-element topics list) and the
// kafka exporter's (topic) defaults per signal at contrib v0.155.0: the two
// components share them.
var defaultTopics = map[string]string{
	"traces":   "otlp_spans",
	"metrics":  "otlp_metrics",
	"logs":     "otlp_logs",
	"profiles": "otlp_profiles",
}

// NewFactory returns the factory of the loop-guard converter. Add it to a
// collector's ConfigProviderSettings.ResolverSettings.ConverterFactories (or
// to an ocb builder-config's converters).
func NewFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter {
		return converter{}
	})
}

type converter struct{}

// Convert checks conf and returns one error per problem found, joined; it
// never modifies conf.
func (converter) Convert(_ context.Context, conf *confmap.Conf) error {
	if conf == nil {
		return nil
	}
	return check(conf.ToStringMap())
}

// pipeline is one entry of service::pipelines.
type pipeline struct {
	id        string
	signal    string
	receivers []string
	exporters []string
}

// feed is a kafka receiver as listed in one pipeline: it consumes that
// pipeline's signal's topics, and its data flows on to every pipeline
// reachable through connectors.
type feed struct {
	receiver string
	signal   string
	topics   topicMatcher
	brokers  brokerSet
}

func (f *feed) key() string { return f.receiver + "\x00" + f.signal }

// topicMatcher is what one kafka receiver consumes for one signal, with the
// v0.155.0 semantics: if any topic starts with "^", every entry is a regular
// expression matched anywhere in a topic name (franz-go ConsumeRegex), minus
// exclude_topics; otherwise entries are exact names.
type topicMatcher struct {
	names     []string
	regex     bool
	patterns  []*regexp.Regexp
	excludes  []*regexp.Regexp
	defaulted bool // topics unset: the receiver's default
}

// match reports whether topic is consumed, and the entry that consumes it.
func (m topicMatcher) match(topic string) (string, bool) {
	if !m.regex {
		if slices.Contains(m.names, topic) {
			return topic, true
		}
		return "", false
	}
	for _, ex := range m.excludes {
		if ex.MatchString(topic) {
			return "", false
		}
	}
	for i, re := range m.patterns {
		if re.MatchString(topic) {
			return m.names[i], true
		}
	}
	return "", false
}

// describe names what the receiver consumes, for messages.
func (m topicMatcher) describe() string {
	quoted := make([]string, len(m.names))
	for i, n := range m.names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	s := strings.Join(quoted, ", ")
	if m.regex {
		s = "patterns " + s
	}
	return s
}

// brokerSet is a normalized set of bootstrap addresses; nil means unknown.
type brokerSet map[string]struct{}

// sameCluster reports whether two clients may talk to the same cluster: yes
// unless both broker lists are known and share no address.
func sameCluster(a, b brokerSet) bool {
	if a == nil || b == nil {
		return true
	}
	for k := range a {
		if _, ok := b[k]; ok {
			return true
		}
	}
	return false
}

// problem is one refused wiring, with the keys that order the report.
type problem struct {
	pipeline  string
	component string
	member    int // index in the group's members; -1 for a plain exporter
	rule      int
	receiver  string
	msg       string
}

// check finds every problem in the raw configuration map.
func check(raw map[string]any) error {
	service, _ := raw["service"].(map[string]any)
	pipelinesRaw, _ := service["pipelines"].(map[string]any)
	if len(pipelinesRaw) == 0 {
		return nil
	}
	receivers, _ := raw["receivers"].(map[string]any)
	exporters, _ := raw["exporters"].(map[string]any)
	connectors, _ := raw["connectors"].(map[string]any)

	pipelines := readPipelines(pipelinesRaw)
	feeds := propagate(pipelines, receivers, connectors)
	if len(feeds) == 0 {
		return nil
	}

	var problems []problem
	for _, p := range pipelines {
		fs := feeds[p.id]
		if len(fs) == 0 {
			continue
		}
		for _, id := range uniq(p.exporters) {
			cfg, declared := exporters[id]
			if !declared {
				continue
			}
			switch componentType(id) {
			case typeKafka:
				m, ok := asMap(cfg)
				if !ok {
					continue
				}
				problems = append(problems, kafkaWrites(p, writer{component: id, member: -1}, m, fs)...)
			case typeGroup:
				m, ok := asMap(cfg)
				if !ok {
					continue
				}
				problems = append(problems, groupProblems(p, id, m, fs)...)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.SortFunc(problems, func(a, b problem) int {
		return cmp.Or(
			cmp.Compare(a.pipeline, b.pipeline),
			cmp.Compare(a.component, b.component),
			cmp.Compare(a.member, b.member),
			cmp.Compare(a.rule, b.rule),
			cmp.Compare(a.receiver, b.receiver),
			cmp.Compare(a.msg, b.msg),
		)
	})
	errs := make([]error, 0, len(problems))
	for i, pr := range problems {
		if i > 0 && pr.msg == problems[i-1].msg {
			continue
		}
		errs = append(errs, errors.New(pr.msg))
	}
	return errors.Join(errs...)
}

// readPipelines reads service::pipelines, sorted by id; entries that are not
// maps, or whose signal is unknown, are skipped.
func readPipelines(raw map[string]any) []pipeline {
	var out []pipeline
	for id, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		signal := componentType(id)
		if _, known := defaultTopics[signal]; !known {
			continue
		}
		out = append(out, pipeline{
			id:        id,
			signal:    signal,
			receivers: stringList(m["receivers"]),
			exporters: stringList(m["exporters"]),
		})
	}
	slices.SortFunc(out, func(a, b pipeline) int { return cmp.Compare(a.id, b.id) })
	return out
}

// propagate returns, per pipeline id, the kafka receivers feeding it,
// directly or through connectors, sorted by receiver then signal.
func propagate(pipelines []pipeline, receivers, connectors map[string]any) map[string][]*feed {
	byPipeline := map[string]map[string]*feed{}
	add := func(pid string, f *feed) bool {
		set := byPipeline[pid]
		if set == nil {
			set = map[string]*feed{}
			byPipeline[pid] = set
		}
		if _, seen := set[f.key()]; seen {
			return false
		}
		set[f.key()] = f
		return true
	}

	// Pipelines that list each connector among their receivers.
	downstream := map[string][]string{}
	for _, p := range pipelines {
		for _, r := range uniq(p.receivers) {
			if _, isConnector := connectors[r]; isConnector {
				downstream[r] = append(downstream[r], p.id)
			}
		}
	}

	byID := make(map[string]pipeline, len(pipelines))
	var queue []string
	for _, p := range pipelines {
		byID[p.id] = p
		for _, r := range uniq(p.receivers) {
			if componentType(r) != typeKafka {
				continue
			}
			if _, isConnector := connectors[r]; isConnector {
				continue
			}
			cfg, declared := receivers[r]
			if !declared {
				continue
			}
			m, ok := asMap(cfg)
			if !ok {
				continue
			}
			topics, ok := receiverTopics(m, p.signal)
			if !ok {
				continue
			}
			if add(p.id, &feed{receiver: r, signal: p.signal, topics: topics, brokers: brokers(m)}) {
				queue = append(queue, p.id)
			}
		}
	}

	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		from := byPipeline[pid]
		for _, e := range uniq(byID[pid].exporters) {
			for _, next := range downstream[e] {
				grew := false
				for _, f := range from {
					if add(next, f) {
						grew = true
					}
				}
				if grew {
					queue = append(queue, next)
				}
			}
		}
	}

	out := make(map[string][]*feed, len(byPipeline))
	for pid, set := range byPipeline {
		fs := make([]*feed, 0, len(set))
		for _, f := range set {
			fs = append(fs, f)
		}
		slices.SortFunc(fs, func(a, b *feed) int {
			return cmp.Or(cmp.Compare(a.receiver, b.receiver), cmp.Compare(a.signal, b.signal))
		})
		out[pid] = fs
	}
	return out
}

// receiverTopics reads what a kafka receiver consumes for signal; false when
// the shape is not understood or nothing can be consumed.
func receiverTopics(cfg map[string]any, signal string) (topicMatcher, bool) {
	var m topicMatcher
	sig, ok := asMap(cfg[signal])
	if !ok {
		return m, false
	}
	v, set := sig[keyTopics]
	if !set || v == nil {
		m.names, m.defaulted = []string{defaultTopics[signal]}, true
		return m, true
	}
	names, ok := stringsOf(v)
	if !ok {
		return m, false
	}
	m.names = names
	for _, n := range names {
		if strings.HasPrefix(n, "^") {
			m.regex = true
			break
		}
	}
	if !m.regex {
		m.names = slices.DeleteFunc(m.names, func(s string) bool { return s == "" })
		return m, len(m.names) > 0
	}
	// franz-go compiles every entry; one bad pattern and the receiver does
	// not consume at all (it fails at start, which is reported elsewhere).
	for _, n := range names {
		re, err := regexp.Compile(n)
		if err != nil {
			return m, false
		}
		m.patterns = append(m.patterns, re)
	}
	if ex, set := sig[keyExcludeTopics]; set && ex != nil {
		exNames, ok := stringsOf(ex)
		if !ok {
			return m, false
		}
		for _, n := range exNames {
			re, err := regexp.Compile(n)
			if err != nil {
				return m, false
			}
			m.excludes = append(m.excludes, re)
		}
	}
	return m, len(m.patterns) > 0
}

// exporterTopic reads the topic a kafka exporter's config writes for signal
// (before any per-record override); defaulted when unset.
func exporterTopic(cfg map[string]any, signal string) (topic string, defaulted, ok bool) {
	sig, ok := asMap(cfg[signal])
	if !ok {
		return "", false, false
	}
	v, set := sig[keyTopic]
	if !set {
		return defaultTopics[signal], true, true
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", false, false
	}
	return s, false, true
}

// brokers reads a kafka client's bootstrap addresses, normalized; nil when
// not understood.
func brokers(cfg map[string]any) brokerSet {
	v, set := cfg[keyBrokers]
	var list []string
	if !set || v == nil {
		list = []string{defaultBroker}
	} else {
		var ok bool
		if list, ok = stringsOf(v); !ok {
			return nil
		}
	}
	out := brokerSet{}
	for _, b := range list {
		b = strings.ToLower(strings.TrimSpace(b))
		if b == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(b); err == nil {
			switch host {
			case "localhost", "127.0.0.1", "::1":
				host = "loopback"
			}
			b = net.JoinHostPort(host, port)
		}
		out[b] = struct{}{}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// writer names who writes: a plain exporter, or a member of a group.
type writer struct {
	component string
	member    int
	memberID  string
}

func (w writer) String() string {
	if w.memberID == "" {
		return fmt.Sprintf("exporter %q", w.component)
	}
	return fmt.Sprintf("exporter %q member %q", w.component, w.memberID)
}

func (w writer) fix() string {
	if w.memberID == "" {
		return "write to another topic or remove the exporter from this pipeline"
	}
	return "write to another topic or use a group without this member in this pipeline"
}

// kafkaWrites applies rule 1 to one kafka exporter (or kafka member) config
// in pipeline p fed by fs.
func kafkaWrites(p pipeline, w writer, cfg map[string]any, fs []*feed) []problem {
	var out []problem
	own := brokers(cfg)
	if topic, defaulted, ok := exporterTopic(cfg, p.signal); ok {
		for _, f := range fs {
			if !sameCluster(own, f.brokers) {
				continue
			}
			entry, hit := f.topics.match(topic)
			if !hit {
				continue
			}
			out = append(out, problem{
				pipeline: p.id, component: w.component, member: w.member, rule: 1, receiver: f.receiver,
				msg: fmt.Sprintf("pipeline %q: %s writes to topic %q%s, which receiver %q feeding this pipeline consumes%s: every record would be replayed back into itself; %s",
					p.id, w, topic, exporterNote(defaulted, p.signal), f.receiver, receiverNote(f, entry), w.fix()),
			})
		}
	}
	if sig, ok := asMap(cfg[p.signal]); ok && sig[keyTopicFromMeta] == metadataKafkaTopic {
		for _, f := range fs {
			if !sameCluster(own, f.brokers) {
				continue
			}
			out = append(out, problem{
				pipeline: p.id, component: w.component, member: w.member, rule: 1, receiver: f.receiver,
				msg: fmt.Sprintf("pipeline %q: %s takes its topic from metadata key %q (%s::%s), which receiver %q feeding this pipeline sets to the topic each record was read from (%s): every record would be replayed back into itself; remove %s or %s",
					p.id, w, metadataKafkaTopic, p.signal, keyTopicFromMeta, f.receiver, f.topics.describe(), keyTopicFromMeta, strings.TrimPrefix(w.fix(), "write to another topic or ")),
			})
		}
	}
	return out
}

func exporterNote(defaulted bool, signal string) string {
	if !defaulted {
		return ""
	}
	return fmt.Sprintf(" (the default: %s::%s is unset)", signal, keyTopic)
}

func receiverNote(f *feed, entry string) string {
	switch {
	case f.topics.defaulted:
		return fmt.Sprintf(" (by default: %s::%s is unset)", f.signal, keyTopics)
	case f.topics.regex:
		return fmt.Sprintf(" (topic pattern %q)", entry)
	default:
		return ""
	}
}

// groupProblems applies rules 1 and 2 to one failover_group in pipeline p.
func groupProblems(p pipeline, id string, cfg map[string]any, fs []*feed) []problem {
	members, ok := cfg[keyMembers].([]any)
	if !ok {
		return nil
	}
	// allow: the group opts in to replay pipelines and relies on the runtime
	// loop guard for its dead-letter members. Not a bool (allowKnown false):
	// the group's own decoding reports it; rule 2 is skipped and rule 1
	// applies to every kafka member.
	allow, allowKnown := false, true
	if v, set := cfg[keyAllow]; set && v != nil {
		allow, allowKnown = v.(bool)
	}
	var out []problem
	if batchesTokens(cfg) {
		// Rule 3.
		out = append(out, problem{
			pipeline: p.id, component: id, member: -1, rule: 3,
			msg: fmt.Sprintf("pipeline %q: %s batches in its own queue (%s::%s) and this pipeline is fed by %s: batching merges and splits replayed records, "+
				"whose deduplication tokens would then stand for other data (ClickHouse could drop a part as a copy); remove %s::%s from this group "+
				"(batch where data enters, in the ingest group), or set %s::%s: false on it",
				p.id, writer{component: id}, keyQueue, keyBatch, feedList(fs), keyQueue, keyBatch, keyDedup, keyTokens),
		})
	}
	for i, elem := range members {
		memberID, body, options, ok := splitMember(elem)
		if !ok {
			continue
		}
		memberCfg, ok := asMap(body)
		if !ok {
			continue
		}
		isKafka := componentType(memberID) == typeKafka
		deadLetter, explicit := isKafka, false
		if v, set := options[keyDeadLetter]; set {
			b, isBool := v.(bool)
			if !isBool {
				continue // the group's decoding reports it
			}
			deadLetter, explicit = b, true
		}
		// Rule 1. A dead-letter member of a group that opted in never
		// receives replayed data (the runtime loop guard recognizes it by
		// its kafka.topic or its DLQ stamp): it is left to that guard.
		if isKafka && (!deadLetter || !allow) {
			w := writer{component: id, member: i, memberID: memberID}
			out = append(out, kafkaWrites(p, w, memberCfg, fs)...)
		}
		// Rule 2.
		if !deadLetter || allow || !allowKnown {
			continue
		}
		out = append(out, problem{
			pipeline: p.id, component: id, member: i, rule: 2,
			msg: fmt.Sprintf("pipeline %q: %s has dead-letter member %q%s, which never takes replayed data (loop guard), and this pipeline is fed by %s: use a replay group without dead-letter members, or set %s: false on a member that writes somewhere no replay reads, or set %s: true on the group to rely on the runtime loop guard",
				p.id, writer{component: id}, memberID, memberNote(memberID, memberCfg, p.signal, explicit), feedList(fs), keyDeadLetter, keyAllow),
		})
	}
	return out
}

// batchesTokens reports whether a group batches in its own queue while
// giving deduplication tokens (on unless deduplication::tokens is false).
func batchesTokens(cfg map[string]any) bool {
	queue, ok := asMap(cfg[keyQueue])
	if !ok {
		return false
	}
	if b, set := queue[keyBatch]; !set || b == nil {
		return false
	}
	if dedup, ok := asMap(cfg[keyDedup]); ok {
		if tokens, ok := dedup[keyTokens].(bool); ok && !tokens {
			return false
		}
	}
	return true
}

// memberNote says what a dead-letter member writes, and why it is one.
func memberNote(memberID string, cfg map[string]any, signal string, explicit bool) string {
	var parts []string
	if componentType(memberID) == typeKafka {
		if topic, _, ok := exporterTopic(cfg, signal); ok {
			parts = append(parts, fmt.Sprintf("writing topic %q", topic))
		}
	}
	if !explicit {
		parts = append(parts, fmt.Sprintf("%s is unset and defaults to true for %s members", keyDeadLetter, componentType(memberID)))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// feedList names the kafka receivers feeding a pipeline and their topics.
func feedList(fs []*feed) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("kafka receiver %q (%s topics %s)", f.receiver, f.signal, f.topics.describe())
	}
	return strings.Join(parts, " and ")
}

// splitMember separates a member list element into its `type[/name]` key,
// that key's value and the member options beside it; false when the element
// has not exactly one member key.
func splitMember(elem any) (id string, body any, options map[string]any, ok bool) {
	m, isMap := elem.(map[string]any)
	if !isMap {
		return "", nil, nil, false
	}
	n := 0
	options = map[string]any{}
	for k, v := range m {
		if k == keyDeadLetter {
			options[k] = v
			continue
		}
		id, body = k, v
		n++
	}
	if n != 1 || id == "" {
		return "", nil, nil, false
	}
	return id, body, options, true
}

// componentType is the type part of a `type[/name]` id (also the signal of a
// pipeline id).
func componentType(id string) string {
	t, _, _ := strings.Cut(id, "/")
	return t
}

// asMap reads a component config: null is an empty config (all defaults).
func asMap(v any) (map[string]any, bool) {
	if v == nil {
		return map[string]any{}, true
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// stringList reads a list of ids, skipping what is not a string.
func stringList(v any) []string {
	l, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// stringsOf reads a []string config value as the collector decodes it: a
// list of strings, or one string split at commas.
func stringsOf(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		if t == "" {
			return nil, true
		}
		return strings.Split(t, ","), true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case []string:
		return t, true
	}
	return nil, false
}

func uniq(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}
