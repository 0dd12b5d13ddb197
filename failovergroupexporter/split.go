// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"math/bits"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// This file holds the batch surgery the failover path needs when a member
// cannot take a batch as it is: splitting by encoded size (Kafka members
// reject records above producer::max_message_bytes), halving (binary search
// for the items a member rejects) and merging leftovers back into one batch.
//
// Splitting works in two phases. The plan phase asks the pdata
// ProtoMarshaler for the encoded size of every resource, scope and item, in
// order, and decides greedily which part each item goes to, keeping the size
// of the part being filled up to date arithmetically (splitSizer), so that
// nothing is marshaled per item and the cost stays linear in the batch size.
// The build phase then copies the planned ranges into new batches. The input
// is only ever read, so it may be shared (MarkReadOnly) with other consumers.
//
// The header of a container (what every part holding one of its items pays
// again: resource or scope attributes, schema URL, ...) is its size minus
// what its children cost in it. Should a container also hold something its
// copies do not carry (the deprecated InstrumentationLibrary* lists, which
// pdata migrates away on receipt), the header is overestimated, which can
// only make parts smaller than allowed, never larger.
//
// Containers that hold no item (a resource without scopes, a scope without
// items) carry no telemetry; they survive only when the batch fits whole.

// protoVarintLen returns the length of v as a protobuf varint.
func protoVarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// protoFieldCost returns what an embedded message of encoded size size
// costs in its parent: one tag byte (every field sized here has a field
// number below 16), the varint length prefix and the message itself.
func protoFieldCost(size int) int {
	return 1 + protoVarintLen(uint64(size)) + size
}

// splitMaxDepth bounds the nesting the sizer tracks: resource, scope, metric
// and the metric's data message (Gauge, Sum, ...) holding the data points.
const splitMaxDepth = 4

// sizePath locates an item to place: the keys identify the enclosing
// containers among their siblings (resource index, scope index, ...) and hdrs
// hold their header sizes, i.e. their encoded size without any children, which
// every part holding one of their items has to pay again.
type sizePath struct {
	depth int
	keys  [splitMaxDepth]int
	hdrs  [splitMaxDepth]int
}

// scopePath returns the path of the items of scope si of resource ri, whose
// headers are rHdr and sHdr.
func scopePath(ri, si, rHdr, sHdr int) sizePath {
	return sizePath{depth: 2, keys: [splitMaxDepth]int{ri, si}, hdrs: [splitMaxDepth]int{rHdr, sHdr}}
}

// alone returns the encoded size of a batch holding only an item that costs
// c in its parent, with its containers. It decides whether an item can be
// sent at all under a byte budget.
func (p *sizePath) alone(c int) int {
	v := c
	for l := p.depth - 1; l >= 0; l-- {
		v = protoFieldCost(p.hdrs[l] + v)
	}
	return v
}

// splitSizer tracks the exact encoded size of the part being filled. Because
// a length prefix grows with its content, adding an item changes the prefix
// of every enclosing container, so the open containers are kept as a stack
// and the part size is folded from it in O(depth) instead of re-marshaling.
type splitSizer struct {
	base  int // contributions of the part's closed top-level containers
	depth int // number of open containers
	keys  [splitMaxDepth]int
	hdrs  [splitMaxDepth]int
	body  [splitMaxDepth]int // contributions of the children added so far
}

// common returns how many of path's containers are already open in the part.
func (s *splitSizer) common(path *sizePath) int {
	k := 0
	for k < s.depth && k < path.depth && s.keys[k] == path.keys[k] {
		k++
	}
	return k
}

// closedFrom returns the contribution of the open containers at levels >= k
// to their parent once they are closed.
func (s *splitSizer) closedFrom(k int) int {
	carry := 0
	for l := s.depth - 1; l >= k; l-- {
		carry = protoFieldCost(s.hdrs[l] + s.body[l] + carry)
	}
	return carry
}

// sizeWith returns the part size if an item costing c at path were added,
// without changing the part: the greedy fill asks this before each item.
func (s *splitSizer) sizeWith(path *sizePath, c int) int {
	k := s.common(path)
	extra := s.closedFrom(k)
	v := c
	for l := path.depth - 1; l >= k; l-- {
		v = protoFieldCost(path.hdrs[l] + v)
	}
	extra += v
	for l := k - 1; l >= 0; l-- {
		extra = protoFieldCost(s.hdrs[l] + s.body[l] + extra)
	}
	return s.base + extra
}

