// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// groupSettings are the group keys that member overrides depend on.
type groupSettings struct {
	attemptTimeout time.Duration
}

// kafkaAcksAll is the kafka exporter's `producer::required_acks` value for
// "every in-sync replica" (-1; "all" in YAML).
const kafkaAcksAll = -1

// groupOverrides are the member settings the group changes when the user did
// not set them:
//   - sending_queue off: the member must report failures synchronously;
//   - retry_on_failure off: the group fails over instead of waiting;
//   - timeout = attempt_timeout: the member's own deadline matches the group's;
//   - include_metadata_keys += the DLQ keys, so a kafka member writes them
//     as record headers (and, with a batching queue the user set, the batch
//     partition keys too, as kafka requires);
//   - producer::required_acks = all on kafka members: a parked record is
//     the only copy of its data, so it must survive the loss of the leader;
//   - connection_params::dial_timeout = attempt_timeout on clickhouse
//     members (unless the endpoint's DSN sets it): over the native protocol
//     (tcp://) clickhouse-go bounds a new connection's handshake, and the
//     wait for a pooled connection, by dial_timeout alone (30s by default),
//     not by the attempt's deadline, so a hung ClickHouse would hold each
//     attempt that dials for 30s instead of attempt_timeout.
func groupOverrides(id component.ID, defaults, user *confmap.Conf, g groupSettings) map[string]any {
	o := map[string]any{}
	if defaults.IsSet("sending_queue") && !userSet(user, "sending_queue") {
		o["sending_queue"] = map[string]any{"enabled": false}
	}
	if defaults.IsSet("retry_on_failure") && !userSet(user, "retry_on_failure") {
		o["retry_on_failure"] = map[string]any{"enabled": false}
	}
	// A non-positive attempt_timeout is the group's error to report
	// (Validate names attempt_timeout), not the member's `timeout`.
	if defaults.IsSet("timeout") && !userSet(user, "timeout") && g.attemptTimeout > 0 {
		o["timeout"] = g.attemptTimeout.String()
	}
	if id.Type() == clickhouseType && g.attemptTimeout > 0 && !userSet(user, "connection_params::dial_timeout") && !endpointSets(user, "dial_timeout") {
		o["connection_params"] = map[string]any{"dial_timeout": g.attemptTimeout.String()}
	}
	if id.Type() == kafkaType && defaults.IsSet("producer::required_acks") && !userSet(user, "producer::required_acks") {
		o["producer"] = map[string]any{"required_acks": kafkaAcksAll}
	}
	if defaults.IsSet("include_metadata_keys") {
		keys := withDLQKeys(toStrings(user.Get("include_metadata_keys")))
		o["include_metadata_keys"] = keys
		// A (synchronous) batching queue the user set must partition
		// batches by every include_metadata_keys value, or kafka refuses the
		// config for keys the user never wrote: add the DLQ keys there too.
		if userSet(user, "sending_queue::batch") {
			pk := withDLQKeys(toStrings(user.Get("sending_queue::batch::partition::metadata_keys")))
			o["sending_queue"] = map[string]any{"batch": map[string]any{"partition": map[string]any{"metadata_keys": pk}}}
		}
	}
	return o
}

func withDLQKeys(keys []string) []string {
	for _, k := range dlqmeta.HeaderKeys {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
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
	return atKey("sending_queue", errAsyncMemberQueue)
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list)+len(dlqmeta.HeaderKeys))
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

// endpointSets reports whether the member's endpoint (a clickhouse DSN)
// sets the query parameter key.
func endpointSets(user *confmap.Conf, key string) bool {
	ep, ok := user.Get("endpoint").(string)
	if !ok {
		return false
	}
	u, err := url.Parse(ep)
	return err == nil && u.Query().Has(key)
}
