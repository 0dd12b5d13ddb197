// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The helpers of this file are prefixed with spl so that they cannot clash
// with the helpers of the other tests of the package.

// ---------------------------------------------------------------- shapes

// splShape describes a generated batch. Every item gets a unique id (span
// name, log body, data point attribute "split.id"); every resource and scope
// a unique id too, so that the context of each item can be checked.
type splShape struct {
	resources int
	scopes    func(r int) int
	items     func(r, s int) int // spans, log records or metrics per scope
	ctxPad    func(r, s int) int // attribute padding of resource (s < 0) and scope
	itemPad   func(id int) int   // attribute padding of item id (data point id for metrics)
	// metrics only
	metricType func(m int) pmetric.MetricType
	dataPoints func(m int) int
}

func splConst(n int) func(int) int       { return func(int) int { return n } }
func splConst2(n int) func(int, int) int { return func(int, int) int { return n } }
func splTypes(m int) pmetric.MetricType  { return pmetric.MetricType(1 + m%5) }
func splUniform(res, scopes, items, ctxPad, itemPad int) splShape {
	return splShape{
		resources:  res,
		scopes:     splConst(scopes),
		items:      splConst2(items),
		ctxPad:     splConst2(ctxPad),
		itemPad:    splConst(itemPad),
		metricType: splTypes,
		dataPoints: splConst(3),
	}
}

// withHuge makes the given item ids carry pad bytes of attributes.
func (s splShape) withHuge(pad int, ids ...int) splShape {
	base := s.itemPad
	s.itemPad = func(id int) int {
		if slices.Contains(ids, id) {
			return pad
		}
		return base(id)
	}
	return s
}

// splRandomShape draws a shape of varied sizes, with some empty containers
// and a few items large enough to be oversize for small budgets.
func splRandomShape(rng *rand.Rand) splShape {
	return splShape{
		resources: rng.IntN(5),
		scopes:    func(int) int { return rng.IntN(4) },
		items:     func(int, int) int { return rng.IntN(25) },
		ctxPad:    func(int, int) int { return rng.IntN(150) },
		itemPad: func(int) int {
			if rng.IntN(100) < 3 {
				return 1000 + rng.IntN(5000)
			}
			return rng.IntN(200)
		},
		metricType: func(int) pmetric.MetricType {
			if rng.IntN(20) == 0 {
				return pmetric.MetricTypeEmpty
			}
			return pmetric.MetricType(1 + rng.IntN(5))
		},
		dataPoints: func(int) int { return rng.IntN(12) },
	}
}

// splRandomMax draws a budget between 1 byte and a bit more than total:
// log-uniformly half of the time, so that tiny budgets (everything
// oversize) occur, and otherwise between total/15 and total, which makes
// many parts.
func splRandomMax(rng *rand.Rand, total int) int {
	if rng.IntN(2) == 0 {
		return int(math.Exp(rng.Float64() * math.Log(float64(total)*1.2+2)))
	}
	return total/15 + rng.IntN(total+1)
}

func splFillResource(res pcommon.Resource, r, pad int) {
	res.Attributes().PutStr("res.id", fmt.Sprintf("r%d", r))
	res.Attributes().PutStr("res.pad", strings.Repeat("r", pad))
	res.Attributes().PutInt("res.n", int64(r))
	res.SetDroppedAttributesCount(uint32(r % 3))
}

func splFillScope(sc pcommon.InstrumentationScope, r, s, pad int) {
	sc.SetName(fmt.Sprintf("scope-r%d-s%d", r, s))
	sc.SetVersion(fmt.Sprintf("v%d", s))
	sc.Attributes().PutStr("scope.pad", strings.Repeat("s", pad))
	sc.SetDroppedAttributesCount(uint32(s % 2))
}

// ---------------------------------------------------------------- items

// splItem is an item of a batch: its id and a fingerprint of its context
// (resource, scope and, for data points, metric).
type splItem struct{ id, ctx string }

func splResourceFP(res pcommon.Resource, schema string) string {
	return fmt.Sprintf("%v|%d|%s", res.Attributes().AsRaw(), res.DroppedAttributesCount(), schema)
}

func splScopeFP(sc pcommon.InstrumentationScope, schema string) string {
	return fmt.Sprintf("%s|%s|%v|%d|%s", sc.Name(), sc.Version(), sc.Attributes().AsRaw(), sc.DroppedAttributesCount(), schema)
}

func splMetricFP(m pmetric.Metric) string {
	fp := fmt.Sprintf("%s|%s|%s|%v|%s", m.Name(), m.Description(), m.Unit(), m.Metadata().AsRaw(), m.Type())
	switch m.Type() {
	case pmetric.MetricTypeSum:
		fp += fmt.Sprintf("|%s|%t", m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
	case pmetric.MetricTypeHistogram:
		fp += "|" + m.Histogram().AggregationTemporality().String()
	case pmetric.MetricTypeExponentialHistogram:
		fp += "|" + m.ExponentialHistogram().AggregationTemporality().String()
	}
	return fp
}

// ---------------------------------------------------------------- layouts

// The helpers below reach the resources, scopes and items of a batch
// through the layouts of split.go, so that one helper serves the three
// signals. They rely on nothing the tests check: the layouts' accessors are
// pinned down by their types (ptrace.ScopeSpans.Spans is the only
// func(ScopeSpans) SpanSlice there is), and a context copy that lost
// anything would show in the fingerprints of splItem. They are methods so
// that the layout's type parameters are spelled once.

// splGen generates a batch of shape s; fill makes item id of it.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splGen(s splShape, fill func(item I, id int)) B {
	b := l.newBatch()
	id := 0
	for r := 0; r < s.resources; r++ {
		rs := l.resources(b).AppendEmpty()
		rs.SetSchemaUrl(fmt.Sprintf("https://example.com/r%d", r))
		splFillResource(rs.Resource(), r, s.ctxPad(r, -1))
		for sc := s.scopes(r) - 1; sc >= 0; sc-- {
			ss := l.scopes(rs).AppendEmpty()
			ss.SetSchemaUrl(fmt.Sprintf("https://example.com/r%d/s%d", r, sc))
			splFillScope(ss.Scope(), r, sc, s.ctxPad(r, sc))
			items := l.items(ss)
			for i := s.items(r, sc); i > 0; i-- {
				fill(items.AppendEmpty(), id)
				id++
			}
		}
	}
	return b
}