// add records an item costing c at path in the part, closing the containers
// it does not share with the previous item and opening its own.
func (s *splitSizer) add(path *sizePath, c int) {
	k := s.common(path)
	if carry := s.closedFrom(k); k == 0 {
		s.base += carry
	} else {
		s.body[k-1] += carry
	}
	for l := k; l < path.depth; l++ {
		s.keys[l] = path.keys[l]
		s.hdrs[l] = path.hdrs[l]
		s.body[l] = 0
	}
	s.depth = path.depth
	s.body[s.depth-1] += c
}

// splitSeg is one planned run of consecutive items of one container, to be
// copied into part `part` (-1: into the oversize batch). For metrics, mi < 0
// means [lo, hi) are whole metrics of the scope, mi >= 0 means [lo, hi) are
// data points of metric mi, which is split by its data points.
type splitSeg struct {
	part   int
	ri, si int
	mi     int
	lo, hi int
}

// splitPlanner is the greedy fill shared by the three signals: it assigns
// each item, in order, to the current part, or to a new part when it would
// push the current one over the budget, or to oversize when it does not fit
// even in a part of its own.
type splitPlanner struct {
	maxBytes int
	sizer    splitSizer
	parts    int // parts started so far; the current part is parts-1
	largest  int // size of the largest single-item oversize part
	segs     []splitSeg
}

// place plans the item at index idx (see splitSeg) costing c at path.
func (pl *splitPlanner) place(path *sizePath, c, ri, si, mi, idx int) {
	part := -1
	if alone := path.alone(c); alone > pl.maxBytes {
		pl.largest = max(pl.largest, alone)
	} else {
		if pl.parts == 0 || pl.sizer.sizeWith(path, c) > pl.maxBytes {
			pl.parts++
			pl.sizer = splitSizer{}
		}
		pl.sizer.add(path, c)
		part = pl.parts - 1
	}
	if n := len(pl.segs); n > 0 {
		last := &pl.segs[n-1]
		if last.part == part && last.ri == ri && last.si == si && last.mi == mi && last.hi == idx {
			last.hi++
			return
		}
	}
	pl.segs = append(pl.segs, splitSeg{part: part, ri: ri, si: si, mi: mi, lo: idx, hi: idx + 1})
}

// appendCopies copies src[lo:hi] to the end of dst. It serves every pdata
// slice (spans, log records, metrics, data points), which share this shape.
func appendCopies[E interface{ CopyTo(E) }, S interface {
	At(int) E
	Len() int
	EnsureCapacity(int)
	AppendEmpty() E
}](src, dst S, lo, hi int) {
	dst.EnsureCapacity(dst.Len() + hi - lo)
	for i := lo; i < hi; i++ {
		src.At(i).CopyTo(dst.AppendEmpty())
	}
}

// encodedSizes appends the encoded size of each element of s to buf.
func encodedSizes[E any, S interface {
	At(int) E
	Len() int
}](buf []int, s S, size func(E) int) []int {
	for i := 0; i < s.Len(); i++ {
		buf = append(buf, size(s.At(i)))
	}
	return buf
}

// sumFieldCosts returns what elements of the given sizes cost in their
// parent: a container's header size is its size minus this over its children.
func sumFieldCosts(sizes []int) int {
	n := 0
	for _, x := range sizes {
		n += protoFieldCost(x)
	}
	return n
}

// ---------------------------------------------------------------- traces

// tracesWriter appends spans to a new batch, recreating the source resource
// and scope of each run only when they change, so that consecutive runs of
// one scope share a single copy of its context.
type tracesWriter struct {
	td     ptrace.Traces
	ri, si int
	ss     ptrace.ScopeSpans
	rs     ptrace.ResourceSpans
}

// newTracesWriter starts an empty batch; -1 marks that no source resource or
// scope has been copied yet.
func newTracesWriter() *tracesWriter {
	return &tracesWriter{td: ptrace.NewTraces(), ri: -1, si: -1}
}

