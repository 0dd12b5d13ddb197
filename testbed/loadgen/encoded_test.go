// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package loadgen

import (
	"bytes"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Patching the encoded bytes must give exactly what marshaling the batch
// with the same ids gives, for every signal, whatever the ids (including
// ids whose varint-free fixed-width encodings have every byte set).
func TestEncodedPatchEqualsMarshal(t *testing.T) {
	firsts := []uint64{0, 1, 999, 1 << 20, 1<<40 + 7, 1<<63 - 1000}
	for _, s := range AllSignals {
		for _, c := range []struct{ size, attrs int }{{1, 0}, {7, 0}, {200, 0}, {3, 10}, {50, 14}} {
			size := c.size
			enc, err := NewEncodedWithAttributes(s, "run-x", size, c.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if enc.Items != size || enc.Path != "/v1/"+string(s) {
				t.Fatalf("%s: items %d path %s", s, enc.Items, enc.Path)
			}
			for _, first := range firsts {
				got := enc.Patch(first)
				var want []byte
				switch s {
				case Traces:
					td := NewTracesWithAttributes("run-x", size, c.attrs)
					SetTraceIDs(td, first)
					want, err = ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
				case Logs:
					ld := NewLogsWithAttributes("run-x", size, c.attrs)
					SetLogIDs(ld, first)
					want, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
				case Metrics:
					md := NewGaugeWithAttributes("run-x", size, c.attrs)
					SetGaugeIDs(md, first)
					want, err = pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s size %d first %d: patched bytes differ from marshaled ones", s, size, first)
				}
			}
		}
	}
}

// The patched body decodes to the items first..first+size-1.
func TestEncodedDecodes(t *testing.T) {
	enc, err := NewEncoded(Traces, "run-y", 3)
	if err != nil {
		t.Fatal(err)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(enc.Patch(41)); err != nil {
		t.Fatal(err)
	}
	spans := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		if got, want := spans.At(i).SpanID(), ID(41+uint64(i)); got != want {
			t.Fatalf("span %d: id %x, want %x", i, got, want)
		}
	}
}

func TestEncodedUnknownSignal(t *testing.T) {
	if _, err := NewEncoded("profiles", "r", 1); err == nil {
		t.Fatal("want an error for an unknown signal")
	}
}