// splEachScope calls f for every scope of b, with its resource and items.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splEachScope(b B, f func(r R, s S, items IL)) {
	rl := l.resources(b)
	for i := 0; i < rl.Len(); i++ {
		sl := l.scopes(rl.At(i))
		for j := 0; j < sl.Len(); j++ {
			f(rl.At(i), sl.At(j), l.items(sl.At(j)))
		}
	}
}

// splItems lists the items of b with the fingerprint of their context; add
// appends those of one item (a metric: its data points).
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splItems(b B, add func(out []splItem, item I, ctx string) []splItem) []splItem {
	var out []splItem
	l.splEachScope(b, func(r R, s S, items IL) {
		ctx := splResourceFP(r.Resource(), r.SchemaUrl()) + "#" + splScopeFP(s.Scope(), s.SchemaUrl())
		for i := 0; i < items.Len(); i++ {
			out = add(out, items.At(i), ctx)
		}
	})
	return out
}

// splWith returns a new batch holding the contexts of r and s and no item,
// and its item slice.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splWith(r R, s S) (B, IL) {
	b := l.newBatch()
	return b, l.items(l.appendScope(l.appendResource(b, r), s))
}

// splSingles returns one batch per unit of b, holding it with its context:
// what the unit costs when sent alone. An item holds units(item) units (a
// metric: its data points, or itself when it has none); only(c, j) cuts c,
// a copy of the item, to its unit j.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splSingles(b B, units func(I) int, only func(c I, j int)) []B {
	var out []B
	l.splEachScope(b, func(r R, s S, items IL) {
		for i := 0; i < items.Len(); i++ {
			for j := range units(items.At(i)) {
				one, dst := l.splWith(r, s)
				c := dst.AppendEmpty()
				items.At(i).CopyTo(c)
				only(c, j)
				out = append(out, one)
			}
		}
	})
	return out
}

// splExtend returns a copy of part with the first item of next added where
// the greedy fill would have put it: add appends it to dst, the items of
// the last scope of the copy.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splExtend(part, next B, add func(dst IL, first I)) B {
	cand := l.newBatch()
	appendCopies(l.resources(part), l.resources(cand), 0, l.resources(part).Len())
	nr := l.resources(next).At(0)
	ns := l.scopes(nr).At(0)
	rl := l.resources(cand)
	r := rl.At(rl.Len() - 1)
	if splResID(r.Resource()) != splResID(nr.Resource()) {
		r = l.appendResource(cand, nr)
	}
	sl := l.scopes(r)
	if sl.Len() == 0 || sl.At(sl.Len()-1).Scope().Name() != ns.Scope().Name() {
		l.appendScope(r, ns)
	}
	add(l.items(sl.At(sl.Len()-1)), l.items(ns).At(0))
	return cand
}

func splResID(res pcommon.Resource) string {
	v, _ := res.Attributes().Get("res.id")
	return v.AsString()
}

// splMutate writes into every resource, scope and item (with mutate) of b.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splMutate(b B, mutate func(I)) {
	rl := l.resources(b)
	for i := 0; i < rl.Len(); i++ {
		rl.At(i).Resource().Attributes().PutStr("mutated", "yes")
	}
	l.splEachScope(b, func(_ R, s S, items IL) {
		s.Scope().SetName("mutated")
		for i := 0; i < items.Len(); i++ {
			mutate(items.At(i))
		}
	})
}

// splCommon completes sig with what the layout tells of every signal.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splCommon(sig splSignal[B]) splSignal[B] {
	sig.count = l.count
	sig.isEmpty = func(b B) bool { return l.resources(b).Len() == 0 }
	sig.same = func(a, b B) bool { return any(a) == any(b) }
	return sig
}

// splFlat completes sig for a signal whose items are counted one each
// (traces, logs): id names an item, mutate writes into one.
func (l *signalLayout[B, RL, R, SL, S, IL, I]) splFlat(sig splSignal[B], id func(I) string, mutate func(I)) splSignal[B] {
	sig.items = func(b B) []splItem {
		return l.splItems(b, func(out []splItem, item I, ctx string) []splItem {
			return append(out, splItem{id(item), ctx})
		})
	}
	sig.singles = func(b B) []B {
		return l.splSingles(b, func(I) int { return 1 }, func(I, int) {})
	}
	// What each extra part may have to repeat: the largest context of a
	// scope, in a batch of its own.
	sig.header = func(b B) int {
		largest := 0
		l.splEachScope(b, func(r R, s S, _ IL) {
			one, _ := l.splWith(r, s)
			largest = max(largest, sig.size(one))
		})
		return largest
	}
	sig.extend = func(_ B, _ int, part, next B) B {
		return l.splExtend(part, next, func(dst IL, first I) { first.CopyTo(dst.AppendEmpty()) })
	}
	sig.mutateAll = func(b B) { l.splMutate(b, mutate) }
	return l.splCommon(sig)
}

// splMarshal and splUnmarshal adapt the pdata codecs, which cannot fail on
// the batches of these tests.
func splMarshal[T any](marshal func(T) ([]byte, error)) func(T) []byte {
	return func(b T) []byte {
		buf, err := marshal(b)
		if err != nil {
			panic(err)
		}
		return buf
	}
}

