// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// config.go reads the collector's own configuration file and finds what dlq
// works on: the Kafka topics failover_group members park data in (DLQ) or
// keep bad data in (poison), how to reach their brokers, and which kafka
// receivers' consumer groups replay them. Reading the collector's file,
// rather than flags of its own, keeps the tool from drifting away from what
// the collector actually does.

// Roles of a topic.
const (
	roleDLQ    = "dlq"
	rolePoison = "poison"
)

// Signals, as pipeline ids and member configs name them.
var signals = []string{"traces", "metrics", "logs"}

// Defaults of the contrib kafka exporter and receiver (v0.155.0).
var (
	defaultTopics = map[string]string{"traces": "otlp_spans", "metrics": "otlp_metrics", "logs": "otlp_logs"}
	defaultBroker = "localhost:9092"
)

const (
	defaultClientID = "otel-collector"
	defaultGroupID  = "otel-collector"
	defaultEncoding = "otlp_proto"
)

// kafkaConn is how to reach one set of brokers, as a kafka member or
// receiver is configured to.
type kafkaConn struct {
	brokers  []string
	clientID string
	tls      *configtls.ClientConfig
	// mechanism is the SASL mechanism, "" without SASL.
	mechanism, username, password string
	// origin names the config entry these settings come from, and
	// brokersAsWritten the brokers before expansion: errors point at
	// what to fix (an environment variable, a key).
	origin           string
	brokersAsWritten string
}

// same reports whether two members reach the same cluster the same way,
// so that one client serves both.
func (c *kafkaConn) same(o *kafkaConn) bool {
	return slices.Equal(c.brokers, o.brokers) && c.clientID == o.clientID &&
		c.mechanism == o.mechanism && c.username == o.username && c.password == o.password &&
		fmt.Sprintf("%+v", c.tls) == fmt.Sprintf("%+v", o.tls)
}

// topicInfo is one DLQ or poison topic.
type topicInfo struct {
	name     string
	signal   string
	encoding string
	role     string
	// writers are the members writing it, "failover_group/ingest kafka/dlq".
	writers []string
	// groups are the consumer groups of the kafka receivers reading it.
	groups []string
	conn   *kafkaConn
}

// setup is what dlq found in a config file.
type setup struct {
	path   string
	topics []*topicInfo
	// secrets are values that must never be printed (SASL passwords, TLS
	// keys): errors are scrubbed of them before they are shown.
	secrets []string
}

// topic returns the topic named name, nil if the config has none.
func (s *setup) topic(name string) *topicInfo {
	for _, t := range s.topics {
		if t.name == name {
			return t
		}
	}
	return nil
}

// names lists the topics of role ("" for all), for error messages.
func (s *setup) names(role string) []string {
	var out []string
	for _, t := range s.topics {
		if role == "" || t.role == role {
			out = append(out, t.name)
		}
	}
	return out
}

// loadConfig reads the collector config at path, expanding environment
// references with lookup (os.LookupEnv in the binary).
func loadConfig(path string, lookup func(string) (string, bool)) (*setup, error) {
	raw, err := os.ReadFile(path) //nolint:gosec // G304: reading the file the user names is the point
	if err != nil {
		return nil, fmt.Errorf("read the collector config: %w: pass the collector's config file with --config", err)
	}
	var doc any
	if err = yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("collector config %s does not parse as YAML: %w: fix the file (otelcol-failover validate --config %s shows the collector's view)", path, err, path)
	}
	root, ok := asMap(doc)
	if !ok {
		return nil, fmt.Errorf("collector config %s is not a YAML map of exporters, receivers and service: pass the collector's config file with --config", path)
	}
	d := &discovery{x: &expander{lookup: lookup}, s: &setup{path: path}}
	if err = d.run(node{v: root, x: d.x}); err != nil {
		// Scrubbed here: the caller learns the secrets only on success.
		return nil, errors.New(scrub(fmt.Sprintf("collector config %s: %v", path, err), d.x.secrets))
	}
	d.s.secrets = d.x.secrets
	if len(d.s.names(roleDLQ)) == 0 {
		return nil, fmt.Errorf("collector config %s has no DLQ: no failover_group exporter in a pipeline has a kafka member that is a dead letter queue "+
			"(a `kafka[/name]` member without `dead_letter: false`); pass the config of the collector whose DLQ to inspect with --config", path)
	}
	return d.s, nil
}

// discovery walks one config.
type discovery struct {
	x *expander
	s *setup
	// used maps "exporters"/"receivers" to ids listed in pipelines, with
	// the signals of those pipelines; nil when the config has no
	// pipelines (then every component counts, for every signal).
	used map[string]map[string][]string
}

