// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"
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
// Both phases, halving and merging are written once for the three signals
// (signalLayout below).
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

// splitSeg is one planned run of consecutive items of one scope, to be
// copied into part `part` (-1: into the oversize batch). item < 0 means
// [lo, hi) are whole items of the scope; item >= 0 means [lo, hi) are
// sub-items (data points) of item `item`, which is cut by its sub-items.
type splitSeg struct {
	part   int
	ri, si int
	item   int
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
func (pl *splitPlanner) place(path *sizePath, c, ri, si, item, idx int) {
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
		if last.part == part && last.ri == ri && last.si == si && last.item == item && last.hi == idx {
			last.hi++
			return
		}
	}
	pl.segs = append(pl.segs, splitSeg{part: part, ri: ri, si: si, item: item, lo: idx, hi: idx + 1})
}

// pdataSlice is what this file uses of a pdata slice (ResourceSpansSlice,
// SpanSlice, NumberDataPointSlice, ...): S is the slice type, E its element.
type pdataSlice[S, E any] interface {
	Len() int
	At(int) E
	AppendEmpty() E
	EnsureCapacity(int)
	MoveAndAppendTo(S)
}

// appendCopies copies src[lo:hi] to the end of dst. It serves every pdata
// slice (resources, spans, log records, metrics, data points).
func appendCopies[E interface{ CopyTo(E) }, S pdataSlice[S, E]](src, dst S, lo, hi int) {
	dst.EnsureCapacity(dst.Len() + hi - lo)
	for i := lo; i < hi; i++ {
		src.At(i).CopyTo(dst.AppendEmpty())
	}
}

// encodedSizes appends the encoded size of each element of s to buf.
func encodedSizes[E any, S pdataSlice[S, E]](buf []int, s S, size func(E) int) []int {
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

// ---------------------------------------------------------------- layout

// The three signals nest their items the same way, resources → scopes →
// items, and their pdata types have the same shape at each level; only the
// names differ (ResourceSpans/ResourceLogs, Spans/LogRecords, ...). So the
// batch surgery is written once, as methods of signalLayout, which names
// those types and their accessors for one signal. What metrics have beyond
// that, data points within a metric, is an optional fourth level (subItems)
// that only the metrics layout sets.

// resourceContainer is a resource-level element (ResourceSpans, ...): a
// resource and schema URL, the context its copies carry, above its scopes.
type resourceContainer[R any] interface {
	CopyTo(R)
	Resource() pcommon.Resource
	SchemaUrl() string
	SetSchemaUrl(string)
}

// scopeContainer is a scope-level element (ScopeSpans, ...): a scope and
// schema URL, the context its copies carry, above its items.
type scopeContainer interface {
	Scope() pcommon.InstrumentationScope
	SchemaUrl() string
	SetSchemaUrl(string)
}

// signalLayout describes one signal for the generic code below: B is its
// batch (ptrace.Traces, ...), RL and R its resource slice and element, SL
// and S its scope slice and element, IL and I its item slice and element.
// The size functions come from the signal's ProtoMarshaler.
type signalLayout[
	B interface{ IsReadOnly() bool },
	RL pdataSlice[RL, R], R resourceContainer[R],
	SL pdataSlice[SL, S], S scopeContainer,
	IL pdataSlice[IL, I], I interface{ CopyTo(I) },
] struct {
	newBatch     func() B
	count        func(B) int // items as the collector counts them (SpanCount, ...)
	resources    func(B) RL
	resourceSize func(R) int
	scopes       func(R) SL
	scopeSize    func(S) int
	items        func(S) IL
	itemSize     func(I) int
	sub          *subItems[IL, I] // nil: items are never cut
}

// subItems describes items that hold smaller items of their own: metrics,
// whose data points are what the collector counts. Such an item is cut by
// its sub-items only when it must be: when it does not fit in a part of its
// own (split) or when the middle of the batch falls inside it (halve). Each
// piece then carries the item's context, as parts carry their scope's.
type subItems[IL, I any] struct {
	// count returns the number of sub-items of an item, also its weight in
	// the collector's count; an item without sub-items is never cut.
	count func(I) int
	// plan appends to buf the encoded sizes of the sub-items of item (item
	// k of the scope at path, of encoded size size) and returns the path of
	// the sub-items: path with the item's own headers added.
	plan func(buf []int, item I, k, size int, path sizePath) ([]int, sizePath)
	// appendPiece appends to dst a copy of src without its sub-items.
	appendPiece func(dst IL, src I) I
	// appendRange copies sub-items [lo, hi) of src to dst, a piece of src.
	appendRange func(dst, src I, lo, hi int)
}

// appendResource appends to b a copy of src without its scopes.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) appendResource(b B, src R) R {
	r := l.resources(b).AppendEmpty()
	src.Resource().CopyTo(r.Resource())
	r.SetSchemaUrl(src.SchemaUrl())
	return r
}