func splUnmarshal[T any](unmarshal func([]byte) (T, error)) func([]byte) T {
	return func(buf []byte) T {
		b, err := unmarshal(buf)
		if err != nil {
			panic(err)
		}
		return b
	}
}

// ---------------------------------------------------------------- traces and logs

func splGenTraces(s splShape) ptrace.Traces {
	return tracesLayout.splGen(s, func(sp ptrace.Span, id int) {
		sp.SetName(fmt.Sprintf("span-%d", id))
		sp.SetTraceID(pcommon.TraceID{byte(id), byte(id >> 8), 1})
		sp.SetSpanID(pcommon.SpanID{byte(id), byte(id >> 8), 2})
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + id))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_500_000 + id))
		sp.Attributes().PutStr("pad", strings.Repeat("x", s.itemPad(id)))
		sp.Attributes().PutInt("n", int64(id))
	})
}

func splGenLogs(s splShape) plog.Logs {
	return logsLayout.splGen(s, func(lr plog.LogRecord, id int) {
		lr.Body().SetStr(fmt.Sprintf("log-%d", id))
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + id))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Attributes().PutStr("pad", strings.Repeat("x", s.itemPad(id)))
	})
}

var splTraces = tracesLayout.splFlat(splSignal[ptrace.Traces]{
	gen:       splGenTraces,
	size:      (&ptrace.ProtoMarshaler{}).TracesSize,
	marshal:   splMarshal((&ptrace.ProtoMarshaler{}).MarshalTraces),
	unmarshal: splUnmarshal((&ptrace.ProtoUnmarshaler{}).UnmarshalTraces),
	split:     splitTracesBySize, halve: halveTraces, merge: mergeTraces,
	readOnly: ptrace.Traces.MarkReadOnly,
}, ptrace.Span.Name, func(sp ptrace.Span) {
	sp.SetName("mutated")
	sp.Attributes().PutStr("pad", "mutated")
})

var splLogs = logsLayout.splFlat(splSignal[plog.Logs]{
	gen:       splGenLogs,
	size:      (&plog.ProtoMarshaler{}).LogsSize,
	marshal:   splMarshal((&plog.ProtoMarshaler{}).MarshalLogs),
	unmarshal: splUnmarshal((&plog.ProtoUnmarshaler{}).UnmarshalLogs),
	split:     splitLogsBySize, halve: halveLogs, merge: mergeLogs,
	readOnly: plog.Logs.MarkReadOnly,
}, func(lr plog.LogRecord) string { return lr.Body().Str() }, func(lr plog.LogRecord) {
	lr.Body().SetStr("mutated")
	lr.Attributes().PutStr("pad", "mutated")
})

// ---------------------------------------------------------------- metrics

// splFillMetric makes m a metric of type typ with the given data point ids.
func splFillMetric(m pmetric.Metric, typ pmetric.MetricType, mIdx int, dpIDs []int, pad func(int) int) {
	m.SetName(fmt.Sprintf("metric-%d", mIdx))
	m.SetDescription(fmt.Sprintf("description of metric %d", mIdx))
	m.SetUnit("By")
	m.Metadata().PutStr("meta", fmt.Sprintf("m%d", mIdx))
	attrs := func(a pcommon.Map, id int) {
		a.PutStr("split.id", fmt.Sprintf("dp-%d", id))
		a.PutStr("pad", strings.Repeat("x", pad(id)))
	}
	temporality := pmetric.AggregationTemporality(1 + mIdx%2)
	ts := pcommon.Timestamp(1_700_000_000_000_000_000)
	switch typ {
	case pmetric.MetricTypeGauge:
		dps := m.SetEmptyGauge().DataPoints()
		for _, id := range dpIDs {
			dp := dps.AppendEmpty()
			dp.SetDoubleValue(float64(id) / 3)
			dp.SetTimestamp(ts)
			attrs(dp.Attributes(), id)
		}
	case pmetric.MetricTypeSum:
		sum := m.SetEmptySum()
		sum.SetAggregationTemporality(temporality)
		sum.SetIsMonotonic(mIdx%3 == 0)
		for _, id := range dpIDs {
			dp := sum.DataPoints().AppendEmpty()
			dp.SetIntValue(int64(id))
			dp.SetTimestamp(ts)
			attrs(dp.Attributes(), id)
		}
	case pmetric.MetricTypeHistogram:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(temporality)
		for _, id := range dpIDs {
			dp := h.DataPoints().AppendEmpty()
			dp.SetCount(6)
			dp.SetSum(float64(id))
			dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
			dp.ExplicitBounds().FromRaw([]float64{1, 10})
			attrs(dp.Attributes(), id)
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(temporality)
		for _, id := range dpIDs {
			dp := h.DataPoints().AppendEmpty()
			dp.SetScale(2)
			dp.SetCount(5)
			dp.SetZeroCount(1)
			dp.Positive().BucketCounts().FromRaw([]uint64{1, 3})
			attrs(dp.Attributes(), id)
		}
	case pmetric.MetricTypeSummary:
		dps := m.SetEmptySummary().DataPoints()
		for _, id := range dpIDs {
			dp := dps.AppendEmpty()
			dp.SetCount(3)
			dp.SetSum(float64(id))
			q := dp.QuantileValues().AppendEmpty()
			q.SetQuantile(0.5)
			q.SetValue(1)
			attrs(dp.Attributes(), id)
		}
	}
}

func splGenMetrics(s splShape) pmetric.Metrics {
	dpID := 0
	return metricsLayout.splGen(s, func(m pmetric.Metric, mIdx int) {
		typ := s.metricType(mIdx)
		var ids []int
		if typ != pmetric.MetricTypeEmpty {
			for n := s.dataPoints(mIdx); n > 0; n-- {
				ids = append(ids, dpID)
				dpID++
			}
		}
		splFillMetric(m, typ, mIdx, ids, s.itemPad)
	})
}

// splDataPointAttrs returns the attributes of every data point of m.
func splDataPointAttrs(m pmetric.Metric) []pcommon.Map {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return splAttrs(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		return splAttrs(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		return splAttrs(m.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		return splAttrs(m.ExponentialHistogram().DataPoints())
	case pmetric.MetricTypeSummary:
		return splAttrs(m.Summary().DataPoints())
	}
	return nil
}

// splAttrs returns the attributes of every data point of dps.
func splAttrs[E interface{ Attributes() pcommon.Map }, S pdataSlice[S, E]](dps S) []pcommon.Map {
	var out []pcommon.Map
	for i := 0; i < dps.Len(); i++ {
		out = append(out, dps.At(i).Attributes())
	}
	return out
}

// splKeepOnlyDataPoint removes every data point of m but the j-th.
func splKeepOnlyDataPoint(m pmetric.Metric, j int) {
	i := 0
	keep := func() bool { i++; return i-1 != j }
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return keep() })
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return keep() })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return keep() })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(pmetric.ExponentialHistogramDataPoint) bool { return keep() })
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(pmetric.SummaryDataPoint) bool { return keep() })
	}
}

