// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// spanSink is an OTLP/HTTP traces endpoint that records span ids and can
// refuse the first requests.
type spanSink struct {
	mu     sync.Mutex
	ids    map[[8]byte]int
	refuse int
}

func (s *spanSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		spans := rss.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			s.ids[spans.At(j).SpanID()]++
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

func newSink(t *testing.T, refuse int) (*spanSink, string) {
	sink := &spanSink{ids: map[[8]byte]int{}, refuse: refuse}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	return sink, strings.TrimPrefix(srv.URL, "http://")
}

// Every batch arrives once with its own ids, whatever the number of workers,
// and a refused batch is sent again.
func TestRunSendsUniqueIDs(t *testing.T) {
	sink, endpoint := newSink(t, 2)
	res := Run(t.Context(), Options{
		Endpoint: endpoint, Run: "t", Signals: []Signal{Traces},
		Batches: 25, BatchSize: 40, Workers: 4, Attributes: 5, RetryFor: time.Minute,
	})
	if res.Accepted.Load() != 25 || res.Rejected.Load() != 0 {
		t.Fatalf("accepted %d rejected %d (%v)", res.Accepted.Load(), res.Rejected.Load(), res.FirstError)
	}
	if res.TotalItems() != 25*40 || res.Requests.Load() != 27 || res.Retries.Load() != 2 {
		t.Fatalf("items %d requests %d retries %d", res.TotalItems(), res.Requests.Load(), res.Retries.Load())
	}
	if len(sink.ids) != 25*40 {
		t.Fatalf("%d distinct ids arrived, want %d", len(sink.ids), 25*40)
	}
	for n := range uint64(25 * 40) {
		if c := sink.ids[ID(n)]; c != 1 {
			t.Fatalf("id of item %d arrived %d times", n, c)
		}
	}
}

// With Duration and no Batches the run ends by itself; every batch it
// reports accepted arrived.
func TestRunDurationOnly(t *testing.T) {
	sink, endpoint := newSink(t, 0)
	res := Run(t.Context(), Options{
		Endpoint: endpoint, Run: "t", Signals: []Signal{Traces},
		BatchSize: 10, Workers: 2, Rate: 200, Duration: 300 * time.Millisecond,
	})
	if res.Accepted.Load() == 0 || res.Rejected.Load() != 0 {
		t.Fatalf("accepted %d rejected %d (%v)", res.Accepted.Load(), res.Rejected.Load(), res.FirstError)
	}
	if int64(len(sink.ids)) != res.TotalItems() {
		t.Fatalf("%d ids arrived, %d reported accepted", len(sink.ids), res.TotalItems())
	}
	if res.ProcessCPU <= 0 {
		t.Fatalf("process CPU not measured: %v", res.ProcessCPU)
	}
}

func TestPercentilesNearestRankInWindow(t *testing.T) {
	r := &Result{}
	t0 := time.Unix(100, 0)
	for i := 1; i <= 100; i++ {
		r.addLatency(t0.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
	}
	ps, n := r.Percentiles(time.Time{}, time.Time{}, 50, 99, 100)
	if n != 100 || ps[0] != 50*time.Millisecond || ps[1] != 99*time.Millisecond || ps[2] != 100*time.Millisecond {
		t.Fatalf("all: %v of %d", ps, n)
	}
	// Requests sent in [t0+51s, t0+61s): latencies 51..60 ms.
	ps, n = r.Percentiles(t0.Add(51*time.Second), t0.Add(61*time.Second), 50, 100)
	if n != 10 || ps[0] != 55*time.Millisecond || ps[1] != 60*time.Millisecond {
		t.Fatalf("window: %v of %d", ps, n)
	}
	if _, n = r.Percentiles(t0.Add(time.Hour), time.Time{}, 50); n != 0 {
		t.Fatalf("empty window has %d", n)
	}
}