// spans returns the span slice of the copy of scope si of resource ri of src.
func (w *tracesWriter) spans(src ptrace.Traces, ri, si int) ptrace.SpanSlice {
	srs := src.ResourceSpans().At(ri)
	if w.ri != ri {
		w.rs = w.td.ResourceSpans().AppendEmpty()
		srs.Resource().CopyTo(w.rs.Resource())
		w.rs.SetSchemaUrl(srs.SchemaUrl())
		w.ri, w.si = ri, -1
	}
	if w.si != si {
		sss := srs.ScopeSpans().At(si)
		w.ss = w.rs.ScopeSpans().AppendEmpty()
		sss.Scope().CopyTo(w.ss.Scope())
		w.ss.SetSchemaUrl(sss.SchemaUrl())
		w.si = si
	}
	return w.ss.Spans()
}

// splitTracesBySize returns parts whose encoded OTLP size is at most maxBytes
// each, so that a member with a record size limit (Kafka) can take a batch
// that is too large as a whole; items too large even alone are returned in
// oversize (with their resource and scope) together with the size of the
// largest of them, so the caller can report or route them instead of
// retrying a send that cannot succeed. When td fits, parts is []{td} itself;
// otherwise nothing returned aliases td, td is only read, and parts is empty
// when every item is oversize.
func splitTracesBySize(td ptrace.Traces, maxBytes int) (parts []ptrace.Traces, oversize ptrace.Traces, largest int) {
	var sz ptrace.ProtoMarshaler
	rss := td.ResourceSpans()
	rsSizes := make([]int, rss.Len())
	total := 0
	for i := range rsSizes {
		rsSizes[i] = sz.ResourceSpansSize(rss.At(i))
		total += protoFieldCost(rsSizes[i])
	}
	if total <= maxBytes {
		return []ptrace.Traces{td}, ptrace.NewTraces(), 0
	}

	pl := splitPlanner{maxBytes: maxBytes}
	var scopeSizes, sizes []int
	for ri := 0; ri < rss.Len(); ri++ {
		sss := rss.At(ri).ScopeSpans()
		scopeSizes = encodedSizes(scopeSizes[:0], sss, sz.ScopeSpansSize)
		rHdr := rsSizes[ri] - sumFieldCosts(scopeSizes)
		for si := 0; si < sss.Len(); si++ {
			spans := sss.At(si).Spans()
			sizes = encodedSizes(sizes[:0], spans, sz.SpanSize)
			path := scopePath(ri, si, rHdr, scopeSizes[si]-sumFieldCosts(sizes))
			for k, size := range sizes {
				pl.place(&path, protoFieldCost(size), ri, si, -1, k)
			}
		}
	}

	parts = make([]ptrace.Traces, pl.parts)
	over := newTracesWriter()
	var w *tracesWriter
	cur := -1 // part w writes
	for _, s := range pl.segs {
		dst := over
		if s.part >= 0 {
			if s.part != cur {
				cur, w = s.part, newTracesWriter()
				parts[cur] = w.td
			}
			dst = w
		}
		src := rss.At(s.ri).ScopeSpans().At(s.si).Spans()
		appendCopies(src, dst.spans(td, s.ri, s.si), s.lo, s.hi)
	}
	return parts, over.td, pl.largest
}

// halveTraces splits td into two new batches of ceil(n/2) and floor(n/2)
// spans, in order and with their resource and scope, so that the group can
// binary-search for the spans a member rejects. td is only read. Meant for
// n >= 2; with fewer spans the second half is empty.
func halveTraces(td ptrace.Traces) (first, second ptrace.Traces) {
	k := (td.SpanCount() + 1) / 2
	a, b := newTracesWriter(), newTracesWriter()
	g := 0 // spans before the current scope
	rss := td.ResourceSpans()
	for ri := 0; ri < rss.Len(); ri++ {
		sss := rss.At(ri).ScopeSpans()
		for si := 0; si < sss.Len(); si++ {
			spans := sss.At(si).Spans()
			n := spans.Len()
			cut := min(max(k-g, 0), n)
			if cut > 0 {
				appendCopies(spans, a.spans(td, ri, si), 0, cut)
			}
			if cut < n {
				appendCopies(spans, b.spans(td, ri, si), cut, n)
			}
			g += n
		}
	}
	return a.td, b.td
}

