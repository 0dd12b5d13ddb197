// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
)

// errProbeUnsupportedAuth is returned by newKafkaProbe when the member
// authenticates in a way the probe cannot reproduce; the caller then probes
// the brokers over TCP instead. The wrapping error names the mechanism.
var errProbeUnsupportedAuth = errors.New("authentication not supported by the kafka probe")

// errKafkaProbeClosed is returned by a check that runs after close.
var errKafkaProbeClosed = errors.New("kafka probe closed")

// kafkaProbe asks the member's brokers for the metadata of the member's
// topics. Its client is built by the first check, not by newKafkaProbe:
// the collector's validate command builds components, and nothing may be
// loaded or dialed before a probe actually runs.
type kafkaProbe struct {
	brokers []string
	topics  []string
	// autoCreate: the member asks for missing topics to be created
	// (producer::allow_auto_topic_creation); so does its probe.
	autoCreate bool
	// loadTLS is the member's TLS settings' loader, nil without TLS.
	loadTLS func(context.Context) (*tls.Config, error)
	// saslName is the SASL mechanism's name, "" without SASL.
	saslName string
	opts     []kgo.Opt
	// recordLimit is the member's producer::max_message_bytes, which the
	// topics' max.message.bytes should allow (probe_kafka_limit.go);
	// limitsChecked once the brokers told; logger for what they told.
	recordLimit   int
	limitsChecked atomic.Bool
	logger        *zap.Logger

	mu     sync.Mutex
	client *kgo.Client
	closed bool
}

// newKafkaProbe returns a probe of a kafka member's destination: a metadata
// request for the member's topics on its brokers, with its TLS and SASL.
func newKafkaProbe(cfg *kafkaexporter.Config, topics []string) (destinationProbe, error) {
	mechanism, err := kafkaProbeSASL(cfg)
	if err != nil {
		return nil, err
	}
	p := &kafkaProbe{
		brokers: slices.Clone(cfg.Brokers),
		// Sorted so that, of several bad topics, the same one is reported.
		topics: slices.Compact(slices.Sorted(slices.Values(topics))),
		opts:   kafkaProbeOpts(cfg),

		autoCreate: cfg.Producer.AllowAutoTopicCreation,

		recordLimit: cfg.Producer.MaxMessageBytes,
		logger:      zap.NewNop(),
	}
	if mechanism != nil {
		p.saslName = mechanism.Name()
		p.opts = append(p.opts, kgo.SASL(mechanism))
	}
	// auth::tls is the deprecated spelling, used only without tls (as the
	// kafka exporter does).
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		tlsCfg = cfg.Authentication.TLS
	}
	if tlsCfg != nil {
		p.loadTLS = tlsCfg.LoadTLSConfig
	}
	return p, nil
}

// kafkaProbeOpts returns the client options that do not depend on auth.
func kafkaProbeOpts(cfg *kafkaexporter.Config) []kgo.Opt {
	// Metadata v4 is the first that can say "do not create the topic";
	// before it, the broker's auto.create.topics.enable alone decides, so
	// the probe refuses brokers that old rather than risk creating one.
	minVersions := new(kversion.Versions)
	minVersions.SetMaxKeyVersion(kmsg.Metadata.Int16(), 4)

	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.MinVersions(minVersions),
		// One try per seed broker and one more, so a refused seed is
		// skipped and a connection closed while idle is redialed; ctx
		// bounds the whole check, these bound how much one check spins.
		kgo.RequestRetries(len(cfg.Brokers) + 1),
		// KIP-714 telemetry would add background requests of its own.
		kgo.DisableClientMetrics(),
	}
	if cfg.ClientID != "" {
		// The exporter's client ID, so that ACLs and quotas apply alike.
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.ConnIdleTimeout > 0 {
		opts = append(opts, kgo.ConnIdleTimeout(cfg.ConnIdleTimeout))
	}
	return opts
}

// kafkaProbeSASL returns the mechanism logging in as the exporter does, nil
// without auth, or errProbeUnsupportedAuth for mechanisms that need more
// than a username and password (tokens, extensions, Kerberos).
func kafkaProbeSASL(cfg *kafkaexporter.Config) (sasl.Mechanism, error) {
	auth := cfg.Authentication
	if auth.Kerberos != nil {
		return nil, fmt.Errorf("kerberos: %w", errProbeUnsupportedAuth)
	}
	var m sasl.Mechanism
	switch {
	case auth.SASL != nil:
		user, pass := auth.SASL.Username, auth.SASL.Password
		switch auth.SASL.Mechanism {
		case "PLAIN":
			m = plain.Auth{User: user, Pass: pass}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
		default:
			return nil, fmt.Errorf("SASL mechanism %q: %w", auth.SASL.Mechanism, errProbeUnsupportedAuth)
		}
	case auth.PlainText != nil:
		// auth::plain_text is the deprecated spelling of SASL PLAIN.
		m = plain.Auth{User: auth.PlainText.Username, Pass: auth.PlainText.Password}.AsMechanism()
	default:
		return nil, nil
	}
	return m, nil
}

// check sends one metadata request for the member's topics and returns
// nil only if every topic has partitions that all have a leader (without
// topics, only if the brokers answer).
func (p *kafkaProbe) check(ctx context.Context) error {
	cl, err := p.connect(ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrMetadataRequest()
	// As the member's own produce would ask (the kafka exporter's default
	// is to ask): a missing topic the broker creates on request is no
	// reason to call the member down, and is created now, before data
	// needs it, as the member's first write would. A member that does not
	// ask needs the topic to exist.
	req.AllowAutoTopicCreation = p.autoCreate
	// Non-nil even without topics: nil asks for every topic.
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(p.topics))
	for _, topic := range p.topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = new(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return p.requestError(ctx, err)
	}
	if err := p.topicsError(resp); err != nil {
		return err
	}
	p.checkTopicLimits(ctx, cl)
	return nil
}

