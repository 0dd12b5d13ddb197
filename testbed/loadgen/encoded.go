// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Encoded is one OTLP/HTTP protobuf request body of a batch, marshaled once.
// Every field that carries an item's id (trace and span ids, timestamps) has
// a fixed width on the wire, so Patch rewrites them in place: a send costs no
// pdata work, no marshaling and no allocation, and the bytes are exactly
// those that marshaling the batch after Set*IDs(first) would give.
//
// An Encoded is not safe for concurrent use: each sender owns its own, and
// patches it only after the previous request body was released.
type Encoded struct {
	Signal Signal
	// Path is the OTLP/HTTP path, /v1/traces, /v1/metrics or /v1/logs.
	Path string
	// Items is the number of items (spans, points, log records) in the batch.
	Items int

	body []byte
	// Per item: offsets in body of the 8-byte id (span id; -1 if none), of
	// the 16-byte trace id (-1 if none), and of up to two little-endian
	// fixed64 timestamps (-1 if none).
	id, traceID, ts1, ts2 []int
}

// NewEncoded builds and marshals a batch of size items of signal s for run,
// with the ids of items 0..size-1, and locates every id field in the bytes.
func NewEncoded(s Signal, run string, size int) (*Encoded, error) {
	return NewEncodedWithAttributes(s, run, size, 0)
}

// NewEncodedWithAttributes is NewEncoded with attrs attributes on every item
// (see PutAttributes).
func NewEncodedWithAttributes(s Signal, run string, size, attrs int) (*Encoded, error) {
	e := &Encoded{Signal: s, Path: "/v1/" + string(s), Items: size}
	var err error
	switch s {
	case Traces:
		e.body, err = ptraceotlp.NewExportRequestFromTraces(NewTracesWithAttributes(run, size, attrs)).MarshalProto()
	case Logs:
		e.body, err = plogotlp.NewExportRequestFromLogs(NewLogsWithAttributes(run, size, attrs)).MarshalProto()
	case Metrics:
		e.body, err = pmetricotlp.NewExportRequestFromMetrics(NewGaugeWithAttributes(run, size, attrs)).MarshalProto()
	default:
		return nil, fmt.Errorf("loadgen: unknown signal %q", s)
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: marshal %s: %w", s, err)
	}
	if err := e.locate(); err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", s, err)
	}
	if len(e.id) != size {
		return nil, fmt.Errorf("loadgen: %s: found %d items in the encoded batch, built %d", s, len(e.id), size)
	}
	return e, nil
}

// Patch gives the items the ids first, first+1, ... (as SetTraceIDs,
// SetLogIDs and SetGaugeIDs do) and returns the body, which stays owned by e.
func (e *Encoded) Patch(first uint64) []byte {
	for i := range e.id {
		n := first + uint64(i)
		id := ID(n)
		if o := e.id[i]; o >= 0 {
			copy(e.body[o:o+8], id[:])
		}
		if o := e.traceID[i]; o >= 0 {
			copy(e.body[o+8:o+16], id[:])
		}
		ts := uint64(BaseTime.UnixNano()) + n
		if o := e.ts1[i]; o >= 0 {
			binary.LittleEndian.PutUint64(e.body[o:o+8], ts)
		}
		if o := e.ts2[i]; o >= 0 {
			binary.LittleEndian.PutUint64(e.body[o:o+8], ts+1000)
		}
	}
	return e.body
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// walk calls visit for every field of the message b, which starts at offset
// base of the whole body; off is the offset of the field's value (for
// length-delimited fields, of its payload).
func walk(b []byte, base int, visit func(num, typ, off int, val []byte) error) error {
	for i := 0; i < len(b); {
		tag, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return errors.New("bad field tag")
		}
		i += n
		num, typ := int(tag>>3), int(tag&7)
		var l int
		switch typ {
		case wireVarint:
			_, m := binary.Uvarint(b[i:])
			if m <= 0 {
				return errors.New("bad varint")
			}
			l = m
		case wireFixed64:
			l = 8
		case wireFixed32:
			l = 4
		case wireBytes:
			v, m := binary.Uvarint(b[i:])
			if m <= 0 {
				return errors.New("bad length")
			}
			i += m
			l = int(v)
		default:
			return fmt.Errorf("unexpected wire type %d", typ)
		}
		if l < 0 || i+l > len(b) {
			return errors.New("truncated field")
		}
		if err := visit(num, typ, base+i, b[i:i+l]); err != nil {
			return err
		}
		i += l
	}
	return nil
}