// mergeTraces moves the content of the parts, in order, into one new batch,
// so that leftovers of a split can be handed on as a single request. The
// parts are consumed (left empty); a read-only part cannot be emptied and is
// copied instead. A single part is returned as is. Resources are not
// coalesced: a resource split across parts appears once per part.
func mergeTraces(parts []ptrace.Traces) ptrace.Traces {
	if len(parts) == 1 {
		return parts[0]
	}
	merged := ptrace.NewTraces()
	dst := merged.ResourceSpans()
	n := 0
	for _, p := range parts {
		n += p.ResourceSpans().Len()
	}
	dst.EnsureCapacity(n)
	for _, p := range parts {
		if p.IsReadOnly() {
			appendCopies(p.ResourceSpans(), dst, 0, p.ResourceSpans().Len())
			continue
		}
		p.ResourceSpans().MoveAndAppendTo(dst)
	}
	return merged
}

// ---------------------------------------------------------------- logs

// logsWriter is the plog counterpart of tracesWriter.
type logsWriter struct {
	ld     plog.Logs
	ri, si int
	rl     plog.ResourceLogs
	sl     plog.ScopeLogs
}

// newLogsWriter starts an empty batch, like newTracesWriter.
func newLogsWriter() *logsWriter {
	return &logsWriter{ld: plog.NewLogs(), ri: -1, si: -1}
}

// records returns the log record slice of the copy of scope si of resource
// ri of src.
func (w *logsWriter) records(src plog.Logs, ri, si int) plog.LogRecordSlice {
	srl := src.ResourceLogs().At(ri)
	if w.ri != ri {
		w.rl = w.ld.ResourceLogs().AppendEmpty()
		srl.Resource().CopyTo(w.rl.Resource())
		w.rl.SetSchemaUrl(srl.SchemaUrl())
		w.ri, w.si = ri, -1
	}
	if w.si != si {
		ssl := srl.ScopeLogs().At(si)
		w.sl = w.rl.ScopeLogs().AppendEmpty()
		ssl.Scope().CopyTo(w.sl.Scope())
		w.sl.SetSchemaUrl(ssl.SchemaUrl())
		w.si = si
	}
	return w.sl.LogRecords()
}

// splitLogsBySize is splitTracesBySize for logs: parts within maxBytes for a
// size-limited member, log records too large even alone in oversize.
func splitLogsBySize(ld plog.Logs, maxBytes int) (parts []plog.Logs, oversize plog.Logs, largest int) {
	var sz plog.ProtoMarshaler
	rls := ld.ResourceLogs()
	rlSizes := make([]int, rls.Len())
	total := 0
	for i := range rlSizes {
		rlSizes[i] = sz.ResourceLogsSize(rls.At(i))
		total += protoFieldCost(rlSizes[i])
	}
	if total <= maxBytes {
		return []plog.Logs{ld}, plog.NewLogs(), 0
	}

	pl := splitPlanner{maxBytes: maxBytes}
	var scopeSizes, sizes []int
	for ri := 0; ri < rls.Len(); ri++ {
		sls := rls.At(ri).ScopeLogs()
		scopeSizes = encodedSizes(scopeSizes[:0], sls, sz.ScopeLogsSize)
		rHdr := rlSizes[ri] - sumFieldCosts(scopeSizes)
		for si := 0; si < sls.Len(); si++ {
			records := sls.At(si).LogRecords()
			sizes = encodedSizes(sizes[:0], records, sz.LogRecordSize)
			path := scopePath(ri, si, rHdr, scopeSizes[si]-sumFieldCosts(sizes))
			for k, size := range sizes {
				pl.place(&path, protoFieldCost(size), ri, si, -1, k)
			}
		}
	}

	parts = make([]plog.Logs, pl.parts)
	over := newLogsWriter()
	var w *logsWriter
	cur := -1 // part w writes
	for _, s := range pl.segs {
		dst := over
		if s.part >= 0 {
			if s.part != cur {
				cur, w = s.part, newLogsWriter()
				parts[cur] = w.ld
			}
			dst = w
		}
		src := rls.At(s.ri).ScopeLogs().At(s.si).LogRecords()
		appendCopies(src, dst.records(ld, s.ri, s.si), s.lo, s.hi)
	}
	return parts, over.ld, pl.largest
}

// halveLogs is halveTraces for log records.
func halveLogs(ld plog.Logs) (first, second plog.Logs) {
	k := (ld.LogRecordCount() + 1) / 2
	a, b := newLogsWriter(), newLogsWriter()
	g := 0 // log records before the current scope
	rls := ld.ResourceLogs()
	for ri := 0; ri < rls.Len(); ri++ {
		sls := rls.At(ri).ScopeLogs()
		for si := 0; si < sls.Len(); si++ {
			records := sls.At(si).LogRecords()
			n := records.Len()
			cut := min(max(k-g, 0), n)
			if cut > 0 {
				appendCopies(records, a.records(ld, ri, si), 0, cut)
			}
			if cut < n {
				appendCopies(records, b.records(ld, ri, si), cut, n)
			}
			g += n
		}
	}
	return a.ld, b.ld
}