// splMetricItems lists the data points of md; a metric without data points
// is one item of its own.
func splMetricItems(md pmetric.Metrics) []splItem {
	return metricsLayout.splItems(md, func(out []splItem, m pmetric.Metric, ctx string) []splItem {
		ctx += "#" + splMetricFP(m)
		attrs := splDataPointAttrs(m)
		if len(attrs) == 0 {
			return append(out, splItem{"nodp:" + m.Name(), ctx})
		}
		for _, a := range attrs {
			v, _ := a.Get("split.id")
			out = append(out, splItem{v.Str(), ctx})
		}
		return out
	})
}

// splMetricSingles returns one batch per data point (or metric without data
// points) of md.
func splMetricSingles(md pmetric.Metrics) []pmetric.Metrics {
	units := func(m pmetric.Metric) int { return max(len(splDataPointAttrs(m)), 1) }
	return metricsLayout.splSingles(md, units, splKeepOnlyDataPoint)
}

// splLargestMetricHeader returns the size of the largest batch holding one
// metric of md without data points, with its context: what each extra part
// may have to repeat.
func splLargestMetricHeader(md pmetric.Metrics) int {
	largest := 0
	metricsLayout.splEachScope(md, func(rm pmetric.ResourceMetrics, sm pmetric.ScopeMetrics, metrics pmetric.MetricSlice) {
		for _, m := range metrics.All() {
			one, dst := metricsLayout.splWith(rm, sm)
			c := dst.AppendEmpty()
			m.CopyTo(c)
			splKeepOnlyDataPoint(c, -1)
			largest = max(largest, (&pmetric.ProtoMarshaler{}).MetricsSize(one))
		}
	})
	return largest
}

// splWholeMetricSize returns the size of a batch holding only the metric
// named name of md, whole, with its context.
func splWholeMetricSize(md pmetric.Metrics, name string) int {
	size := -1
	metricsLayout.splEachScope(md, func(rm pmetric.ResourceMetrics, sm pmetric.ScopeMetrics, metrics pmetric.MetricSlice) {
		for _, m := range metrics.All() {
			if m.Name() == name && size < 0 {
				one, dst := metricsLayout.splWith(rm, sm)
				m.CopyTo(dst.AppendEmpty())
				size = (&pmetric.ProtoMarshaler{}).MetricsSize(one)
			}
		}
	})
	if size < 0 {
		panic("no metric " + name)
	}
	return size
}

// splMetricPacksByDataPoints tells whether the splitter must pack metric m
// of in by its data points: it does not fit alone in maxBytes.
func splMetricPacksByDataPoints(in pmetric.Metrics, m pmetric.Metric, maxBytes int) bool {
	return len(splDataPointAttrs(m)) > 0 && splWholeMetricSize(in, m.Name()) > maxBytes
}

// splExtendMetrics adds the first greedy unit of next (its first metric, or
// the first data point of it if the metric is packed by data points) to a
// copy of part.
func splExtendMetrics(in pmetric.Metrics, maxBytes int, part, next pmetric.Metrics) pmetric.Metrics {
	return metricsLayout.splExtend(part, next, func(ms pmetric.MetricSlice, first pmetric.Metric) {
		if !splMetricPacksByDataPoints(in, first, maxBytes) {
			first.CopyTo(ms.AppendEmpty())
			return
		}
		// Its first data point joins the piece of the metric ending part, if
		// there is one.
		if ms.Len() > 0 && ms.At(ms.Len()-1).Name() == first.Name() {
			appendDataPoints(ms.At(ms.Len()-1), first, 0, 1)
			return
		}
		c := ms.AppendEmpty()
		first.CopyTo(c)
		splKeepOnlyDataPoint(c, 0)
	})
}

func splMutateMetric(m pmetric.Metric) {
	m.SetName("mutated")
	m.Metadata().PutStr("meta", "mutated")
	for _, a := range splDataPointAttrs(m) {
		a.PutStr("split.id", "mutated")
	}
}

