// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/kafka/configkafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/config/configtls"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// kafkaProbeTimeout stands for probe::timeout: long enough for a local
// kfake to answer under -race, short enough for the down-broker tests.
const kafkaProbeTimeout = 5 * time.Second

// newTestKafkaCluster starts a one-broker kfake cluster with topic t1.
func newTestKafkaCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.SeedTopics(1, "t1"), kfake.NumBrokers(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// kafkaMemberConfig is a kafka exporter's default config on brokers.
func kafkaMemberConfig(brokers ...string) *kafkaexporter.Config {
	cfg := kafkaexporter.NewFactory().CreateDefaultConfig().(*kafkaexporter.Config)
	cfg.Brokers = brokers
	return cfg
}

// newTestKafkaProbe builds a probe that the test closes.
func newTestKafkaProbe(t *testing.T, cfg *kafkaexporter.Config, topics ...string) destinationProbe {
	t.Helper()
	p, err := newKafkaProbe(cfg, topics)
	require.NoError(t, err)
	t.Cleanup(p.close)
	return p
}

// checkKafka runs one check bounded like the prober bounds it.
func checkKafka(t *testing.T, p destinationProbe) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kafkaProbeTimeout)
	defer cancel()
	return p.check(ctx)
}

func TestKafkaProbeHealthyTopic(t *testing.T) {
	c := newTestKafkaCluster(t)
	metadata := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Observe: true, Count: -1})
	p := newTestKafkaProbe(t, kafkaMemberConfig(c.ListenAddrs()...), "t1")

	require.NoError(t, checkKafka(t, p))
	assert.Equal(t, 1, metadata.Hits(), "one check is one metadata request")
	require.NoError(t, checkKafka(t, p), "the client is reused")
}

func TestKafkaProbeMissingTopicIsNotCreated(t *testing.T) {
	// The cluster would create the topic if the request allowed it.
	c := newTestKafkaCluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()
	cfg := kafkaMemberConfig(brokers...)
	cfg.Producer.AllowAutoTopicCreation = false // the member does not ask
	p := newTestKafkaProbe(t, cfg, "t1", "otlp_spans_dlq")

	err := checkKafka(t, p)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf(
		`kafka topic "otlp_spans_dlq" does not exist on brokers %v (UNKNOWN_TOPIC_OR_PARTITION): create it (auto-creation is off or not allowed)`,
		brokers), err.Error())

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(t.Context())
	require.NoError(t, err)
	assert.True(t, topics.Has("t1"))
	assert.False(t, topics.Has("otlp_spans_dlq"), "the probe created the topic")
}

// A member that asks for missing topics to be created (the kafka
// exporter's default) is probed the same way: the broker creates the topic,
// as the member's first write would, and the member is healthy.
func TestKafkaProbeCreatesATopicAsTheMemberWould(t *testing.T) {
	c := newTestKafkaCluster(t, kfake.AllowAutoTopicCreation())
	brokers := c.ListenAddrs()
	cfg := kafkaMemberConfig(brokers...)
	require.True(t, cfg.Producer.AllowAutoTopicCreation, "the kafka exporter's default")
	p := newTestKafkaProbe(t, cfg, "otlp_spans_dlq")
	require.NoError(t, checkKafka(t, p))
}

func TestKafkaProbePartitionWithoutLeader(t *testing.T) {
	c := newTestKafkaCluster(t)
	c.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Metadata}, Topic: "t1", Partitions: []int32{0},
		Err: kerr.LeaderNotAvailable, Count: -1,
	})
	brokers := c.ListenAddrs()
	p := newTestKafkaProbe(t, kafkaMemberConfig(brokers...), "t1")

	err := checkKafka(t, p)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf(
		`kafka topic "t1" partition 0 on brokers %v cannot take data (LEADER_NOT_AVAILABLE): check the brokers hosting it`,
		brokers), err.Error())
}