// mergeLogs is mergeTraces for logs.
func mergeLogs(parts []plog.Logs) plog.Logs {
	if len(parts) == 1 {
		return parts[0]
	}
	merged := plog.NewLogs()
	dst := merged.ResourceLogs()
	n := 0
	for _, p := range parts {
		n += p.ResourceLogs().Len()
	}
	dst.EnsureCapacity(n)
	for _, p := range parts {
		if p.IsReadOnly() {
			appendCopies(p.ResourceLogs(), dst, 0, p.ResourceLogs().Len())
			continue
		}
		p.ResourceLogs().MoveAndAppendTo(dst)
	}
	return merged
}

// ---------------------------------------------------------------- metrics

// metricDataPointCount returns the number of data points of m (0 for an
// Empty metric): the unit in which the collector counts metric items.
func metricDataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// temporalityCost returns the encoded size of an aggregation temporality
// field (field 2, omitted when unspecified).
func temporalityCost(t pmetric.AggregationTemporality) int {
	if t == 0 {
		return 0
	}
	return 1 + protoVarintLen(uint64(t))
}

// metricDataHeader returns the encoded size of m's data message (Gauge, Sum,
// ...) without its data points. pdata exposes no size for these messages,
// and their non-repeated fields are few and fixed by the OTLP schema.
func metricDataHeader(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		h := temporalityCost(m.Sum().AggregationTemporality())
		if m.Sum().IsMonotonic() {
			h += 2
		}
		return h
	case pmetric.MetricTypeHistogram:
		return temporalityCost(m.Histogram().AggregationTemporality())
	case pmetric.MetricTypeExponentialHistogram:
		return temporalityCost(m.ExponentialHistogram().AggregationTemporality())
	}
	return 0
}

// dataPointSizes appends the encoded size of each data point of m to buf.
func dataPointSizes(buf []int, m pmetric.Metric, sz *pmetric.ProtoMarshaler) []int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return encodedSizes(buf, m.Gauge().DataPoints(), sz.NumberDataPointSize)
	case pmetric.MetricTypeSum:
		return encodedSizes(buf, m.Sum().DataPoints(), sz.NumberDataPointSize)
	case pmetric.MetricTypeHistogram:
		return encodedSizes(buf, m.Histogram().DataPoints(), sz.HistogramDataPointSize)
	case pmetric.MetricTypeExponentialHistogram:
		return encodedSizes(buf, m.ExponentialHistogram().DataPoints(), sz.ExponentialHistogramDataPointSize)
	case pmetric.MetricTypeSummary:
		return encodedSizes(buf, m.Summary().DataPoints(), sz.SummaryDataPointSize)
	}
	return buf
}

// appendMetricPiece appends to dst a copy of src without data points: the
// context every piece of a metric split by data points must carry (name,
// description, unit, metadata, type, temporality, monotonicity).
func appendMetricPiece(dst pmetric.MetricSlice, src pmetric.Metric) pmetric.Metric {
	m := dst.AppendEmpty()
	m.SetName(src.Name())
	m.SetDescription(src.Description())
	m.SetUnit(src.Unit())
	src.Metadata().CopyTo(m.Metadata())
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		m.SetEmptyGauge()
	case pmetric.MetricTypeSum:
		s := m.SetEmptySum()
		s.SetAggregationTemporality(src.Sum().AggregationTemporality())
		s.SetIsMonotonic(src.Sum().IsMonotonic())
	case pmetric.MetricTypeHistogram:
		m.SetEmptyHistogram().SetAggregationTemporality(src.Histogram().AggregationTemporality())
	case pmetric.MetricTypeExponentialHistogram:
		m.SetEmptyExponentialHistogram().SetAggregationTemporality(src.ExponentialHistogram().AggregationTemporality())
	case pmetric.MetricTypeSummary:
		m.SetEmptySummary()
	}
	return m
}

