// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// peek.go decodes records: what a parked batch holds (signal, how many
// items, which services, what time span) and why it was parked (the stamp
// headers), so that an operator can judge a DLQ without a Kafka toolbox.

// recordSummary is one decoded record.
type recordSummary struct {
	Topic     string    `json:"topic"`
	Role      string    `json:"role"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Bytes     int64     `json:"bytes"`
	Signal    string    `json:"signal"`
	Encoding  string    `json:"encoding"`
	Resources int       `json:"resources"`
	// Items counts spans, metric data points or log records (ItemKind).
	Items    int        `json:"items"`
	ItemKind string     `json:"item_kind"`
	Services []string   `json:"services"`
	First    *time.Time `json:"first_item_time,omitempty"`
	Last     *time.Time `json:"last_item_time,omitempty"`
	// Headers are the record's headers, the stamp among them.
	Headers     map[string]string `json:"headers"`
	DecodeError string            `json:"decode_error,omitempty"`
}

type peekOptions struct {
	n     int
	topic string
	json  bool
}

func runPeek(ctx context.Context, s *setup, sess *session, o peekOptions, stdout io.Writer) error {
	topics, err := selectTopics(s, o.topic)
	if err != nil {
		return err
	}
	var out []recordSummary
	var missing []error
	for _, t := range topics {
		parts, err := sess.partitions(ctx, t)
		if err != nil {
			if isNoTopic(err) {
				missing = append(missing, err)
				continue
			}
			return err
		}
		got := 0
		err = sess.read(ctx, t, parts, func(rec *kgo.Record) bool {
			out = append(out, summarize(t, rec))
			got++
			return got < o.n
		})
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if out == nil {
			out = []recordSummary{}
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		if len(out) == 0 {
			fmt.Fprintln(stdout, "no records")
		}
		for i := range out {
			printSummary(stdout, &out[i])
		}
	}
	return joinMissing(missing)
}

// selectTopics returns the topic named name, or every topic for "".
func selectTopics(s *setup, name string) ([]*topicInfo, error) {
	if name == "" {
		return s.topics, nil
	}
	if t := s.topic(name); t != nil {
		return []*topicInfo{t}, nil
	}
	return nil, fmt.Errorf("topic %q is not a DLQ or poison topic of %s (those are %s): pass one of them, or the config of the collector that writes it",
		name, s.path, strings.Join(s.names(""), ", "))
}

// summarize decodes rec as t's signal and encoding.
func summarize(t *topicInfo, rec *kgo.Record) recordSummary {
	sum := recordSummary{
		Topic: t.name, Role: t.role, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UTC(),
		Bytes: recordBytes(rec), Signal: t.signal, Encoding: t.encoding, Headers: map[string]string{}, Services: []string{},
	}
	for _, h := range rec.Headers {
		if _, dup := sum.Headers[h.Key]; !dup {
			sum.Headers[h.Key] = string(h.Value)
		}
	}
	var err error
	switch t.signal {
	case "traces":
		err = sum.traces(t.encoding, rec.Value)
	case "metrics":
		err = sum.metrics(t.encoding, rec.Value)
	case "logs":
		err = sum.logs(t.encoding, rec.Value)
	}
	if err != nil {
		sum.DecodeError = err.Error()
	}
	slices.Sort(sum.Services)
	return sum
}

func unsupported(encoding string) error {
	return fmt.Errorf("encoding %q is not decoded by dlq (otlp_proto and otlp_json are)", encoding)
}

func (r *recordSummary) traces(encoding string, b []byte) error {
	var td ptrace.Traces
	var err error
	switch encoding {
	case "otlp_proto":
		td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	case "otlp_json":
		td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(b)
	default:
		return unsupported(encoding)
	}
	if err != nil {
		return fmt.Errorf("not OTLP traces (%s): %w", encoding, err)
	}
	r.ItemKind, r.Items = "spans", td.SpanCount()
	rss := td.ResourceSpans()
	r.Resources = rss.Len()
	for i := range rss.Len() {
		rs := rss.At(i)
		r.service(rs.Resource())
		for j := range rs.ScopeSpans().Len() {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := range spans.Len() {
				r.span(spans.At(k).StartTimestamp(), spans.At(k).EndTimestamp())
			}
		}
	}
	return nil
}

func (r *recordSummary) metrics(encoding string, b []byte) error {
	var md pmetric.Metrics
	var err error
	switch encoding {
	case "otlp_proto":
		md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	case "otlp_json":
		md, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(b)
	default:
		return unsupported(encoding)
	}
	if err != nil {
		return fmt.Errorf("not OTLP metrics (%s): %w", encoding, err)
	}
	r.ItemKind, r.Items = "data points", md.DataPointCount()
	rms := md.ResourceMetrics()
	r.Resources = rms.Len()
	for i := range rms.Len() {
		rm := rms.At(i)
		r.service(rm.Resource())
		for j := range rm.ScopeMetrics().Len() {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := range ms.Len() {
				r.metricTimes(ms.At(k))
			}
		}
	}
	return nil
}

// metricTimes takes the time range of a metric's data points, which live
// in a list of their own per metric type.
func (r *recordSummary) metricTimes(m pmetric.Metric) {
	//exhaustive:enforce
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := range m.Gauge().DataPoints().Len() {
			r.span(m.Gauge().DataPoints().At(i).Timestamp(), 0)
		}
	case pmetric.MetricTypeSum:
		for i := range m.Sum().DataPoints().Len() {
			r.span(m.Sum().DataPoints().At(i).Timestamp(), 0)
		}
	case pmetric.MetricTypeHistogram:
		for i := range m.Histogram().DataPoints().Len() {
			r.span(m.Histogram().DataPoints().At(i).Timestamp(), 0)
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := range m.ExponentialHistogram().DataPoints().Len() {
			r.span(m.ExponentialHistogram().DataPoints().At(i).Timestamp(), 0)
		}
	case pmetric.MetricTypeSummary:
		for i := range m.Summary().DataPoints().Len() {
			r.span(m.Summary().DataPoints().At(i).Timestamp(), 0)
		}
	case pmetric.MetricTypeEmpty:
	}
}

func (r *recordSummary) logs(encoding string, b []byte) error {
	var ld plog.Logs
	var err error
	switch encoding {
	case "otlp_proto":
		ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
	case "otlp_json":
		ld, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(b)
	default:
		return unsupported(encoding)
	}
	if err != nil {
		return fmt.Errorf("not OTLP logs (%s): %w", encoding, err)
	}
	r.ItemKind, r.Items = "log records", ld.LogRecordCount()
	rls := ld.ResourceLogs()
	r.Resources = rls.Len()
	for i := range rls.Len() {
		rl := rls.At(i)
		r.service(rl.Resource())
		for j := range rl.ScopeLogs().Len() {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := range lrs.Len() {
				ts := lrs.At(k).Timestamp()
				if ts == 0 {
					ts = lrs.At(k).ObservedTimestamp()
				}
				r.span(ts, 0)
			}
		}
	}
	return nil
}

func (r *recordSummary) service(res pcommon.Resource) {
	name := "(no service.name)"
	if v, ok := res.Attributes().Get("service.name"); ok {
		name = v.AsString()
	}
	if !slices.Contains(r.Services, name) {
		r.Services = append(r.Services, name)
	}
}

// span widens the record's time range by [from, to]; zero times (unset in
// OTLP) are left out.
func (r *recordSummary) span(from, to pcommon.Timestamp) {
	for _, ts := range []pcommon.Timestamp{from, to} {
		if ts == 0 {
			continue
		}
		t := ts.AsTime().UTC()
		if r.First == nil || t.Before(*r.First) {
			r.First = &t
		}
		if r.Last == nil || t.After(*r.Last) {
			r.Last = &t
		}
	}
}

// printSummary writes a record for people: what it holds, then its
// headers, the contract's in the contract's order first.
func printSummary(w io.Writer, r *recordSummary) {
	fmt.Fprintf(w, "%s partition %d offset %d (%s, %d bytes, written %s)\n",
		r.Topic, r.Partition, r.Offset, r.Role, r.Bytes, r.Timestamp.Format(tableTime))
	if r.DecodeError != "" {
		fmt.Fprintf(w, "  cannot decode: %s\n", r.DecodeError)
	} else {
		fmt.Fprintf(w, "  %s: %d %s in %d resource%s\n", r.Signal, r.Items, r.ItemKind, r.Resources, plural(r.Resources))
		fmt.Fprintf(w, "  services: %s\n", strings.Join(r.Services, ", "))
		if r.First != nil {
			fmt.Fprintf(w, "  time range: %s to %s\n", r.First.Format(time.RFC3339Nano), r.Last.Format(time.RFC3339Nano))
		}
	}
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		if !slices.Contains(dlqmeta.HeaderKeys, k) && k != headerRedrivenFrom {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range append(append(slices.Clone(dlqmeta.HeaderKeys), headerRedrivenFrom), keys...) {
		if v, ok := r.Headers[k]; ok {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