// appendScope appends to r a copy of src without its items.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) appendScope(r R, src S) S {
	s := l.scopes(r).AppendEmpty()
	src.Scope().CopyTo(s.Scope())
	s.SetSchemaUrl(src.SchemaUrl())
	return s
}

// batchWriter is a new batch being filled with runs of a source batch. The
// source resource and scope of a run are copied only when they differ from
// the previous run's, so that consecutive runs of one scope share a single
// copy of its context; likewise the piece of an item cut by its sub-items.
type batchWriter[B, R, S, I any] struct {
	batch  B
	ri, si int // source indices of the resource and scope last copied
	rs     R
	sc     S
	pi     int // source index of the item piece is cut from
	piece  I
}

// newWriter starts an empty batch; -1 marks that no source resource, scope
// or item has been copied yet.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) newWriter() *batchWriter[B, R, S, I] {
	return &batchWriter[B, R, S, I]{batch: l.newBatch(), ri: -1, si: -1, pi: -1}
}

// write copies the run s of src to w (s.part is not looked at).
func (l *signalLayout[B, RL, R, SL, S, IL, I]) write(w *batchWriter[B, R, S, I], src B, s splitSeg) {
	srs := l.resources(src).At(s.ri)
	ssc := l.scopes(srs).At(s.si)
	if w.ri != s.ri {
		w.rs = l.appendResource(w.batch, srs)
		w.ri, w.si = s.ri, -1
	}
	if w.si != s.si {
		w.sc = l.appendScope(w.rs, ssc)
		w.si, w.pi = s.si, -1
	}
	items, dst := l.items(ssc), l.items(w.sc)
	if s.item < 0 {
		appendCopies(items, dst, s.lo, s.hi)
		w.pi = -1
		return
	}
	item := items.At(s.item)
	if w.pi != s.item {
		w.piece = l.sub.appendPiece(dst, item)
		w.pi = s.item
	}
	l.sub.appendRange(w.piece, item, s.lo, s.hi)
}

// split is splitTracesBySize for any signal (see there). Items with
// sub-items are packed whole as long as they fit in a part of their own;
// one that does not is cut by its sub-items, so that only sub-items too
// large even alone end up in oversize. An item without sub-items is never
// cut.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) split(b B, maxBytes int) (parts []B, oversize B, largest int) {
	rl := l.resources(b)
	rSizes := make([]int, rl.Len())
	total := 0
	for i := range rSizes {
		rSizes[i] = l.resourceSize(rl.At(i))
		total += protoFieldCost(rSizes[i])
	}
	if total <= maxBytes {
		return []B{b}, l.newBatch(), 0
	}

	pl := splitPlanner{maxBytes: maxBytes}
	var scopeSizes, sizes, subSizes []int
	for ri := 0; ri < rl.Len(); ri++ {
		sl := l.scopes(rl.At(ri))
		scopeSizes = encodedSizes(scopeSizes[:0], sl, l.scopeSize)
		rHdr := rSizes[ri] - sumFieldCosts(scopeSizes)
		for si := 0; si < sl.Len(); si++ {
			items := l.items(sl.At(si))
			sizes = encodedSizes(sizes[:0], items, l.itemSize)
			path := scopePath(ri, si, rHdr, scopeSizes[si]-sumFieldCosts(sizes))
			for k, size := range sizes {
				c := protoFieldCost(size)
				if l.sub == nil || path.alone(c) <= maxBytes || l.sub.count(items.At(k)) == 0 {
					pl.place(&path, c, ri, si, -1, k)
					continue
				}
				var subPath sizePath
				subSizes, subPath = l.sub.plan(subSizes[:0], items.At(k), k, size, path)
				for j, subSize := range subSizes {
					pl.place(&subPath, protoFieldCost(subSize), ri, si, k, j)
				}
			}
		}
	}

	parts = make([]B, pl.parts)
	over := l.newWriter()
	var w *batchWriter[B, R, S, I]
	cur := -1 // part w writes
	for _, s := range pl.segs {
		dst := over
		if s.part >= 0 {
			if s.part != cur {
				cur, w = s.part, l.newWriter()
				parts[cur] = w.batch
			}
			dst = w
		}
		l.write(dst, b, s)
	}
	return parts, over.batch, pl.largest
}