func (d *discovery) run(root node) error {
	if err := d.pipelines(root); err != nil {
		return err
	}
	if err := d.groups(root); err != nil {
		return err
	}
	if err := d.receivers(root); err != nil {
		return err
	}
	// DLQ topics first, then poison, each in name order: stable output.
	slices.SortStableFunc(d.s.topics, func(a, b *topicInfo) int {
		if a.role != b.role {
			return strings.Compare(a.role, b.role)
		}
		return strings.Compare(a.name, b.name)
	})
	return nil
}

// groups finds the failover_group exporters that pipelines use.
func (d *discovery) groups(root node) error {
	exporters, err := root.sub("exporters")
	if err != nil {
		return err
	}
	for _, id := range exporters.keys() {
		if typeOf(id) != "failover_group" {
			continue
		}
		sigs, inUse := d.signalsOf("exporters", id)
		if !inUse {
			continue // the collector does not build an exporter no pipeline names
		}
		group, err := exporters.sub(id)
		if err != nil {
			return err
		}
		if err := d.group(id, group, sigs); err != nil {
			return err
		}
	}
	return nil
}

// receivers finds the kafka receivers that pipelines use.
func (d *discovery) receivers(root node) error {
	receivers, err := root.sub("receivers")
	if err != nil {
		return err
	}
	for _, id := range receivers.keys() {
		if typeOf(id) != "kafka" {
			continue
		}
		if _, inUse := d.signalsOf("receivers", id); !inUse {
			continue
		}
		rcv, err := receivers.sub(id)
		if err != nil {
			return err
		}
		if err := d.receiver(rcv); err != nil {
			return err
		}
	}
	return nil
}

// pipelines records which exporters and receivers service::pipelines use,
// and for which signals.
func (d *discovery) pipelines(root node) error {
	service, err := root.sub("service")
	if err != nil {
		return err
	}
	pipes, err := service.sub("pipelines")
	if err != nil {
		return err
	}
	if len(pipes.keys()) == 0 {
		return nil
	}
	d.used = map[string]map[string][]string{"exporters": {}, "receivers": {}}
	for _, pid := range pipes.keys() {
		p, err := pipes.sub(pid)
		if err != nil {
			return err
		}
		for kind, ids := range d.used {
			list, err := p.strings(kind, nil)
			if err != nil {
				return err
			}
			for _, id := range list {
				if sig := typeOf(pid); !slices.Contains(ids[id], sig) {
					ids[id] = append(ids[id], sig)
				}
			}
		}
	}
	return nil
}

func (d *discovery) signalsOf(kind, id string) ([]string, bool) {
	if d.used == nil {
		return signals, true
	}
	sigs, ok := d.used[kind][id]
	return sigs, ok
}

// group finds the kafka members of one failover_group exporter.
func (d *discovery) group(groupID string, group node, sigs []string) error {
	members, err := group.list("members")
	if err != nil {
		return err
	}
	for i, el := range members {
		el.path = fmt.Sprintf("%s[%d]", el.path, i)
		m, ok := asMap(el.v)
		ids := slices.DeleteFunc(el.keys(), func(k string) bool { return k == "dead_letter" })
		if !ok || len(ids) != 1 {
			return fmt.Errorf("%s: each member must be a map with one `type[/name]: {config}` key", el.path)
		}
		el.v = m
		if typeOf(ids[0]) != "kafka" {
			continue
		}
		deadLetter, err := el.boolean("dead_letter", true)
		if err != nil {
			return err
		}
		cfg, err := el.sub(ids[0])
		if err != nil {
			return err
		}
		cfg.path = el.path + " " + ids[0]
		if err := d.member(groupID, ids[0], cfg, deadLetter, sigs); err != nil {
			return err
		}
	}
	return nil
}

// member records the topics of one kafka member.
func (d *discovery) member(groupID, memberID string, cfg node, deadLetter bool, sigs []string) error {
	conn, err := d.conn(cfg)
	if err != nil {
		return err
	}
	role := roleDLQ
	if !deadLetter {
		role = rolePoison
	}
	writer := groupID + " " + memberID
	for _, sig := range sigs {
		sc, err := cfg.sub(sig)
		if err != nil {
			return err
		}
		name, err := sc.str("topic", defaultTopics[sig])
		if err != nil {
			return err
		}
		enc, err := sc.str("encoding", defaultEncoding)
		if err != nil {
			return err
		}
		if t := d.s.topic(name); t != nil {
			// Several groups may park in one topic: one entry, every writer.
			t.writers = append(t.writers, writer)
			continue
		}
		d.s.topics = append(d.s.topics, &topicInfo{name: name, signal: sig, encoding: enc, role: role, writers: []string{writer}, conn: d.share(conn)})
	}
	return nil
}