var splMetrics = metricsLayout.splCommon(splSignal[pmetric.Metrics]{
	gen:       splGenMetrics,
	size:      (&pmetric.ProtoMarshaler{}).MetricsSize,
	marshal:   splMarshal((&pmetric.ProtoMarshaler{}).MarshalMetrics),
	unmarshal: splUnmarshal((&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics),
	split:     splitMetricsBySize, halve: halveMetrics, merge: mergeMetrics,
	readOnly: pmetric.Metrics.MarkReadOnly,
	items:    splMetricItems,
	singles:  splMetricSingles,
	header:   splLargestMetricHeader,
	extend:   splExtendMetrics,
	mutateAll: func(md pmetric.Metrics) {
		metricsLayout.splMutate(md, splMutateMetric)
	},
})

// ---------------------------------------------------------------- generic checks

// splSignal gathers what the checks need to know about one signal.
type splSignal[T any] struct {
	gen       func(splShape) T
	size      func(T) int
	marshal   func(T) []byte
	unmarshal func([]byte) T
	items     func(T) []splItem
	count     func(T) int // items as the collector counts them
	singles   func(T) []T
	header    func(T) int
	extend    func(in T, maxBytes int, part, next T) T
	split     func(T, int) ([]T, T, int)
	halve     func(T) (T, T)
	merge     func([]T) T
	readOnly  func(T)
	isEmpty   func(T) bool // no resource left
	mutateAll func(T)      // writes into every resource and item
	same      func(a, b T) bool
}

func splConcat[T any](sig splSignal[T], batches []T) []splItem {
	var out []splItem
	for _, b := range batches {
		out = append(out, sig.items(b)...)
	}
	return out
}

// splOutcome is what one split returned.
type splOutcome[T any] struct {
	parts    []T
	oversize T
	largest  int
}

// splRun splits in after marking it read-only if asked, and checks that the
// input did not change.
func splRun[T any](t *testing.T, sig splSignal[T], in T, maxBytes int, readOnly bool) splOutcome[T] {
	t.Helper()
	before := sig.marshal(in)
	if readOnly {
		sig.readOnly(in)
	}
	parts, oversize, largest := sig.split(in, maxBytes)
	require.Equal(t, before, sig.marshal(in), "input changed")
	return splOutcome[T]{parts, oversize, largest}
}

// splCheckSplit checks every documented property of a split of in.
func splCheckSplit[T any](t *testing.T, sig splSignal[T], in T, maxBytes int, out splOutcome[T]) {
	t.Helper()
	inItems := sig.items(in)
	if sig.size(in) <= maxBytes {
		require.Len(t, out.parts, 1)
		assert.True(t, sig.same(out.parts[0], in), "a batch that fits must be returned as is")
		assert.Empty(t, sig.items(out.oversize))
		assert.True(t, sig.isEmpty(out.oversize))
		assert.Zero(t, out.largest)
		return
	}

	// Parts are within the budget and hold items.
	for i, p := range out.parts {
		assert.LessOrEqual(t, sig.size(p), maxBytes, "part %d", i)
		assert.NotEmpty(t, sig.items(p), "part %d holds no item", i)
		assert.False(t, sig.same(p, in), "part %d is the input", i)
	}

	// Every item is in exactly one part or in oversize, in order, with its
	// context.
	partItems := splConcat(sig, out.parts)
	overItems := sig.items(out.oversize)
	a, b := 0, 0
	for _, it := range inItems {
		switch {
		case a < len(partItems) && partItems[a].id == it.id:
			assert.Equal(t, it.ctx, partItems[a].ctx, "context of %s", it.id)
			a++
		case b < len(overItems) && overItems[b].id == it.id:
			assert.Equal(t, it.ctx, overItems[b].ctx, "context of %s", it.id)
			b++
		default:
			require.Failf(t, "item lost or out of order", "%s", it.id)
		}
	}
	assert.Len(t, partItems, a, "parts hold items not in the input")
	assert.Len(t, overItems, b, "oversize holds items not in the input")

	// Oversize items do not fit even alone; largest is the largest of them.
	largest := 0
	for _, one := range sig.singles(out.oversize) {
		size := sig.size(one)
		assert.Greater(t, size, maxBytes, "oversize item fits alone")
		largest = max(largest, size)
	}
	assert.Equal(t, largest, out.largest, "largest")

	// Greedy: the first unit of each part did not fit in the part before.
	for i := 0; i+1 < len(out.parts); i++ {
		cand := sig.extend(in, maxBytes, out.parts[i], out.parts[i+1])
		assert.Greater(t, sig.size(cand), maxBytes, "parts %d and %d: the next item would have fit", i, i+1)
	}

	// Few parts when the headers each part repeats are small.
	if len(overItems) == 0 && 20*sig.header(in) <= maxBytes {
		total := sig.size(in)
		assert.LessOrEqual(t, len(out.parts), (total+maxBytes-1)/maxBytes*2+1, "too many parts")
	}
}

// splCheckNoAlias writes into everything a split returned and checks that
// the input did not change.
func splCheckNoAlias[T any](t *testing.T, sig splSignal[T], in T, out splOutcome[T]) {
	t.Helper()
	if len(out.parts) == 1 && sig.same(out.parts[0], in) {
		return
	}
	before := sig.marshal(in)
	for _, p := range out.parts {
		sig.mutateAll(p)
	}
	sig.mutateAll(out.oversize)
	assert.Equal(t, before, sig.marshal(in), "writing to the parts changed the input")
}

// splSplitAndCheck splits two copies of a batch, one read-only, checks both
// and returns the outcome of the other, untouched.
func splSplitAndCheck[T any](t *testing.T, sig splSignal[T], gen func() T, maxBytes int) splOutcome[T] {
	t.Helper()
	ro := gen()
	roOut := splRun(t, sig, ro, maxBytes, true)
	splCheckSplit(t, sig, ro, maxBytes, roOut)
	splCheckNoAlias(t, sig, ro, roOut)
	in := gen()
	out := splRun(t, sig, in, maxBytes, false)
	splCheckSplit(t, sig, in, maxBytes, out)
	return out
}

// ---------------------------------------------------------------- table tests

// splCase is a table case: the input is generated from shape (afresh for
// each split, so that no run sees another's input) and split within
// maxBytes(encoded size of the input).
type splCase struct {
	name     string
	shape    splShape
	maxBytes func(total int) int
	// expectations beyond the generic checks
	same         bool
	minParts     int
	oversizeIDs  []string
	allOversize  bool
	exactBoundOK bool // check parts <= ceil(total/max)*2+1
}

func splBudget(n int) func(int) int   { return func(int) int { return n } }
func splFraction(d int) func(int) int { return func(total int) int { return total / d } }

func splTableCases(itemPrefix string) []splCase {
	return []splCase{
		{name: "fits whole", shape: splUniform(3, 2, 10, 20, 20), maxBytes: func(total int) int { return total }, same: true},
		{name: "fits whole with room", shape: splUniform(1, 1, 1, 0, 0), maxBytes: splBudget(1 << 20), same: true},
		{name: "empty batch", shape: splUniform(0, 0, 0, 0, 0), maxBytes: splBudget(100), same: true},
		{name: "empty batch zero budget", shape: splUniform(0, 0, 0, 0, 0), maxBytes: splBudget(0), same: true},
		{name: "empty containers only", shape: splUniform(3, 2, 0, 50, 0), maxBytes: splBudget(100)},
		{name: "many resources", shape: splUniform(40, 1, 5, 30, 40), maxBytes: splFraction(7), minParts: 7, exactBoundOK: true},
		{name: "one huge resource with many scopes", shape: splUniform(1, 60, 4, 30, 40), maxBytes: splFraction(5), minParts: 5, exactBoundOK: true},
		{name: "one scope with many items", shape: splUniform(1, 1, 1000, 10, 30), maxBytes: splBudget(10_000), minParts: 2, exactBoundOK: true},
		{
			name:  "one oversize item among normal ones",
			shape: splUniform(2, 2, 10, 10, 20).withHuge(20_000, 17), maxBytes: splBudget(5_000),
			minParts: 1, oversizeIDs: []string{itemPrefix + "17"},
		},
		{
			name:  "several oversize items",
			shape: splUniform(3, 2, 10, 10, 20).withHuge(9_000, 0, 5, 6, 59), maxBytes: splBudget(4_000),
			minParts: 1, oversizeIDs: []string{itemPrefix + "0", itemPrefix + "5", itemPrefix + "6", itemPrefix + "59"},
		},
		{name: "tiny budget", shape: splUniform(2, 2, 5, 10, 10), maxBytes: splBudget(10), allOversize: true},
		{name: "budget below headers", shape: splUniform(2, 2, 5, 400, 0), maxBytes: splBudget(300), allOversize: true},
	}
}

func splRunTable[T any](t *testing.T, sig splSignal[T], itemPrefix string) {
	cases := splTableCases(itemPrefix)
	for i := range cases {
		tc := &cases[i]
		t.Run(tc.name, func(t *testing.T) {
			total := sig.size(sig.gen(tc.shape))
			maxBytes := tc.maxBytes(total)
			out := splSplitAndCheck(t, sig, func() T { return sig.gen(tc.shape) }, maxBytes)
			if tc.same {
				require.Len(t, out.parts, 1)
				return
			}
			assert.GreaterOrEqual(t, len(out.parts), tc.minParts)
			overIDs := []string{}
			for _, it := range sig.items(out.oversize) {
				overIDs = append(overIDs, it.id)
			}
			switch {
			case tc.allOversize:
				assert.Empty(t, out.parts)
				assert.Len(t, overIDs, sig.count(sig.gen(tc.shape)))
				assert.Positive(t, out.largest)
			case tc.oversizeIDs != nil:
				assert.Equal(t, tc.oversizeIDs, overIDs)
				assert.Greater(t, out.largest, maxBytes)
			default:
				assert.Empty(t, overIDs)
				assert.Zero(t, out.largest)
			}
			if tc.exactBoundOK {
				assert.LessOrEqual(t, len(out.parts), (total+maxBytes-1)/maxBytes*2+1)
			}
		})
	}
}

func TestSplitTracesBySize(t *testing.T) {
	splRunTable(t, splTraces, "span-")
}

func TestSplitLogsBySize(t *testing.T) {
	splRunTable(t, splLogs, "log-")
}

func TestSplitMetricsBySize(t *testing.T) {
	// The table's "items" are data points here: 3 per metric.
	splRunTable(t, splMetrics, "dp-")
}

// splOneMetric returns a batch holding a single metric of type typ with n
// data points.
func splOneMetric(typ pmetric.MetricType, n, pad int) pmetric.Metrics {
	s := splUniform(1, 1, 1, 10, pad)
	s.metricType = func(int) pmetric.MetricType { return typ }
	s.dataPoints = splConst(n)
	return splGenMetrics(s)
}

func TestSplitMetricsBySizeSplitsLargeMetric(t *testing.T) {
	types := []pmetric.MetricType{
		pmetric.MetricTypeGauge, pmetric.MetricTypeSum, pmetric.MetricTypeHistogram,
		pmetric.MetricTypeExponentialHistogram, pmetric.MetricTypeSummary,
	}
	for _, typ := range types {
		t.Run(typ.String(), func(t *testing.T) {
			gen := func() pmetric.Metrics { return splOneMetric(typ, 500, 50) }
			in := gen()
			out := splSplitAndCheck(t, splMetrics, gen, 5_000)
			require.Greater(t, len(out.parts), 1)
			assert.Equal(t, 0, out.oversize.ResourceMetrics().Len())
			want := splMetricFP(in.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0))
			points := 0
			for _, p := range out.parts {
				// One metric per part, carrying the whole metric context.
				require.Equal(t, 1, p.MetricCount())
				m := p.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
				assert.Equal(t, want, splMetricFP(m))
				points += p.DataPointCount()
			}
			assert.Equal(t, 500, points)
		})
	}

	t.Run("oversize data point inside a large metric", func(t *testing.T) {
		gen := func() pmetric.Metrics {
			s := splUniform(1, 1, 1, 10, 50).withHuge(10_000, 40)
			s.metricType = func(int) pmetric.MetricType { return pmetric.MetricTypeSum }
			s.dataPoints = splConst(100)
			return splGenMetrics(s)
		}
		out := splSplitAndCheck(t, splMetrics, gen, 3_000)
		items := splMetricItems(out.oversize)
		require.Len(t, items, 1)
		assert.Equal(t, "dp-40", items[0].id)
		assert.Greater(t, out.largest, 10_000)
		assert.Equal(t, 99, splConcatCount(out.parts))
	})

	t.Run("whole metrics are not split when they fit alone", func(t *testing.T) {
		gen := func() pmetric.Metrics { return splGenMetrics(splUniform(1, 1, 50, 10, 100)) }
		out := splSplitAndCheck(t, splMetrics, gen, 2_000)
		seen := map[string]int{}
		for _, p := range out.parts {
			for _, rm := range p.ResourceMetrics().All() {
				for _, sm := range rm.ScopeMetrics().All() {
					for _, m := range sm.Metrics().All() {
						seen[m.Name()]++
						assert.Len(t, splDataPointAttrs(m), 3, m.Name())
					}
				}
			}
		}
		for name, n := range seen {
			assert.Equal(t, 1, n, name)
		}
		assert.Len(t, seen, 50)
	})

	t.Run("empty metric is kept whole", func(t *testing.T) {
		gen := func() pmetric.Metrics {
			s := splUniform(1, 1, 30, 10, 100)
			s.metricType = func(m int) pmetric.MetricType {
				if m%3 == 0 {
					return pmetric.MetricTypeEmpty
				}
				return pmetric.MetricTypeGauge
			}
			return splGenMetrics(s)
		}
		out := splSplitAndCheck(t, splMetrics, gen, 1_000)
		assert.Greater(t, len(out.parts), 1)
		empties := 0
		for _, p := range out.parts {
			for _, rm := range p.ResourceMetrics().All() {
				for _, sm := range rm.ScopeMetrics().All() {
					for _, m := range sm.Metrics().All() {
						if m.Type() == pmetric.MetricTypeEmpty {
							empties++
						}
					}
				}
			}
		}
		assert.Equal(t, 10, empties)

		// With a budget below its context, it is oversize as a whole.
		out = splSplitAndCheck(t, splMetrics, gen, 50)
		assert.Empty(t, out.parts)
		assert.Equal(t, 30, out.oversize.MetricCount())
		assert.Equal(t, 60, out.oversize.DataPointCount())
	})
}