// appendDataPoints copies data points [lo, hi) of src to dst, a piece made
// by appendMetricPiece from src.
func appendDataPoints(dst, src pmetric.Metric, lo, hi int) {
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		appendCopies(src.Gauge().DataPoints(), dst.Gauge().DataPoints(), lo, hi)
	case pmetric.MetricTypeSum:
		appendCopies(src.Sum().DataPoints(), dst.Sum().DataPoints(), lo, hi)
	case pmetric.MetricTypeHistogram:
		appendCopies(src.Histogram().DataPoints(), dst.Histogram().DataPoints(), lo, hi)
	case pmetric.MetricTypeExponentialHistogram:
		appendCopies(src.ExponentialHistogram().DataPoints(), dst.ExponentialHistogram().DataPoints(), lo, hi)
	case pmetric.MetricTypeSummary:
		appendCopies(src.Summary().DataPoints(), dst.Summary().DataPoints(), lo, hi)
	}
}

// metricsWriter is the pmetric counterpart of tracesWriter; it also keeps
// the last metric piece, so that data point runs of one metric that end up
// consecutive in a batch share one piece.
type metricsWriter struct {
	md         pmetric.Metrics
	ri, si, mi int // mi: source index of piece, -1 if the last metric is not a piece
	rm         pmetric.ResourceMetrics
	sm         pmetric.ScopeMetrics
	piece      pmetric.Metric
}

// newMetricsWriter starts an empty batch, like newTracesWriter.
func newMetricsWriter() *metricsWriter {
	return &metricsWriter{md: pmetric.NewMetrics(), ri: -1, si: -1, mi: -1}
}

// metrics returns the metric slice of the copy of scope si of resource ri of
// src.
func (w *metricsWriter) metrics(src pmetric.Metrics, ri, si int) pmetric.MetricSlice {
	srm := src.ResourceMetrics().At(ri)
	if w.ri != ri {
		w.rm = w.md.ResourceMetrics().AppendEmpty()
		srm.Resource().CopyTo(w.rm.Resource())
		w.rm.SetSchemaUrl(srm.SchemaUrl())
		w.ri, w.si = ri, -1
	}
	if w.si != si {
		ssm := srm.ScopeMetrics().At(si)
		w.sm = w.rm.ScopeMetrics().AppendEmpty()
		ssm.Scope().CopyTo(w.sm.Scope())
		w.sm.SetSchemaUrl(ssm.SchemaUrl())
		w.si, w.mi = si, -1
	}
	return w.sm.Metrics()
}

// appendWhole copies metrics [lo, hi) of scope si of resource ri of src.
func (w *metricsWriter) appendWhole(src pmetric.Metrics, ri, si, lo, hi int) {
	dst := w.metrics(src, ri, si)
	appendCopies(src.ResourceMetrics().At(ri).ScopeMetrics().At(si).Metrics(), dst, lo, hi)
	w.mi = -1
}

// appendPoints copies data points [lo, hi) of metric mi of scope si of
// resource ri of src, continuing the last piece if it is of the same metric.
func (w *metricsWriter) appendPoints(src pmetric.Metrics, ri, si, mi, lo, hi int) {
	dst := w.metrics(src, ri, si)
	sm := src.ResourceMetrics().At(ri).ScopeMetrics().At(si).Metrics().At(mi)
	if w.mi != mi {
		w.piece = appendMetricPiece(dst, sm)
		w.mi = mi
	}
	appendDataPoints(w.piece, sm, lo, hi)
}

