// Package loadgen sends OTLP/HTTP load whose every item carries a unique id,
// so that what arrived in ClickHouse can be checked item by item: spans and
// log records by SpanId, gauge points by their nanosecond timestamp. It
// costs little CPU (one batch per worker, ids patched in place, one marshal
// per send), so that on a 2-core machine it measures the collector, not
// itself.
package loadgen // import "github.com/otelfailover/otelcol-failover/internal/loadgen"

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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
	// Rate limits batches per second over all workers; 0 means open loop.
	Rate float64
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
	// FirstError keeps one rejection for the report.
	firstErrMu sync.Mutex
	FirstError error
	Elapsed    time.Duration
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
	began := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSender(opts)
			for j := range jobs {
				s.send(ctx, j, res)
			}
		}()
	}
	var tick *time.Ticker
	if opts.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		defer tick.Stop()
	}
feed:
	for b := 0; b < opts.Batches; b++ {
		for _, s := range opts.Signals {
			if tick != nil {
				select {
				case <-tick.C:
				case <-ctx.Done():
					break feed
				}
			}
			select {
			case jobs <- job{signal: s, batch: b}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	res.Elapsed = time.Since(began)
	return res
}

// sender owns one batch per signal, patched in place for each send.
type sender struct {
	opts   Options
	client *http.Client
	traces ptrace.Traces
	logs   plog.Logs
	gauge  pmetric.Metrics
}

func newSender(opts Options) *sender {
	return &sender{
		opts:   opts,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
		traces: NewTraces(opts.Run, opts.BatchSize),
		logs:   NewLogs(opts.Run, opts.BatchSize),
		gauge:  NewGauge(opts.Run, opts.BatchSize),
	}
}

func (s *sender) send(ctx context.Context, j job, res *Result) {
	body, path := s.encode(j)
	first := time.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			res.Retries.Add(1)
		}
		err := s.post(ctx, path, body)
		if err == nil {
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

func (s *sender) encode(j job) ([]byte, string) {
	first := uint64(j.batch) * uint64(s.opts.BatchSize)
	var body []byte
	var err error
	switch j.signal {
	case Traces:
		SetTraceIDs(s.traces, first)
		body, err = ptraceotlp.NewExportRequestFromTraces(s.traces).MarshalProto()
	case Logs:
		SetLogIDs(s.logs, first)
		body, err = plogotlp.NewExportRequestFromLogs(s.logs).MarshalProto()
	case Metrics:
		SetGaugeIDs(s.gauge, first)
		body, err = pmetricotlp.NewExportRequestFromMetrics(s.gauge).MarshalProto()
	}
	if err != nil {
		panic(fmt.Sprintf("loadgen: marshal %s: %v", j.signal, err)) // pdata we built ourselves
	}
	return body, "/v1/" + string(j.signal)
}

func (s *sender) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.opts.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %q", path, resp.StatusCode, msg)
	}
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
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", run)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(size)
	for i := 0; i < size; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("loadgen")
		sp.SetKind(ptrace.SpanKindServer)
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
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", run)
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	recs.EnsureCapacity(size)
	for i := 0; i < size; i++ {
		lr := recs.AppendEmpty()
		lr.Body().SetStr("loadgen")
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
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
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", run)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("loadgen.gauge")
	pts := m.SetEmptyGauge().DataPoints()
	pts.EnsureCapacity(size)
	for i := 0; i < size; i++ {
		pts.AppendEmpty().SetIntValue(int64(i))
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