func TestKafkaProbeClusterDown(t *testing.T) {
	c := newTestKafkaCluster(t)
	brokers := c.ListenAddrs()
	p := newTestKafkaProbe(t, kafkaMemberConfig(brokers...), "t1")
	require.NoError(t, checkKafka(t, p))

	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), kafkaProbeTimeout)
	defer cancel()
	err := p.check(ctx)
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), fmt.Sprintf("kafka brokers %v unreachable for topics [", brokers))
	assert.NoError(t, ctx.Err(), "the check must return by the deadline")
}

func TestKafkaProbeHangingBroker(t *testing.T) {
	// A listener that accepts and never answers, as a hung broker does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { _ = ln.Close() })
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, conn := range conns {
				_ = conn.Close()
			}
		}()
		for {
			conn, acceptErr := ln.Accept()
			if acceptErr != nil {
				return
			}
			conns = append(conns, conn)
		}
	})
	p := newTestKafkaProbe(t, kafkaMemberConfig(ln.Addr().String()), "t1")

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = p.check(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	t.Log(err)
	assert.Contains(t, err.Error(), fmt.Sprintf("kafka brokers [%s] unreachable for topics [", ln.Addr()))
}

func TestKafkaProbeSASL(t *testing.T) {
	const user, pass = "probe-user", "probe-s3cret"
	for _, mechanism := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mechanism, func(t *testing.T) {
			c := newTestKafkaCluster(t, kfake.EnableSASL(), kfake.Superuser(mechanism, user, pass))
			sasl := func(password string) *kafkaexporter.Config {
				cfg := kafkaMemberConfig(c.ListenAddrs()...)
				cfg.Authentication.SASL = &configkafka.SASLConfig{Mechanism: mechanism, Username: user, Password: password}
				return cfg
			}

			require.NoError(t, checkKafka(t, newTestKafkaProbe(t, sasl(pass), "t1")))

			const wrong = "wrong-s3cret"
			err := checkKafka(t, newTestKafkaProbe(t, sasl(wrong), "t1"))
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), fmt.Sprintf("kafka brokers %v", c.ListenAddrs()))
			for _, secret := range []string{user, pass, wrong} {
				assert.NotContains(t, err.Error(), secret)
			}
		})
	}
}

func TestKafkaProbeSASLRejected(t *testing.T) {
	// Kafka answers a bad login with SASL_AUTHENTICATION_FAILED, where
	// kfake closes the connection.
	c := newTestKafkaCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "probe-user", "probe-s3cret"))
	c.ControlKey(kmsg.SASLAuthenticate.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = new("Authentication failed: Invalid username or password")
		return resp, nil, true
	})
	cfg := kafkaMemberConfig(c.ListenAddrs()...)
	cfg.Authentication.SASL = &configkafka.SASLConfig{Mechanism: "PLAIN", Username: "probe-user", Password: "probe-s3cret"}

	err := checkKafka(t, newTestKafkaProbe(t, cfg, "t1"))
	require.ErrorIs(t, err, kerr.SaslAuthenticationFailed)
	t.Log(err)
	assert.Contains(t, err.Error(), fmt.Sprintf("kafka brokers %v rejected the SASL PLAIN login: ", c.ListenAddrs()))
	assert.NotContains(t, err.Error(), "probe-user")
	assert.NotContains(t, err.Error(), "probe-s3cret")
}

func TestKafkaProbeDeprecatedPlainText(t *testing.T) {
	c := newTestKafkaCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "probe-user", "probe-s3cret"))
	cfg := kafkaMemberConfig(c.ListenAddrs()...)
	cfg.Authentication.PlainText = &configkafka.PlainTextConfig{Username: "probe-user", Password: "probe-s3cret"}

	require.NoError(t, checkKafka(t, newTestKafkaProbe(t, cfg, "t1")))
}