// weight returns what item counts for in l.count.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) weight(item I) int {
	if l.sub == nil {
		return 1
	}
	return l.sub.count(item)
}

// halve is halveTraces for any signal (see there): the first half takes the
// items, in order, while it holds fewer than ceil(n/2); the item that would
// take it past that is cut between the halves by its sub-items.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) halve(b B) (first, second B) {
	k := (l.count(b) + 1) / 2
	x, y := l.newWriter(), l.newWriter()
	g := 0 // weight of the items before the current one
	rl := l.resources(b)
	for ri := 0; ri < rl.Len(); ri++ {
		sl := l.scopes(rl.At(ri))
		for si := 0; si < sl.Len(); si++ {
			items := l.items(sl.At(si))
			n := items.Len()
			cut, w := 0, 0 // items [0, cut) go to the first half whole
			for ; cut < n && g < k; cut++ {
				if w = l.weight(items.At(cut)); g+w > k {
					break
				}
				g += w
			}
			if cut > 0 {
				l.write(x, b, splitSeg{ri: ri, si: si, item: -1, lo: 0, hi: cut})
			}
			if cut < n && g < k {
				// Item cut holds the middle: g < k < g+w, so w >= 2, which
				// only an item with sub-items can weigh.
				l.write(x, b, splitSeg{ri: ri, si: si, item: cut, lo: 0, hi: k - g})
				l.write(y, b, splitSeg{ri: ri, si: si, item: cut, lo: k - g, hi: w})
				g += w
				cut++
			}
			if cut < n {
				l.write(y, b, splitSeg{ri: ri, si: si, item: -1, lo: cut, hi: n})
			}
		}
	}
	return x.batch, y.batch
}

// merge is mergeTraces for any signal (see there).
func (l *signalLayout[B, RL, R, SL, S, IL, I]) merge(parts []B) B {
	if len(parts) == 1 {
		return parts[0]
	}
	merged := l.newBatch()
	dst := l.resources(merged)
	n := 0
	for _, p := range parts {
		n += l.resources(p).Len()
	}
	dst.EnsureCapacity(n)
	for _, p := range parts {
		src := l.resources(p)
		if p.IsReadOnly() {
			appendCopies(src, dst, 0, src.Len())
			continue
		}
		src.MoveAndAppendTo(dst)
	}
	return merged
}

// ---------------------------------------------------------------- signals

// The layouts of the three signals and the entry points the rest of the
// package calls, which hold the contract.

var tracesLayout = &signalLayout[ptrace.Traces, ptrace.ResourceSpansSlice, ptrace.ResourceSpans, ptrace.ScopeSpansSlice, ptrace.ScopeSpans, ptrace.SpanSlice, ptrace.Span]{
	newBatch: ptrace.NewTraces, count: ptrace.Traces.SpanCount,
	resources: ptrace.Traces.ResourceSpans, resourceSize: (&ptrace.ProtoMarshaler{}).ResourceSpansSize,
	scopes: ptrace.ResourceSpans.ScopeSpans, scopeSize: (&ptrace.ProtoMarshaler{}).ScopeSpansSize,
	items: ptrace.ScopeSpans.Spans, itemSize: (&ptrace.ProtoMarshaler{}).SpanSize,
}

var logsLayout = &signalLayout[plog.Logs, plog.ResourceLogsSlice, plog.ResourceLogs, plog.ScopeLogsSlice, plog.ScopeLogs, plog.LogRecordSlice, plog.LogRecord]{
	newBatch: plog.NewLogs, count: plog.Logs.LogRecordCount,
	resources: plog.Logs.ResourceLogs, resourceSize: (&plog.ProtoMarshaler{}).ResourceLogsSize,
	scopes: plog.ResourceLogs.ScopeLogs, scopeSize: (&plog.ProtoMarshaler{}).ScopeLogsSize,
	items: plog.ScopeLogs.LogRecords, itemSize: (&plog.ProtoMarshaler{}).LogRecordSize,
}

