// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
)

var (
	kafkaType      = component.MustNewType("kafka")
	clickhouseType = component.MustNewType("clickhouse")
	otlpGRPCType   = component.MustNewType("otlp_grpc")
	otlpHTTPType   = component.MustNewType("otlp_http")
)

// kafkaMinTimeout is the shortest `timeout` the kafka exporter can start
// with: it becomes franz-go's ProduceRequestTimeout, whose floor is 100 ms
// (kgo.Client refuses a shorter one when the exporter starts).
const kafkaMinTimeout = 100 * time.Millisecond

// memberFacts is what the group needs to know of a member's effective
// exporter config. It is read once, when the config is decoded, through the
// config's own mapstructure keys (the same keys the user writes), not
// through the exporter's Go types.
type memberFacts struct {
	// timeout is the exporter's own `timeout` (0 if it has none).
	timeout time.Duration
	// ownRetry, ownQueue: the exporter's own retry_on_failure and
	// sending_queue are on.
	ownRetry, ownQueue bool
	// minTimeout is the shortest `timeout` the exporter can start with.
	minTimeout time.Duration
	// endpoint is the exporter's `endpoint` key, if any: the address a
	// probe connects to when the type has no probe of its own.
	endpoint string

	// Kafka members: the topic and encoding of each signal (traces,
	// metrics, logs), the record size limit and the bytes every record
	// carries besides its value (static record_headers).
	topics       map[string]string
	encodings    map[string]string
	recordLimit  int
	headerBytes  int
	metadataKeys []string
}

func readFacts(id component.ID, cfg component.Config) memberFacts {
	conf := confmap.New()
	if err := conf.Marshal(cfg); err != nil {
		return memberFacts{}
	}
	f := memberFacts{
		ownRetry: conf.Get("retry_on_failure::enabled") == true,
		// An enabled optional queue marshals as a map; a disabled one as nil.
		ownQueue: conf.Get("sending_queue") != nil,
	}
	f.endpoint, _ = conf.Get("endpoint").(string)
	switch t := conf.Get("timeout").(type) {
	case time.Duration:
		f.timeout = t
	case string:
		f.timeout, _ = time.ParseDuration(t)
	}
	if id.Type() != kafkaType {
		return f
	}
	f.minTimeout = kafkaMinTimeout
	f.topics, f.encodings = map[string]string{}, map[string]string{}
	for _, sig := range []string{"traces", "metrics", "logs"} {
		if t, ok := conf.Get(sig + "::topic").(string); ok && t != "" {
			f.topics[sig] = t
		}
		if e, ok := conf.Get(sig + "::encoding").(string); ok && e != "" {
			f.encodings[sig] = e
		}
	}
	f.recordLimit = toInt(conf.Get("producer::max_message_bytes"))
	f.metadataKeys = toStrings(conf.Get("include_metadata_keys"))
	if headers, ok := conf.Get("record_headers").([]any); ok {
		for _, h := range headers {
			if m, ok := h.(map[string]any); ok {
				name, _ := m["name"].(string)
				value, _ := m["value"].(string)
				f.headerBytes += len(name) + len(value)
			}
		}
	}
	return f
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case uint64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// typesWithOwnDeadline are the exporter types known to pass their `timeout`
// to exporterhelper.WithTimeout, so that every call is bounded by it.
// TestOwnDeadlineOfRealMembers pins this for each of them with a real
// exporter and a destination that never answers.
// kafka is not one: see typesOutlivingTheirContext.
var typesWithOwnDeadline = map[component.Type]bool{
	clickhouseType: true,
	otlpGRPCType:   true,
}

// typesTakingTokens are the exporter types whose writes carry a batch's
// deduplication token (dedup_token.go): clickhouse inserts take it as the
// insert_deduplication_token query setting, through the context the
// clickhouse exporter passes to PrepareBatch.
// TestRealClickHouseInsertCarriesToken pins it. A member with a
// sending_queue of its own (wait_for_result) gets no token: its queue may
// split a batch into several inserts under one context, and a call the
// group stopped waiting for may still sit in it.
var typesTakingTokens = map[component.Type]bool{
	clickhouseType: true,
}

// typesWritingSeveral are the exporter types, by signal, that write one
// batch in several inserts: the clickhouse exporter inserts a metrics batch
// into one table per metric type.
var typesWritingSeveral = map[component.Type]map[string]bool{
	clickhouseType: {"metrics": true},
}

// typesOutlivingTheirContext are the exporter types whose call can go on
// past its context: the kafka exporter's producer is idempotent (it is with
// required_acks all, the group's default), and franz-go never gives up a
// record it sent to a broker that then went away, since the broker may have
// written it; the call waits for the broker to come back, however long.
// The group bounds their calls itself (untilDone), which is safe only
// because such a call reads the batch before it blocks (the kafka exporter
// marshals it into records first): the group, or the caller, may use the
// batch again once the attempt ended.
// TestRealKafkaProduceInFlightWhenBrokerDies pins it.
var typesOutlivingTheirContext = map[component.Type]bool{
	kafkaType: true,
}

// ownsDeadline reports whether a member bounds every call itself within
// attempt_timeout, so that the group need not put a deadline of its own on
// each attempt (context.WithTimeout allocates on every batch): its type is
// known to enforce `timeout`, 0 < timeout <= attempt_timeout, and it has
// neither its own retries (each retry gets a fresh timeout) nor its own
// queue (a blocking queue can wait past the timeout). The group sets
// timeout = attempt_timeout and turns the member's retry and queue off
// unless the user set them, so default members of those types qualify.
// Anything else (otlp_http, whose timeout is its HTTP client's; debug;
// file; custom members) gets the group's deadline.
func ownsDeadline(mc *MemberConfig, attemptTimeout time.Duration) bool {
	if mc.factory == nil || !typesWithOwnDeadline[mc.factory.Type()] {
		return false
	}
	f := mc.facts
	return f.timeout > 0 && f.timeout <= attemptTimeout && !f.ownRetry && !f.ownQueue
}

// encodingFactor is how many times larger than OTLP protobuf (by which the
// group measures parts) a kafka member's encoding of a batch can be. JSON
// spells out field names and hex ids; other encodings (jaeger, zipkin, raw)
// write one record per span or log record, far below the batch's size. A
// part that still turns out too large is halved when the member refuses it.
func encodingFactor(encoding string) int {
	if encoding == "" || encoding == "otlp_proto" {
		return 1
	}
	return 4
}