func TestKafkaProbeTLS(t *testing.T) {
	serverCert, caFile := selfSignedLocalhostCert(t)
	c := newTestKafkaCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))

	cfg := kafkaMemberConfig(c.ListenAddrs()...)
	cfg.TLS = &configtls.ClientConfig{Config: configtls.Config{CAFile: caFile}}
	require.NoError(t, checkKafka(t, newTestKafkaProbe(t, cfg, "t1")))

	// auth::tls, the deprecated spelling, is used when tls is not set; it
	// is loaded by the check, not by newKafkaProbe.
	cfg = kafkaMemberConfig(c.ListenAddrs()...)
	cfg.Authentication.TLS = &configtls.ClientConfig{Config: configtls.Config{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}
	err := checkKafka(t, newTestKafkaProbe(t, cfg, "t1"))
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), fmt.Sprintf("kafka brokers %v: failed to load TLS config: ", c.ListenAddrs()))
	assert.Contains(t, err.Error(), "fix the member's tls settings")
}

// selfSignedLocalhostCert returns a certificate for 127.0.0.1 and the path
// of a PEM file holding it, to use as the client's CA.
func selfSignedLocalhostCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestKafkaProbeUnsupportedAuth(t *testing.T) {
	for name, auth := range map[string]configkafka.AuthenticationConfig{
		"AWS_MSK_IAM_OAUTHBEARER": {SASL: &configkafka.SASLConfig{Mechanism: "AWS_MSK_IAM_OAUTHBEARER"}},
		"OAUTHBEARER":             {SASL: &configkafka.SASLConfig{Mechanism: "OAUTHBEARER"}},
		"kerberos":                {Kerberos: &configkafka.KerberosConfig{ServiceName: "kafka"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := kafkaMemberConfig("127.0.0.1:9092")
			cfg.Authentication = auth
			p, err := newKafkaProbe(cfg, []string{"t1"})
			require.ErrorIs(t, err, errProbeUnsupportedAuth)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), name)
		})
	}
}

func TestKafkaProbeNoConnectionBeforeCheck(t *testing.T) {
	p, err := newKafkaProbe(kafkaMemberConfig("127.0.0.1:9092"), []string{"t1"})
	require.NoError(t, err)
	assert.Nil(t, p.(*kafkaProbe).client, "newKafkaProbe must not build a client")

	p.close()
	p.close()
	require.ErrorIs(t, p.check(t.Context()), errKafkaProbeClosed)
}

func TestKafkaCodeName(t *testing.T) {
	assert.Equal(t, "UNKNOWN_TOPIC_OR_PARTITION", kafkaCodeName(kerr.UnknownTopicOrPartition.Code))
	assert.Equal(t, "UNKNOWN_SERVER_ERROR", kafkaCodeName(kerr.UnknownServerError.Code))
	assert.Equal(t, "error code 31000", kafkaCodeName(31000))
}

// The probe warns, once, about a topic whose max.message.bytes is below the
// member's producer::max_message_bytes, and not about one that takes the
// member's records.
func TestKafkaProbeWarnsAboutTopicsTakingSmallerRecords(t *testing.T) {
	c := newTestKafkaCluster(t, kfake.SeedTopics(1, "big"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "1048588"}))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: new("8388608")}}, "big")
	require.NoError(t, err)

	cfg := kafkaMemberConfig(c.ListenAddrs()...)
	cfg.Producer.MaxMessageBytes = 8388608
	p := newTestKafkaProbe(t, cfg, "t1", "big").(*kafkaProbe)
	core, logs := observer.New(zap.DebugLevel)
	p.logger = zap.New(core)
	describe := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DescribeConfigs}, Observe: true, Count: -1})

	require.NoError(t, checkKafka(t, p))
	require.NoError(t, checkKafka(t, p))
	assert.Equal(t, 1, describe.Hits(), "asked once")
	warns := logs.FilterLevelExact(zap.WarnLevel).All()
	require.Len(t, warns, 1, "one topic below the member's limit")
	fields := warns[0].ContextMap()
	assert.Equal(t, "t1", fields["topic"])
	assert.EqualValues(t, 1048588, fields["topic_max_message_bytes"])
	assert.EqualValues(t, 8388608, fields["producer_max_message_bytes"])
	assert.Contains(t, warns[0].Message, "raise the topic's max.message.bytes")
}