// metricsLayout cuts a metric by its data points: the data message (Gauge,
// Sum, ...) between a metric and its data points makes them two levels
// deeper than the metric, and every piece repeats both headers.
var metricsLayout = &signalLayout[pmetric.Metrics, pmetric.ResourceMetricsSlice, pmetric.ResourceMetrics, pmetric.ScopeMetricsSlice, pmetric.ScopeMetrics, pmetric.MetricSlice, pmetric.Metric]{
	newBatch: pmetric.NewMetrics, count: pmetric.Metrics.DataPointCount,
	resources: pmetric.Metrics.ResourceMetrics, resourceSize: (&pmetric.ProtoMarshaler{}).ResourceMetricsSize,
	scopes: pmetric.ResourceMetrics.ScopeMetrics, scopeSize: (&pmetric.ProtoMarshaler{}).ScopeMetricsSize,
	items: pmetric.ScopeMetrics.Metrics, itemSize: (&pmetric.ProtoMarshaler{}).MetricSize,
	sub: &subItems[pmetric.MetricSlice, pmetric.Metric]{
		count:       metricDataPointCount,
		plan:        planDataPoints,
		appendPiece: appendMetricPiece,
		appendRange: appendDataPoints,
	},
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
	return tracesLayout.split(td, maxBytes)
}

// splitLogsBySize is splitTracesBySize for logs: parts within maxBytes for a
// size-limited member, log records too large even alone in oversize.
func splitLogsBySize(ld plog.Logs, maxBytes int) (parts []plog.Logs, oversize plog.Logs, largest int) {
	return logsLayout.split(ld, maxBytes)
}

// splitMetricsBySize is splitTracesBySize for metrics. Whole metrics are
// packed as long as a metric fits in a part of its own; a metric that does
// not is split by its data points (each piece keeping the metric's context)
// so that only data points too large even alone end up in oversize. A metric
// without data points (Empty type) is never split.
func splitMetricsBySize(md pmetric.Metrics, maxBytes int) (parts []pmetric.Metrics, oversize pmetric.Metrics, largest int) {
	return metricsLayout.split(md, maxBytes)
}

// halveTraces splits td into two new batches of ceil(n/2) and floor(n/2)
// spans, in order and with their resource and scope, so that the group can
// binary-search for the spans a member rejects. td is only read. Meant for
// n >= 2; with fewer spans the second half is empty.
func halveTraces(td ptrace.Traces) (first, second ptrace.Traces) {
	return tracesLayout.halve(td)
}

// halveLogs is halveTraces for log records.
func halveLogs(ld plog.Logs) (first, second plog.Logs) {
	return logsLayout.halve(ld)
}

// halveMetrics splits md into two new batches of ceil(n/2) and floor(n/2)
// data points (n = md.DataPointCount(), the collector's item count for
// metrics), in order and with their context, so that the group can
// binary-search for the data points a member rejects. The metric holding the
// cut is split between the halves by its data points; a metric without data
// points goes to the first half if fewer than ceil(n/2) data points precede
// it, else to the second. md is only read. Meant for n >= 2.
func halveMetrics(md pmetric.Metrics) (first, second pmetric.Metrics) {
	return metricsLayout.halve(md)
}

// mergeTraces moves the content of the parts, in order, into one new batch,
// so that leftovers of a split can be handed on as a single request. The
// parts are consumed (left empty); a read-only part cannot be emptied and is
// copied instead. A single part is returned as is. Resources are not
// coalesced: a resource split across parts appears once per part.
func mergeTraces(parts []ptrace.Traces) ptrace.Traces {
	return tracesLayout.merge(parts)
}

// mergeLogs is mergeTraces for logs.
func mergeLogs(parts []plog.Logs) plog.Logs {
	return logsLayout.merge(parts)
}

// mergeMetrics is mergeTraces for metrics.
func mergeMetrics(parts []pmetric.Metrics) pmetric.Metrics {
	return metricsLayout.merge(parts)
}

// ---------------------------------------------------------------- metrics: data points

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
func dataPointSizes(buf []int, m pmetric.Metric) []int {
	var sz pmetric.ProtoMarshaler
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

// planDataPoints is subItems.plan for metrics: the metric header (name, ...,
// metadata) is the metric's size minus its data message, whose own header
// metricDataHeader gives.
func planDataPoints(buf []int, m pmetric.Metric, mi, size int, path sizePath) ([]int, sizePath) {
	buf = dataPointSizes(buf, m)
	dataHdr := metricDataHeader(m)
	metricHdr := size - protoFieldCost(dataHdr+sumFieldCosts(buf))
	path.depth = 4
	path.keys[2], path.hdrs[2] = mi, metricHdr
	path.keys[3], path.hdrs[3] = 0, dataHdr
	return buf, path
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