// share returns an earlier connection equal to c, or c: one client per
// cluster.
func (d *discovery) share(c *kafkaConn) *kafkaConn {
	for _, t := range d.s.topics {
		if t.conn.same(c) {
			return t.conn
		}
	}
	return c
}

// receiver adds a kafka receiver's consumer group to the DLQ topics it
// reads.
func (d *discovery) receiver(rcv node) error {
	group, err := rcv.str("group_id", defaultGroupID)
	if err != nil {
		return err
	}
	for _, sig := range signals {
		sc, err := rcv.sub(sig)
		if err != nil {
			return err
		}
		topics, err := sc.strings("topics", []string{defaultTopics[sig]})
		if err != nil {
			return err
		}
		for _, t := range d.s.topics {
			if t.role == roleDLQ && !slices.Contains(t.groups, group) && readsTopic(topics, t.name) {
				t.groups = append(t.groups, group)
			}
		}
	}
	return nil
}

// readsTopic reports whether a receiver's topics list covers name; an
// entry starting with ^ is a regular expression, as in the receiver.
func readsTopic(topics []string, name string) bool {
	for _, t := range topics {
		if strings.HasPrefix(t, "^") {
			if re, err := regexp.Compile(t); err == nil && re.MatchString(name) {
				return true
			}
			continue
		}
		if t == name {
			return true
		}
	}
	return false
}

// conn reads brokers and auth as the kafka exporter does.
func (d *discovery) conn(cfg node) (*kafkaConn, error) {
	c := &kafkaConn{origin: cfg.path}
	var err error
	if c.brokers, err = cfg.strings("brokers", []string{defaultBroker}); err != nil {
		return nil, err
	}
	for i, b := range c.brokers {
		c.brokers[i] = strings.TrimSpace(b)
	}
	c.brokers = slices.DeleteFunc(c.brokers, func(b string) bool { return b == "" })
	if raw, ok := cfg.raw("brokers"); ok {
		c.brokersAsWritten = fmt.Sprint(raw)
	}
	if len(c.brokers) == 0 {
		return nil, fmt.Errorf("%s::brokers is empty (written %s): set the environment variable it names or the brokers", cfg.path, c.brokersAsWritten)
	}
	if c.clientID, err = cfg.str("client_id", defaultClientID); err != nil {
		return nil, err
	}
	auth, err := cfg.sub("auth")
	if err != nil {
		return nil, err
	}
	// auth::tls is the deprecated spelling of tls, used only without tls
	// (as the exporter does).
	tlsNode, set, err := cfg.subIfSet("tls")
	if err != nil {
		return nil, err
	}
	if !set {
		if tlsNode, set, err = auth.subIfSet("tls"); err != nil {
			return nil, err
		}
	}
	if set {
		if c.tls, err = d.tlsConfig(tlsNode); err != nil {
			return nil, err
		}
	}
	for _, unsupported := range []string{"kerberos"} {
		if _, ok := auth.raw(unsupported); ok {
			return nil, fmt.Errorf("%s::auth::%s is not supported by dlq (it logs in with SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", cfg.path, unsupported)
		}
	}
	if sasl, ok, err := auth.subIfSet("sasl"); err != nil {
		return nil, err
	} else if ok {
		// The password first: errors about the others are scrubbed of it.
		if c.password, err = sasl.secret("password"); err != nil {
			return nil, err
		}
		if c.username, err = sasl.str("username", ""); err != nil {
			return nil, err
		}
		if c.mechanism, err = sasl.str("mechanism", ""); err != nil {
			return nil, err
		}
		switch c.mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("%s::auth::sasl::mechanism %q is not supported by dlq: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cfg.path, c.mechanism)
		}
	} else if plain, ok, err := auth.subIfSet("plain_text"); err != nil {
		return nil, err
	} else if ok {
		// The deprecated spelling of SASL PLAIN.
		c.mechanism = "PLAIN"
		if c.password, err = plain.secret("password"); err != nil {
			return nil, err
		}
		if c.username, err = plain.str("username", ""); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// tlsConfig decodes a tls section with the collector's own TLS settings
// type, so that every key means what it means to the collector.
func (d *discovery) tlsConfig(n node) (*configtls.ClientConfig, error) {
	m, err := d.x.all(n.v, n.path)
	if err != nil {
		return nil, err
	}
	mm, _ := asMap(m)
	if key, ok := mm["key_pem"].(string); ok && key != "" {
		d.x.secrets = append(d.x.secrets, key)
	}
	cfg := configtls.NewDefaultClientConfig()
	if err := confmap.NewFromStringMap(mm).Unmarshal(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", n.path, err)
	}
	return &cfg, nil
}

// typeOf is the type of a component id "type[/name]".
func typeOf(id string) string {
	t, _, _ := strings.Cut(id, "/")
	return t
}