// connect returns the probe's client, building it on first use.
func (p *kafkaProbe) connect(ctx context.Context) (*kgo.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errKafkaProbeClosed
	}
	if p.client != nil {
		return p.client, nil
	}
	opts := slices.Clone(p.opts)
	if p.loadTLS != nil {
		// Loaded again by each check until it loads: a missing
		// certificate file may yet be written.
		tlsCfg, err := p.loadTLS(ctx)
		if err != nil {
			return nil, fmt.Errorf("kafka brokers %v: %w: fix the member's tls settings", p.brokers, err)
		}
		if tlsCfg != nil {
			opts = append(opts, kgo.DialTLSConfig(tlsCfg))
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka brokers %v: %w: fix the member's brokers", p.brokers, err)
	}
	p.client = cl
	return cl, nil
}

// requestError explains why the brokers gave no metadata. Neither kgo nor
// the probe puts the SASL username or password in an error.
func (p *kafkaProbe) requestError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		errors.Is(err, kerr.UnsupportedSaslMechanism),
		errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("kafka brokers %v rejected the SASL %s login: %w: check the member's auth::sasl mechanism, username and password",
			p.brokers, p.saslName, err)
	case p.saslName != "" && errors.Is(err, io.EOF):
		// Brokers that refuse a login without SASL_AUTHENTICATION_FAILED
		// (Kafka before 1.0, kfake) close the connection instead.
		return fmt.Errorf("kafka brokers %v unreachable for topics %v: %w: if they closed the connection at the SASL %s login, check the member's auth::sasl username and password",
			p.brokers, p.topics, err, p.saslName)
	case ctx.Err() != nil:
		return fmt.Errorf("kafka brokers %v unreachable for topics %v: no answer within the probe timeout: %w", p.brokers, p.topics, err)
	default:
		return fmt.Errorf("kafka brokers %v unreachable for topics %v: %w", p.brokers, p.topics, err)
	}
}

// topicsError returns the first of the member's topics, in name order,
// that cannot take data, nil if all can.
func (p *kafkaProbe) topicsError(resp *kmsg.MetadataResponse) error {
	byName := make(map[string]*kmsg.MetadataResponseTopic, len(resp.Topics))
	for i := range resp.Topics {
		if name := resp.Topics[i].Topic; name != nil {
			byName[*name] = &resp.Topics[i]
		}
	}
	// Each topic is a destination of its own (one signal's): a topic
	// that is missing must not hold the member's other topics back.
	var bad partErrors
	for _, topic := range p.topics {
		t, ok := byName[topic]
		var err error
		if !ok {
			err = fmt.Errorf("kafka brokers %v left topic %q out of their metadata answer: check the brokers' health", p.brokers, topic)
		} else {
			err = p.topicError(topic, t)
		}
		if err != nil {
			if bad == nil {
				bad = partErrors{}
			}
			bad[topic] = err
		}
	}
	if bad == nil {
		return nil
	}
	return bad
}

// topicError returns why one topic cannot take data, nil if it can.
func (p *kafkaProbe) topicError(topic string, t *kmsg.MetadataResponseTopic) error {
	switch {
	case t.ErrorCode == kerr.UnknownTopicOrPartition.Code:
		return fmt.Errorf("kafka topic %q does not exist on brokers %v (%s): create it (auto-creation is off or not allowed)",
			topic, p.brokers, kafkaCodeName(t.ErrorCode))
	case t.ErrorCode == kerr.TopicAuthorizationFailed.Code:
		return fmt.Errorf("kafka topic %q on brokers %v is not authorized (%s): grant the member's kafka user Describe and Write on it",
			topic, p.brokers, kafkaCodeName(t.ErrorCode))
	case t.ErrorCode != 0:
		return fmt.Errorf("kafka topic %q on brokers %v cannot take data (%s): check the topic and the brokers hosting it",
			topic, p.brokers, kafkaCodeName(t.ErrorCode))
	case len(t.Partitions) == 0:
		return fmt.Errorf("kafka topic %q on brokers %v has no partitions: recreate it with at least one", topic, p.brokers)
	}
	for _, part := range t.Partitions {
		if part.ErrorCode != 0 {
			return fmt.Errorf("kafka topic %q partition %d on brokers %v cannot take data (%s): check the brokers hosting it",
				topic, part.Partition, p.brokers, kafkaCodeName(part.ErrorCode))
		}
		if part.Leader < 0 {
			return fmt.Errorf("kafka topic %q partition %d on brokers %v has no leader: wait for leader election or check the brokers hosting it",
				topic, part.Partition, p.brokers)
		}
	}
	return nil
}

// kafkaCodeName returns a Kafka error code's name, e.g.
// UNKNOWN_TOPIC_OR_PARTITION, or its number if kerr does not know it.
func kafkaCodeName(code int16) string {
	// kerr maps codes it does not know to UNKNOWN_SERVER_ERROR.
	if e := kerr.TypedErrorForCode(code); e != nil && e.Code == code {
		return e.Message
	}
	return fmt.Sprintf("error code %d", code)
}

// close closes the client, if a check built one; later checks fail.
func (p *kafkaProbe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
}
