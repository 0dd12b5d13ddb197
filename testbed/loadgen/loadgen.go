// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package loadgen sends OTLP/HTTP load whose every item carries a unique id,
// so that what arrived in ClickHouse can be checked item by item: spans and
// log records by SpanId, gauge points by their nanosecond timestamp. It
// costs little CPU (each worker marshals its batch once and patches the ids
// in the encoded bytes for every send, see Encoded), so that on a 2-core
// machine it measures the collector, not itself; Result.ProcessCPU says what
// it cost.
package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Signal is traces, metrics or logs.
type Signal string

const (
	Traces  Signal = "traces"
	Metrics Signal = "metrics"
	Logs    Signal = "logs"
)

// AllSignals in a fixed order.
var AllSignals = []Signal{Traces, Metrics, Logs}

// BaseTime is the timestamp of item 0; item n has BaseTime + n ns.
var BaseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options of one run.
type Options struct {
	// Endpoint is the collector's OTLP/HTTP address, host:port.
	Endpoint string
	// Run names the run: it is the service.name of every item, so that runs
	// never mix in ClickHouse.
	Run string
	// Signals to send, round robin.
	Signals []Signal
	// Batches per signal and items per batch.
	Batches   int
	BatchSize int
	// Workers send concurrently, each over its own keep-alive connection.
	Workers int
	// Rate paces batches per second over all workers: batch i is handed out
	// at i/Rate after the start, or as soon as a worker is free when the run
	// is behind (by at most one second: a longer backlog is dropped, not sent
	// in a burst). 0 sends as fast as the workers get answers (closed loop).
	Rate float64
	// Duration, when positive, stops handing out batches after this long
	// (the batches already sent still get their answer). With Batches 0 it
	// is the only limit.
	Duration time.Duration
	// Attributes is the number of attributes on every span, log record and
	// point (realistic HTTP server attributes, see PutAttributes); 0 keeps the
	// items minimal.
	Attributes int
	// RetryFor keeps resending a rejected batch, as an OTLP client does,
	// until it is accepted or this much time passed since its first try.
	// 0 sends each batch once.
	RetryFor time.Duration
}

// Result counts what happened to the batches of a run.
type Result struct {
	// Accepted and Rejected count batches by their final answer.
	Accepted, Rejected atomic.Int64
	// AcceptedItems counts items in accepted batches, per signal.
	AcceptedItems map[Signal]*atomic.Int64
	// Retries counts sends after a rejection.
	Retries atomic.Int64
	// Requests counts HTTP requests made, retries included.
	Requests atomic.Int64
	// FirstError keeps one rejection for the report.
	firstErrMu sync.Mutex
	FirstError error
	// Elapsed is the time from the first batch handed out to the last answer.
	Elapsed time.Duration
	// ProcessCPU is the user+system CPU time of this whole process during
	// the run (getrusage): the generator plus whatever else the process did
	// meanwhile, an upper bound of what generating the load cost.
	ProcessCPU time.Duration

	latMu     sync.Mutex
	latencies []Latency
}

// Latency is the answer time of one accepted request: from sending it to
// its answer (the attempt that was accepted).
type Latency struct {
	At   time.Time // when the request was sent
	Took time.Duration
}

func (r *Result) addLatency(at time.Time, took time.Duration) {
	r.latMu.Lock()
	r.latencies = append(r.latencies, Latency{At: at, Took: took})
	r.latMu.Unlock()
}

// Percentiles returns the p-th percentiles (0..100, nearest rank) of the
// answer times of accepted requests sent in [from, to) (zero times: no
// bound), and how many requests that is.
func (r *Result) Percentiles(from, to time.Time, ps ...float64) ([]time.Duration, int) {
	r.latMu.Lock()
	var ds []time.Duration
	for _, l := range r.latencies {
		if (from.IsZero() || !l.At.Before(from)) && (to.IsZero() || l.At.Before(to)) {
			ds = append(ds, l.Took)
		}
	}
	r.latMu.Unlock()
	out := make([]time.Duration, len(ps))
	if len(ds) == 0 {
		return out, 0
	}
	slices.Sort(ds)
	for i, p := range ps {
		rank := int(math.Ceil(p/100*float64(len(ds)))) - 1
		out[i] = ds[min(max(rank, 0), len(ds)-1)]
	}
	return out, len(ds)
}

// TotalItems is the number of accepted items over all signals.
func (r *Result) TotalItems() int64 {
	var n int64
	for _, c := range r.AcceptedItems {
		n += c.Load()
	}
	return n
}

// Items is the number of accepted items of signal s.
func (r *Result) Items(s Signal) int64 { return r.AcceptedItems[s].Load() }