func splConcatCount(parts []pmetric.Metrics) int {
	n := 0
	for _, p := range parts {
		n += p.DataPointCount()
	}
	return n
}

// ---------------------------------------------------------------- random invariants

func splRandomInvariants[T any](t *testing.T, sig splSignal[T], seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	const cases = 300
	boundChecked := 0
	for i := range cases {
		in := sig.gen(splRandomShape(rng))
		maxBytes := splRandomMax(rng, sig.size(in))
		encoded := sig.marshal(in)
		copyOf := func() T { return sig.unmarshal(encoded) }
		t.Run(fmt.Sprintf("case%03d_max%d", i, maxBytes), func(t *testing.T) {
			out := splSplitAndCheck(t, sig, copyOf, maxBytes)
			if len(sig.items(out.oversize)) == 0 && 20*sig.header(in) <= maxBytes {
				boundChecked++
			}

			// merge(split(x)) holds the items of the parts, in order.
			if sig.size(in) > maxBytes {
				want := splConcat(sig, out.parts)
				merged := sig.merge(out.parts)
				assert.Equal(t, want, sig.items(merged))
				if len(out.parts) > 1 {
					for j, p := range out.parts {
						assert.True(t, sig.isEmpty(p), "part %d not consumed", j)
					}
				}
				if len(sig.items(out.oversize)) == 0 {
					assert.Equal(t, want, sig.items(in))
				}
			}

			// Halving.
			if n := sig.count(in); n >= 2 {
				splCheckHalve(t, sig, copyOf(), true)
				splCheckHalve(t, sig, copyOf(), false)
			}
		})
	}
	t.Logf("part count bound checked in %d of %d cases", boundChecked, cases)
	assert.Greater(t, boundChecked, cases/10)
}