// into descends into the length-delimited field num of every level of path.
func into(path []int, leaf func(off int, msg []byte) error) func(num, typ, off int, val []byte) error {
	return func(num, typ, off int, val []byte) error {
		if num != path[0] || typ != wireBytes {
			return nil
		}
		if len(path) == 1 {
			return leaf(off, val)
		}
		return walk(val, off, into(path[1:], leaf))
	}
}

// item records where one item's id fields are; fields maps a field number of
// the item's message to the slot it fills.
func (*Encoded) item(fields map[int]*[]int, want map[int]int) func(off int, msg []byte) error {
	return func(off int, msg []byte) error {
		found := map[int]int{}
		err := walk(msg, off, func(num, _, o int, val []byte) error {
			if _, ok := fields[num]; !ok {
				return nil
			}
			if len(val) != want[num] {
				return fmt.Errorf("field %d has %d bytes, want %d", num, len(val), want[num])
			}
			found[num] = o
			return nil
		})
		if err != nil {
			return err
		}
		for num, slot := range fields {
			o, ok := found[num]
			if !ok {
				return fmt.Errorf("field %d missing from an item", num)
			}
			*slot = append(*slot, o)
		}
		return nil
	}
}

func (e *Encoded) locate() error {
	var none []int
	var leafPath []int
	var fields map[int]*[]int
	var width map[int]int
	switch e.Signal {
	case Traces:
		// ExportTraceServiceRequest.resource_spans(1) → ResourceSpans.scope_spans(2)
		// → ScopeSpans.spans(2) → Span{trace_id(1), span_id(2),
		// start_time_unix_nano(7), end_time_unix_nano(8)}.
		leafPath = []int{1, 2, 2}
		fields = map[int]*[]int{1: &e.traceID, 2: &e.id, 7: &e.ts1, 8: &e.ts2}
		width = map[int]int{1: 16, 2: 8, 7: 8, 8: 8}
	case Logs:
		// ExportLogsServiceRequest.resource_logs(1) → ResourceLogs.scope_logs(2)
		// → ScopeLogs.log_records(2) → LogRecord{time_unix_nano(1), span_id(10)}.
		leafPath = []int{1, 2, 2}
		fields = map[int]*[]int{10: &e.id, 1: &e.ts1}
		width = map[int]int{10: 8, 1: 8}
	case Metrics:
		// ExportMetricsServiceRequest.resource_metrics(1) → ResourceMetrics.scope_metrics(2)
		// → ScopeMetrics.metrics(2) → Metric.gauge(5) → Gauge.data_points(1)
		// → NumberDataPoint{time_unix_nano(3)}.
		leafPath = []int{1, 2, 2, 5, 1}
		fields = map[int]*[]int{3: &e.ts1}
		width = map[int]int{3: 8}
	}
	if err := walk(e.body, 0, into(leafPath, e.item(fields, width))); err != nil {
		return err
	}
	n := 0
	for _, slot := range fields {
		n = len(*slot)
	}
	for i := 0; i < n; i++ {
		none = append(none, -1)
	}
	for _, s := range []*[]int{&e.id, &e.traceID, &e.ts1, &e.ts2} {
		if *s == nil {
			*s = append([]int(nil), none...)
		}
	}
	return nil
}