func (r *Result) keepErr(err error) {
	r.firstErrMu.Lock()
	if r.FirstError == nil {
		r.FirstError = err
	}
	r.firstErrMu.Unlock()
}

type job struct {
	signal Signal
	batch  int
}

// Run sends opts.Batches batches of each signal and returns when all have a
// final answer or ctx ends.
func Run(ctx context.Context, opts Options) *Result {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	res := &Result{AcceptedItems: map[Signal]*atomic.Int64{}}
	for _, s := range AllSignals {
		res.AcceptedItems[s] = &atomic.Int64{}
	}
	jobs := make(chan job)
	// Senders (and their encoded batches) are ready before the clock starts.
	senders := make([]*sender, opts.Workers)
	for w := range senders {
		senders[w] = newSender(opts)
	}
	cpuBefore := ProcessCPU()
	began := time.Now()
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(func() {
			for j := range jobs {
				s.send(ctx, j, res)
			}
		})
	}
	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	next := began
	var stop <-chan time.Time
	if opts.Duration > 0 {
		t := time.NewTimer(opts.Duration)
		defer t.Stop()
		stop = t.C
	}
	unlimited := opts.Batches <= 0 && opts.Duration > 0
feed:
	for b := 0; unlimited || b < opts.Batches; b++ {
		for _, s := range opts.Signals {
			if interval > 0 {
				next = next.Add(interval)
				now := time.Now()
				if behind := now.Sub(next); behind > time.Second {
					next = now
				}
				if wait := next.Sub(now); wait > 0 {
					pace.Reset(wait)
					select {
					case <-pace.C:
					case <-stop:
						break feed
					case <-ctx.Done():
						break feed
					}
				}
			}
			select {
			case jobs <- job{signal: s, batch: b}:
			case <-stop:
				break feed
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	res.Elapsed = time.Since(began)
	res.ProcessCPU = ProcessCPU() - cpuBefore
	return res
}

// ProcessCPU is the user+system CPU time this process used so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sender owns one encoded batch per signal, patched in place for each send,
// and one keep-alive connection.
type sender struct {
	opts   Options
	client *http.Client
	enc    map[Signal]*Encoded
	url    map[Signal]string
}

func newSender(opts Options) *sender {
	s := &sender{
		opts:   opts,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
		enc:    map[Signal]*Encoded{},
		url:    map[Signal]string{},
	}
	for _, sig := range opts.Signals {
		e, err := NewEncodedWithAttributes(sig, opts.Run, opts.BatchSize, opts.Attributes)
		if err != nil {
			panic(err) // pdata we built ourselves
		}
		s.enc[sig] = e
		s.url[sig] = "http://" + opts.Endpoint + e.Path
	}
	return s
}

func (s *sender) send(ctx context.Context, j job, res *Result) {
	body := s.enc[j.signal].Patch(uint64(j.batch) * uint64(s.opts.BatchSize))
	first := time.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			res.Retries.Add(1)
		}
		res.Requests.Add(1)
		sent := time.Now()
		err := s.post(ctx, j.signal, body)
		if err == nil {
			res.addLatency(sent, time.Since(sent))
			res.Accepted.Add(1)
			res.AcceptedItems[j.signal].Add(int64(s.opts.BatchSize))
			return
		}
		if s.opts.RetryFor == 0 || time.Since(first) > s.opts.RetryFor || ctx.Err() != nil {
			res.Rejected.Add(1)
			res.keepErr(err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)):
		}
	}
}

// post sends body and returns once the transport released it (it closes a
// request body when it is done writing it, possibly after the answer came),
// so that the caller may patch the bytes again.
func (s *sender) post(ctx context.Context, sig Signal, body []byte) error {
	rb := &requestBody{closed: make(chan struct{})}
	rb.r.Reset(body)
	defer func() { <-rb.closed }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url[sig], rb)
	if err != nil {
		rb.Close()
		return err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, resp.Body) // keep the connection reusable
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/v1/%s: HTTP %d: %q", sig, resp.StatusCode, msg)
	}
	return nil
}

// requestBody is a request body that says when the transport closed it.
type requestBody struct {
	r      bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *requestBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *requestBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// ID is the 8-byte id of item n: n+1 big-endian, so that no id is zero.
func ID(n uint64) [8]byte {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], n+1)
	return id
}

// NewTraces builds a batch of size spans of service run.
func NewTraces(run string, size int) ptrace.Traces {
	return NewTracesWithAttributes(run, size, 0)
}

// NewTracesWithAttributes builds a batch of size spans of service run, each
// with attrs attributes.
func NewTracesWithAttributes(run string, size, attrs int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", run)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(size)
	for range size {
		sp := spans.AppendEmpty()
		sp.SetName("loadgen")
		sp.SetKind(ptrace.SpanKindServer)
		PutAttributes(sp.Attributes(), attrs)
	}
	SetTraceIDs(td, 0)
	return td
}