func TestSplitTracesBySizeRandom(t *testing.T) {
	splRandomInvariants(t, splTraces, 1)
}

func TestSplitLogsBySizeRandom(t *testing.T) {
	splRandomInvariants(t, splLogs, 2)
}

func TestSplitMetricsBySizeRandom(t *testing.T) {
	splRandomInvariants(t, splMetrics, 3)
}

// ---------------------------------------------------------------- halve

func splCheckHalve[T any](t *testing.T, sig splSignal[T], in T, readOnly bool) {
	t.Helper()
	before := sig.marshal(in)
	if readOnly {
		sig.readOnly(in)
	}
	n := sig.count(in)
	first, second := sig.halve(in)
	require.Equal(t, before, sig.marshal(in), "input changed")
	assert.Equal(t, (n+1)/2, sig.count(first))
	assert.Equal(t, n/2, sig.count(second))
	assert.Equal(t, sig.items(in), append(sig.items(first), sig.items(second)...))
	assert.False(t, sig.same(first, in))
	assert.False(t, sig.same(second, in))
	sig.mutateAll(first)
	sig.mutateAll(second)
	assert.Equal(t, before, sig.marshal(in), "writing to the halves changed the input")
}

// splCheckHalves halves batches of a few shapes, mutable and read-only.
func splCheckHalves[T any](t *testing.T, sig splSignal[T]) {
	shapes := map[string]splShape{
		"two items":            splUniform(1, 1, 2, 5, 5),
		"odd count":            splUniform(1, 1, 7, 5, 5),
		"cut between scopes":   splUniform(1, 2, 3, 5, 5),
		"cut inside a scope":   splUniform(3, 3, 3, 5, 5),
		"many resources":       splUniform(9, 1, 1, 5, 5),
		"with empty resources": {resources: 4, scopes: func(r int) int { return r % 2 }, items: splConst2(3), ctxPad: splConst2(1), itemPad: splConst(1), metricType: splTypes, dataPoints: splConst(3)},
	}
	for name, s := range shapes {
		t.Run(name, func(t *testing.T) {
			splCheckHalve(t, sig, sig.gen(s), false)
			splCheckHalve(t, sig, sig.gen(s), true)
		})
	}
}