// splitMetricsBySize is splitTracesBySize for metrics. Whole metrics are
// packed as long as a metric fits in a part of its own; a metric that does
// not is split by its data points (each piece keeping the metric's context)
// so that only data points too large even alone end up in oversize. A metric
// without data points (Empty type) is never split.
func splitMetricsBySize(md pmetric.Metrics, maxBytes int) (parts []pmetric.Metrics, oversize pmetric.Metrics, largest int) {
	var sz pmetric.ProtoMarshaler
	rms := md.ResourceMetrics()
	rmSizes := make([]int, rms.Len())
	total := 0
	for i := range rmSizes {
		rmSizes[i] = sz.ResourceMetricsSize(rms.At(i))
		total += protoFieldCost(rmSizes[i])
	}
	if total <= maxBytes {
		return []pmetric.Metrics{md}, pmetric.NewMetrics(), 0
	}

	pl := splitPlanner{maxBytes: maxBytes}
	var scopeSizes, sizes, dpSizes []int
	for ri := 0; ri < rms.Len(); ri++ {
		sms := rms.At(ri).ScopeMetrics()
		scopeSizes = encodedSizes(scopeSizes[:0], sms, sz.ScopeMetricsSize)
		rHdr := rmSizes[ri] - sumFieldCosts(scopeSizes)
		for si := 0; si < sms.Len(); si++ {
			metrics := sms.At(si).Metrics()
			sizes = encodedSizes(sizes[:0], metrics, sz.MetricSize)
			path := scopePath(ri, si, rHdr, scopeSizes[si]-sumFieldCosts(sizes))
			for mi, size := range sizes {
				m := metrics.At(mi)
				if path.alone(protoFieldCost(size)) <= maxBytes || metricDataPointCount(m) == 0 {
					pl.place(&path, protoFieldCost(size), ri, si, -1, mi)
					continue
				}
				// Split the metric by its data points: the metric header
				// (name, ..., metadata) is its size minus its data message.
				dpSizes = dataPointSizes(dpSizes[:0], m, &sz)
				dataHdr := metricDataHeader(m)
				metricHdr := size - protoFieldCost(dataHdr+sumFieldCosts(dpSizes))
				dpPath := path
				dpPath.depth = 4
				dpPath.keys[2], dpPath.hdrs[2] = mi, metricHdr
				dpPath.keys[3], dpPath.hdrs[3] = 0, dataHdr
				for k, dpSize := range dpSizes {
					pl.place(&dpPath, protoFieldCost(dpSize), ri, si, mi, k)
				}
			}
		}
	}

	parts = make([]pmetric.Metrics, pl.parts)
	over := newMetricsWriter()
	var w *metricsWriter
	cur := -1 // part w writes
	for _, s := range pl.segs {
		dst := over
		if s.part >= 0 {
			if s.part != cur {
				cur, w = s.part, newMetricsWriter()
				parts[cur] = w.md
			}
			dst = w
		}
		if s.mi < 0 {
			dst.appendWhole(md, s.ri, s.si, s.lo, s.hi)
		} else {
			dst.appendPoints(md, s.ri, s.si, s.mi, s.lo, s.hi)
		}
	}
	return parts, over.md, pl.largest
}

// halveMetrics splits md into two new batches of ceil(n/2) and floor(n/2)
// data points (n = md.DataPointCount(), the collector's item count for
// metrics), in order and with their context, so that the group can
// binary-search for the data points a member rejects. The metric holding the
// cut is split between the halves by its data points; a metric without data
// points goes to the first half if fewer than ceil(n/2) data points precede
// it, else to the second. md is only read. Meant for n >= 2.
func halveMetrics(md pmetric.Metrics) (first, second pmetric.Metrics) {
	k := (md.DataPointCount() + 1) / 2
	a, b := newMetricsWriter(), newMetricsWriter()
	g := 0 // data points before the current metric
	rms := md.ResourceMetrics()
	for ri := 0; ri < rms.Len(); ri++ {
		sms := rms.At(ri).ScopeMetrics()
		for si := 0; si < sms.Len(); si++ {
			metrics := sms.At(si).Metrics()
			for mi := 0; mi < metrics.Len(); mi++ {
				n := metricDataPointCount(metrics.At(mi))
				switch {
				case g < k && g+n <= k:
					a.appendWhole(md, ri, si, mi, mi+1)
				case g >= k:
					b.appendWhole(md, ri, si, mi, mi+1)
				default:
					a.appendPoints(md, ri, si, mi, 0, k-g)
					b.appendPoints(md, ri, si, mi, k-g, n)
				}
				g += n
			}
		}
	}
	return a.md, b.md
}

// mergeMetrics is mergeTraces for metrics.
func mergeMetrics(parts []pmetric.Metrics) pmetric.Metrics {
	if len(parts) == 1 {
		return parts[0]
	}
	merged := pmetric.NewMetrics()
	dst := merged.ResourceMetrics()
	n := 0
	for _, p := range parts {
		n += p.ResourceMetrics().Len()
	}
	dst.EnsureCapacity(n)
	for _, p := range parts {
		if p.IsReadOnly() {
			appendCopies(p.ResourceMetrics(), dst, 0, p.ResourceMetrics().Len())
			continue
		}
		p.ResourceMetrics().MoveAndAppendTo(dst)
	}
	return merged
}