// SetTraceIDs gives the spans the ids first, first+1, ...
func SetTraceIDs(td ptrace.Traces, first uint64) {
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		n := first + uint64(i)
		id := ID(n)
		sp := spans.At(i)
		var tid [16]byte
		copy(tid[8:], id[:])
		sp.SetTraceID(tid)
		sp.SetSpanID(id)
		start := pcommon.NewTimestampFromTime(BaseTime.Add(time.Duration(n)))
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + 1000)
	}
}

// NewLogs builds a batch of size log records of service run.
func NewLogs(run string, size int) plog.Logs {
	return NewLogsWithAttributes(run, size, 0)
}

// NewLogsWithAttributes builds a batch of size log records of service run,
// each with attrs attributes.
func NewLogsWithAttributes(run string, size, attrs int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", run)
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	recs.EnsureCapacity(size)
	for range size {
		lr := recs.AppendEmpty()
		lr.Body().SetStr("loadgen")
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		PutAttributes(lr.Attributes(), attrs)
	}
	SetLogIDs(ld, 0)
	return ld
}

// SetLogIDs gives the log records the span ids first, first+1, ...
func SetLogIDs(ld plog.Logs, first uint64) {
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < recs.Len(); i++ {
		n := first + uint64(i)
		lr := recs.At(i)
		lr.SetSpanID(ID(n))
		lr.SetTimestamp(pcommon.NewTimestampFromTime(BaseTime.Add(time.Duration(n))))
	}
}

// NewGauge builds one gauge of service run with size points.
func NewGauge(run string, size int) pmetric.Metrics {
	return NewGaugeWithAttributes(run, size, 0)
}

// NewGaugeWithAttributes builds one gauge of service run with size points,
// each with attrs attributes.
func NewGaugeWithAttributes(run string, size, attrs int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", run)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("loadgen.gauge")
	pts := m.SetEmptyGauge().DataPoints()
	pts.EnsureCapacity(size)
	for i := range size {
		pt := pts.AppendEmpty()
		pt.SetIntValue(int64(i))
		PutAttributes(pt.Attributes(), attrs)
	}
	SetGaugeIDs(md, 0)
	return md
}

// SetGaugeIDs gives the points the timestamps BaseTime+first ns, ...
func SetGaugeIDs(md pmetric.Metrics, first uint64) {
	pts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	for i := 0; i < pts.Len(); i++ {
		pts.At(i).SetTimestamp(pcommon.NewTimestampFromTime(BaseTime.Add(time.Duration(first + uint64(i)))))
	}
}

// CountQuery is the ClickHouse query answering "total rows, distinct ids"
// for the items of run and signal s in the reference schema (database otel).
func CountQuery(s Signal, run string) string {
	switch s {
	case Traces:
		return fmt.Sprintf("SELECT count(), uniqExact(SpanId) FROM otel.otel_traces WHERE ServiceName = '%s'", run)
	case Logs:
		return fmt.Sprintf("SELECT count(), uniqExact(SpanId) FROM otel.otel_logs WHERE ServiceName = '%s'", run)
	default:
		return fmt.Sprintf("SELECT count(), uniqExact(TimeUnix) FROM otel.otel_metrics_gauge WHERE ServiceName = '%s'", run)
	}
}

// httpAttributes are those of a typical HTTP server span (semantic
// conventions), in the order PutAttributes adds them.
var httpAttributes = []struct {
	key string
	val any
}{
	{"http.request.method", "GET"},
	{"http.route", "/api/v1/orders/{id}"},
	{"http.response.status_code", int64(200)},
	{"url.path", "/api/v1/orders/4711"},
	{"url.scheme", "https"},
	{"server.address", "orders.internal.example.com"},
	{"server.port", int64(8443)},
	{"network.protocol.version", "1.1"},
	{"client.address", "10.12.34.56"},
	{"user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
}

// PutAttributes adds n attributes: those of an HTTP server span, then
// loadgen.attr.<i> strings when n is larger.
func PutAttributes(m pcommon.Map, n int) {
	if n <= 0 {
		return
	}
	m.EnsureCapacity(n)
	for i := range n {
		if i < len(httpAttributes) {
			a := httpAttributes[i]
			switch v := a.val.(type) {
			case string:
				m.PutStr(a.key, v)
			case int64:
				m.PutInt(a.key, v)
			}
			continue
		}
		m.PutStr(fmt.Sprintf("loadgen.attr.%d", i), fmt.Sprintf("value-%d", i))
	}
}
