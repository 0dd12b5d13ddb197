// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"go.uber.org/zap"
)

// destinationProbe checks, without data, whether a member's destination can
// take data now: a ClickHouse ping over the member's own endpoint and
// credentials, a Kafka metadata request for the member's topics, a TCP
// connection to the endpoint of other members. Probes run in the
// background (prober.go); no batch ever waits on one.
type destinationProbe interface {
	// check returns nil when the destination answered as one that can
	// take data. ctx carries probe::timeout. The error names what is wrong
	// (the member's broker, topic or endpoint may be named: it is logged,
	// never returned to a client).
	check(ctx context.Context) error
	// close releases the probe's connections.
	close()
}

// loggingProbe is a probe that also logs advice about its destination
// (the kafka probe: topics that take smaller records than the member
// writes), with the member's logger.
type loggingProbe interface {
	setLogger(*zap.Logger)
}

// partErrors is a probe's answer when only some parts of a destination
// failed: the kafka topics that cannot take data, by topic. Any other error
// from check concerns every part.
type partErrors map[string]error

func (e partErrors) Error() string {
	parts := make([]string, 0, len(e))
	for part := range e {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	msgs := make([]string, len(parts))
	for i, part := range parts {
		msgs[i] = e[part].Error()
	}
	return strings.Join(msgs, "; ")
}

// errorOf is what a probe's result says of one part ("" for a member that
// is one destination).
func errorOf(err error, part string) error {
	if pe, ok := errors.AsType[partErrors](err); ok {
		return pe[part]
	}
	return err
}

// destinationPart is the part of a member a signal instance writes to when
// the parts fail on their own: the kafka topic of the signal. "" for other
// members (a ClickHouse server takes every signal's tables, and a table
// refusing data as bad is never charged to the breaker).
func destinationPart(mc *MemberConfig, signal string) string {
	if mc.id.Type() == kafkaType {
		return mc.facts.topics[signal]
	}
	return ""
}

// probeFor picks the check of a member's destination: ClickHouse and Kafka
// have their own, OTLP members and any other member with an address get a
// TCP connection check. A member with no destination at all (debug, file)
// gets none: its breaker then leaves the open state when the open period
// has elapsed, as without probes. `how` says which, for the start log.
func probeFor(mc *MemberConfig, signals []string) (p destinationProbe, how string) {
	switch cfg := mc.cfg.(type) {
	case *clickhouseexporter.Config:
		if p, err := newClickHouseProbe(cfg); err == nil {
			return p, "clickhouse ping"
		} else if addr, ok := dialAddress(cfg.Endpoint); ok {
			return &dialProbe{addrs: []string{addr}}, "TCP connection to the endpoint (" + err.Error() + ")"
		}
	case *kafkaexporter.Config:
		var topics []string
		for _, s := range signals {
			if t, ok := mc.facts.topics[s]; ok && !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
		p, err := newKafkaProbe(cfg, topics)
		if err == nil {
			return p, "kafka metadata of topics " + strings.Join(topics, ", ")
		}
		return &dialProbe{addrs: cfg.Brokers}, "TCP connection to the brokers (" + err.Error() + ")"
	}
	if addr, ok := dialAddress(mc.facts.endpoint); ok {
		if mc.id.Type() == otlpGRPCType || mc.id.Type() == otlpHTTPType {
			return &dialProbe{addrs: []string{addr}}, "TCP connection to the endpoint"
		}
		return &dialProbe{addrs: []string{addr}}, "TCP connection to the endpoint (no probe specific to " + mc.id.Type().String() + ")"
	}
	return nil, "none (no destination address in its config: its breaker relies on the open period)"
}
