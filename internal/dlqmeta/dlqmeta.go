// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package dlqmeta defines the client-metadata keys that the failover_group
// exporter stamps on data it hands to a fallback (dead-letter) member, and that
// the dlq_routing connector and the loop guard read back.
//
// The keys are a public contract: the kafka exporter's include_metadata_keys
// turns them into Kafka record headers, and the kafka receiver turns record
// headers back into client metadata, so they survive the round trip through
// the DLQ topic. Client metadata keys are lower case.
package dlqmeta

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/collector/client"
)

const (
	// KeyGroup names the failover_group that parked the data, e.g.
	// "failover_group/ingest". Its presence marks data as dead-lettered; the
	// loop guard and dlq_routing's header match rely on it.
	KeyGroup = "otelcol-failover-group"
	// KeyFailedMember is the member that did not take the data, e.g.
	// "clickhouse/live".
	KeyFailedMember = "otelcol-failover-failed-member"
	// KeyReason is "<class>:<token>" for why that member did not take it,
	// e.g. "transient:connection_refused", "transient:breaker_open",
	// "permanent:clickhouse_469".
	KeyReason = "otelcol-failover-reason"
	// KeyTime is when the group failed the data over, UTC, in the
	// time.RFC3339Nano layout; the group writes millisecond precision
	// (e.g. "2026-03-01T12:00:00.123Z").
	KeyTime = "otelcol-failover-time"
	// KeyDedupToken is the batch's deduplication token: the
	// insert_deduplication_token its ClickHouse inserts carried, so that a
	// replay of the record is dropped by ClickHouse if the live insert was
	// committed after all. A part of a batch (split to fit a record,
	// isolated from refused items) has the batch's token, "~" and a hash of
	// the part's content. Absent from records parked without a token (older
	// versions, groups with tokens off).
	KeyDedupToken = "otelcol-failover-dedup-token" //nolint:gosec // G101: a header's name, not a credential
)

// KeyKafkaTopic is the client metadata key the contrib kafka receiver sets to
// the topic a record was read from.
const KeyKafkaTopic = "kafka.topic"

// Replayed reports whether client metadata md says the data was read back
// from a DLQ: its kafka.topic is one of topics, or (when byStamp) it
// carries a group's stamp. The failover group's loop guard and dlq_routing's
// match both ask this question; this is the one answer.
func Replayed(md client.Metadata, topics []string, byStamp bool) bool {
	if byStamp && len(md.Get(KeyGroup)) > 0 {
		return true
	}
	if len(topics) == 0 {
		return false
	}
	for _, t := range md.Get(KeyKafkaTopic) {
		if slices.Contains(topics, t) {
			return true
		}
	}
	return false
}

// Keys the dlq_routing connector adds when it hands replayed data that the
// replay pipelines refused as bad to the poison pipelines: the DLQ stamp is
// kept, and these say why the replay refused it.
const (
	// KeyPoisonReason is "<class>:<token>" for why the replay pipelines
	// refused the data, e.g. "permanent:clickhouse_469".
	KeyPoisonReason = "otelcol-failover-poison-reason"
	// KeyPoisonTime is when dlq_routing poisoned it, in KeyTime's layout.
	KeyPoisonTime = "otelcol-failover-poison-time"
)

// Keys lists every key the group stamps.
var Keys = []string{KeyGroup, KeyFailedMember, KeyReason, KeyTime, KeyDedupToken}

// HeaderKeys lists every key of this contract, the group's stamp and the
// poison stamp: what a kafka member's include_metadata_keys must list so
// that they travel as record headers.
var HeaderKeys = append(slices.Clone(Keys), KeyPoisonReason, KeyPoisonTime)

// Stamp describes one failover.
type Stamp struct {
	Group        string
	FailedMember string
	Reason       string
	Time         time.Time
	// DedupToken is the batch's deduplication token; empty keeps the
	// token the data already carries, if any.
	DedupToken string
}

// IsDeadLettered reports whether the client metadata in ctx says the data has
// already been through a DLQ (it carries the group stamp).
func IsDeadLettered(ctx context.Context) bool {
	return len(client.FromContext(ctx).Metadata.Get(KeyGroup)) > 0
}

// WithPoisonStamp returns a context whose client metadata holds the existing
// keys (the DLQ stamp among them) plus why the replay refused the data.
func WithPoisonStamp(ctx context.Context, reason string, at time.Time) context.Context {
	info, md := copyMetadata(ctx)
	md[KeyPoisonReason] = []string{reason}
	md[KeyPoisonTime] = []string{at.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)}
	info.Metadata = client.NewMetadata(md)
	return client.NewContext(ctx, info)
}

// copyMetadata returns ctx's client info and a copy of its metadata to add
// keys to: client metadata has no setter.
func copyMetadata(ctx context.Context) (client.Info, map[string][]string) {
	info := client.FromContext(ctx)
	md := make(map[string][]string, 8)
	for k := range info.Metadata.Keys() {
		md[k] = info.Metadata.Get(k)
	}
	return info, md
}

// WithStamp returns a context whose client metadata holds the existing keys
// plus the stamp (replacing an earlier stamp's values). Client metadata has
// no setter, so the map is rebuilt; this runs only on the failover path,
// never on the healthy one, and keeps its allocations few: the four values
// share one backing array.
func WithStamp(ctx context.Context, s Stamp) context.Context {
	info, md := copyMetadata(ctx)
	vals := [...]string{s.Group, s.FailedMember, s.Reason, s.Time.UTC().Format(time.RFC3339Nano)}
	backing := vals[:]
	md[KeyGroup] = backing[0:1:1]
	md[KeyFailedMember] = backing[1:2:2]
	md[KeyReason] = backing[2:3:3]
	md[KeyTime] = backing[3:4:4]
	if s.DedupToken != "" {
		md[KeyDedupToken] = []string{s.DedupToken}
	}
	info.Metadata = client.NewMetadata(md)
	return client.NewContext(ctx, info)
}

// DedupToken returns the deduplication token client metadata md carries,
// or "".
func DedupToken(md client.Metadata) string {
	if v := md.Get(KeyDedupToken); len(v) > 0 {
		return v[0]
	}
	return ""
}

// WithoutDedupToken returns a context whose client metadata is ctx's without
// the deduplication token: for data the token no longer stands for.
func WithoutDedupToken(ctx context.Context) context.Context {
	info, md := copyMetadata(ctx)
	delete(md, KeyDedupToken)
	info.Metadata = client.NewMetadata(md)
	return client.NewContext(ctx, info)
}

// WithDedupToken returns a context whose client metadata is ctx's with the
// deduplication token set to token: for a part of a batch, which must not
// carry the batch's own token.
func WithDedupToken(ctx context.Context, token string) context.Context {
	info, md := copyMetadata(ctx)
	md[KeyDedupToken] = []string{token}
	info.Metadata = client.NewMetadata(md)
	return client.NewContext(ctx, info)
}