func TestHalve(t *testing.T) {
	t.Run("traces", func(t *testing.T) { splCheckHalves(t, splTraces) })
	t.Run("logs", func(t *testing.T) { splCheckHalves(t, splLogs) })
	t.Run("metrics", func(t *testing.T) { splCheckHalves(t, splMetrics) })
}

func TestHalveMetricsSplitsAMetric(t *testing.T) {
	for _, typ := range []pmetric.MetricType{
		pmetric.MetricTypeGauge, pmetric.MetricTypeSum, pmetric.MetricTypeHistogram,
		pmetric.MetricTypeExponentialHistogram, pmetric.MetricTypeSummary,
	} {
		t.Run(typ.String(), func(t *testing.T) {
			in := splOneMetric(typ, 5, 5)
			first, second := halveMetrics(in)
			assert.Equal(t, 3, first.DataPointCount())
			assert.Equal(t, 2, second.DataPointCount())
			want := splMetricFP(in.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0))
			for _, half := range []pmetric.Metrics{first, second} {
				require.Equal(t, 1, half.MetricCount())
				assert.Equal(t, want, splMetricFP(half.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)))
			}
		})
	}

	t.Run("metrics without data points stay whole in their half", func(t *testing.T) {
		s := splUniform(1, 1, 4, 5, 5)
		s.metricType = func(m int) pmetric.MetricType {
			if m%2 == 1 {
				return pmetric.MetricTypeEmpty
			}
			return pmetric.MetricTypeGauge
		}
		s.dataPoints = splConst(2)
		in := splGenMetrics(s) // gauge(2) empty gauge(2) empty
		first, second := halveMetrics(in)
		assert.Equal(t, 2, first.DataPointCount())
		assert.Equal(t, 2, second.DataPointCount())
		assert.Equal(t, 1, first.MetricCount())
		assert.Equal(t, 3, second.MetricCount())
	})
}

// ---------------------------------------------------------------- merge

// splCheckMerge checks merge: on the parts of a split, on a single part, on
// no part and on parts some of which are read-only.
func splCheckMerge[T any](t *testing.T, sig splSignal[T]) {
	s := splUniform(4, 3, 20, 30, 50)
	t.Run("round trip", func(t *testing.T) {
		in := sig.gen(s)
		want := sig.items(in)
		parts, oversize, _ := sig.split(in, 3_000)
		require.Empty(t, sig.items(oversize))
		require.Greater(t, len(parts), 2)
		merged := sig.merge(parts)
		assert.Equal(t, want, sig.items(merged))
		assert.Equal(t, sig.count(in), sig.count(merged))
		for i, p := range parts {
			assert.True(t, sig.isEmpty(p), "part %d not consumed", i)
		}
	})

	t.Run("single part is returned as is", func(t *testing.T) {
		in := sig.gen(s)
		assert.True(t, sig.same(sig.merge([]T{in}), in))
	})

	t.Run("no parts", func(t *testing.T) {
		assert.Zero(t, sig.count(sig.merge(nil)))
	})

	t.Run("read-only parts are copied", func(t *testing.T) {
		a, b := sig.gen(splUniform(1, 1, 2, 1, 1)), sig.gen(splUniform(2, 1, 1, 1, 1))
		want := append(sig.items(a), sig.items(b)...)
		sig.readOnly(b)
		before := sig.marshal(b)
		merged := sig.merge([]T{a, b})
		assert.Equal(t, want, sig.items(merged))
		assert.True(t, sig.isEmpty(a))
		assert.Equal(t, before, sig.marshal(b))
	})
}

func TestMerge(t *testing.T) {
	t.Run("traces", func(t *testing.T) { splCheckMerge(t, splTraces) })
	t.Run("logs", func(t *testing.T) { splCheckMerge(t, splLogs) })
	t.Run("metrics", func(t *testing.T) { splCheckMerge(t, splMetrics) })
}

// ---------------------------------------------------------------- sizes

func TestProtoFieldCost(t *testing.T) {
	for _, tc := range []struct{ size, want int }{
		{0, 2}, {1, 3}, {127, 129}, {128, 131}, {16383, 16386}, {16384, 16388},
	} {
		assert.Equal(t, tc.want, protoFieldCost(tc.size), "size %d", tc.size)
	}
	assert.Equal(t, 10, protoVarintLen(math.MaxUint64))
}

// ---------------------------------------------------------------- benchmark

// BenchmarkSplitTracesBySize splits a ~3.3 MB batch (20 resources of 500
// spans with attributes) into parts of at most 1,000,000 bytes.
func BenchmarkSplitTracesBySize(b *testing.B) {
	td := splGenTraces(splUniform(20, 1, 500, 200, 240))
	td.MarkReadOnly()
	size := (&ptrace.ProtoMarshaler{}).TracesSize(td)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	parts := 0
	for b.Loop() {
		p, _, _ := splitTracesBySize(td, 1_000_000)
		parts = len(p)
	}
	b.ReportMetric(float64(size), "input-bytes")
	b.ReportMetric(float64(parts), "parts")
}
