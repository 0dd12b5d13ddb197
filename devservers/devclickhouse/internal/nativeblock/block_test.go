// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package nativeblock

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/google/uuid"
)

const rev = 54460 // clickhouse-go v2.46's and ch-go's revision

// sampleColumns has a column of each layout the transcoder knows, filled
// with ch-go, whose encoder is independent of it.
func sampleColumns(t *testing.T) []proto.InputColumn {
	t.Helper()
	str := new(proto.ColStr)
	lc := new(proto.ColStr).LowCardinality()
	arr := new(proto.ColStr).Array()
	null := new(proto.ColStr).Nullable()
	mp := proto.NewMap[string, string](new(proto.ColStr).LowCardinality(), new(proto.ColStr))
	arrLC := new(proto.ColStr).LowCardinality().Array()
	arrMap := proto.NewArray[map[string]string](proto.NewMap[string, string](new(proto.ColStr).LowCardinality(), new(proto.ColStr)))
	nums := new(proto.ColUInt64)
	dt := new(proto.ColDateTime64).WithPrecision(proto.PrecisionNano)
	fixed := &proto.ColFixedStr{Size: 3}
	ids := new(proto.ColUUID)
	dec := new(proto.ColDecimal128)
	tup := proto.ColTuple{new(proto.ColUInt8), new(proto.ColStr)}
	nothing := new(proto.ColNothing)
	for i := range 5 {
		s := strings.Repeat("x", i)
		str.Append(s)
		lc.Append([]string{"a", "b"}[i%2])
		arr.Append([]string{s, "y"}[:i%3])
		if i%2 == 0 {
			null.Append(proto.Null[string]())
		} else {
			null.Append(proto.NewNullable(s))
		}
		m := map[string]string{}
		for j := range i {
			m[string(rune('k'+j))] = s
		}
		mp.Append(m)
		arrLC.Append([]string{"p", "q", "p"}[:i%4])
		arrMap.Append([]map[string]string{{"a": "b"}, {}}[:i%3])
		nums.Append(uint64(i) << 40)
		dt.AppendRaw(proto.DateTime64(int64(i) * 1e9))
		fixed.Append([]byte{'a', byte('0' + i), 'z'})
		ids.Append(uuid.New())
		dec.Append(proto.Decimal128{Low: uint64(i)})
		tup[0].(*proto.ColUInt8).Append(uint8(i))
		tup[1].(*proto.ColStr).Append(s)
		nothing.Append(proto.Nothing{})
	}
	return []proto.InputColumn{
		{Name: "str", Data: str}, {Name: "lc", Data: lc}, {Name: "arr", Data: arr}, {Name: "null", Data: null},
		{Name: "map", Data: mp}, {Name: "arr_lc", Data: arrLC}, {Name: "arr_map", Data: arrMap}, {Name: "nums", Data: nums},
		{Name: "dt", Data: dt}, {Name: "fixed", Data: fixed}, {Name: "id", Data: ids}, {Name: "dec", Data: dec},
		{Name: "tup", Data: tup}, {Name: "nothing", Data: nothing},
	}
}

func encode(t *testing.T, version int, cols []proto.InputColumn) []byte {
	t.Helper()
	var buf proto.Buffer
	b := proto.Block{Info: proto.BlockInfo{BucketNum: -1}, Columns: len(cols)}
	if len(cols) > 0 {
		b.Rows = cols[0].Data.Rows()
	}
	if err := b.EncodeBlock(&buf, version, cols); err != nil {
		t.Fatal(err)
	}
	return buf.Buf
}

// TestTranscodeBothWays checks that each layout, nested ones included,
// converts between revision 0 and the protocol's revision to exactly the
// bytes ch-go writes at the other revision.
func TestTranscodeBothWays(t *testing.T) {
	cols := sampleColumns(t)
	rev0, revN := encode(t, 0, cols), encode(t, rev, cols)
	got, h, err := Transcode(nil, bytes.NewReader(revN), rev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, rev0) {
		t.Errorf("%d → 0: %d bytes differ from ch-go's %d", rev, len(got), len(rev0))
	}
	if h.Rows != 5 || len(h.Columns) != len(cols) || h.Columns[4] != (Column{"map", "Map(LowCardinality(String), String)"}) || h.End() {
		t.Errorf("header %+v", h)
	}
	got, _, err = Transcode(nil, bytes.NewReader(rev0), 0, rev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, revN) {
		t.Errorf("0 → %d: %d bytes differ from ch-go's %d", rev, len(got), len(revN))
	}
	// Each column alone, so a failure names its type.
	for _, c := range cols {
		one := []proto.InputColumn{c}
		if got, _, err := Transcode(nil, bytes.NewReader(encode(t, rev, one)), rev, 0); err != nil || !bytes.Equal(got, encode(t, 0, one)) {
			t.Errorf("%s (%s): %v", c.Name, c.Data.Type(), err)
		}
	}
}

func TestTranscodeStream(t *testing.T) {
	cols := sampleColumns(t)
	in := append(encode(t, 0, cols), encode(t, 0, cols)...)
	var blocks int
	err := TranscodeAll(in, 0, rev, func(b []byte, h Header) error {
		blocks++
		if !bytes.Equal(b, encode(t, rev, cols)) {
			t.Errorf("block %d differs", blocks)
		}
		return nil
	})
	if err != nil || blocks != 2 {
		t.Errorf("%d blocks, %v", blocks, err)
	}
	if err := TranscodeAll(nil, 0, rev, func([]byte, Header) error { return errors.New("called") }); err != nil {
		t.Errorf("empty stream: %v", err)
	}
	if err := TranscodeAll(in[:len(in)-1], 0, rev, func([]byte, Header) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated stream: %v", err)
	}
}

func TestHeaderAndEnd(t *testing.T) {
	cols := []Column{{"a", "UInt8"}, {"b", "JSON"}} // no rows: any type
	b := AppendHeader(nil, rev, cols)
	got, h, err := Transcode(nil, bytes.NewReader(b), rev, rev)
	if err != nil || !bytes.Equal(got, b) || h.Rows != 0 || len(h.Columns) != 2 {
		t.Errorf("header: %v %+v", err, h)
	}
	// The block that ends a stream: block info, no columns, no rows.
	end := encode(t, rev, nil)
	if _, h, err := Transcode(nil, bytes.NewReader(end), rev, 0); err != nil || !h.End() {
		t.Errorf("end block: %v %+v", err, h)
	}
	if _, _, err := Transcode(nil, bytes.NewReader(nil), rev, 0); err != io.EOF {
		t.Errorf("no block: %v, want io.EOF", err)
	}
}

func TestTypes(t *testing.T) {
	for typ, want := range map[string]string{
		"DateTime('Europe/Berlin')":                       "fixed4",
		"DateTime64(9, 'UTC')":                            "fixed8",
		"Enum8('a, b' = 1, 'c)' = 2)":                     "fixed1",
		"Decimal(40, 2)":                                  "fixed32",
		"Decimal(9,2)":                                    "fixed4",
		"FixedString(7)":                                  "fixed7",
		"Tuple(a UInt8, `b c` String, \"d\" Array(Date))": "tuple",
		"Tuple(Date DateTime)":                            "tuple",
		"Nested(x UInt8, y String)":                       "array",
		"SimpleAggregateFunction(sum, UInt64)":            "fixed8",
		"LowCardinality(Nullable(String))":                "lowCardinality",
		"MultiPolygon":                                    "array",
		"IntervalSecond":                                  "fixed8",
	} {
		ct, err := parseType(typ, 0)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		var got string
		switch ct.kind {
		case fixed:
			got = "fixed" + string(rune('0'+ct.size%10))
			if ct.size >= 10 {
				got = "fixed" + map[int]string{16: "16", 32: "32"}[ct.size]
			}
		case tuple:
			got = "tuple"
		case array:
			got = "array"
		case lowCardinality:
			got = "lowCardinality"
		}
		if got != want {
			t.Errorf("%s: %s, want %s", typ, got, want)
		}
	}
	for _, typ := range []string{"JSON", "Dynamic", "Variant(UInt8, String)", "AggregateFunction(sum, UInt64)", "Object('json')", "IntervalName"} {
		var unsupported *UnsupportedError
		if _, err := parseType(typ, 0); !errors.As(err, &unsupported) {
			t.Errorf("%s: %v, want UnsupportedError", typ, err)
		}
	}
	for _, typ := range []string{"", "Array(", "Array(UInt8))", "Map(String)", "FixedString(0)", "FixedString(x)", "Decimal(99, 1)",
		"LowCardinality(Array(String))", strings.Repeat("Array(", 40) + "UInt8" + strings.Repeat(")", 40)} {
		if _, err := parseType(typ, 0); err == nil {
			t.Errorf("%q accepted", typ)
		}
	}
}

// TestHostileBlocks checks that what the engine must never see is refused,
// and that lengths which lie cost no memory beyond the data received.
func TestHostileBlocks(t *testing.T) {
	block := func(typ string, data ...byte) []byte {
		b := AppendHeader(nil, 0, []Column{{"c", typ}})
		b[1] = 2 // two rows
		return append(b, data...)
	}
	u64 := func(v uint64) []byte {
		var b proto.Buffer
		b.PutUInt64(v)
		return b.Buf
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, in := range map[string][]byte{
		"offsets go back":        block("Array(UInt8)", cat(u64(2), u64(1), []byte{1, 2})...),
		"huge offset":            block("Array(UInt8)", cat(u64(1), u64(1<<62))...),
		"index outside dict":     block("LowCardinality(String)", cat(u64(1), u64(1<<9), u64(1), []byte{1, 'a'}, u64(2), []byte{0, 1})...),
		"granule too long":       block("LowCardinality(String)", cat(u64(1), u64(1<<9), u64(1), []byte{1, 'a'}, u64(3), []byte{0, 0, 0})...),
		"global dictionary":      block("LowCardinality(String)", cat(u64(1), u64(1<<8|1<<9))...),
		"bad key version":        block("LowCardinality(String)", u64(2)...),
		"huge string":            block("String", 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'),
		"truncated":              block("UInt64", 1, 2, 3),
		"unsupported type":       block("JSON", 0),
		"huge column count":      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1},
		"huge name":              {1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad block info field":   {9, 0},
		"custom serialization":   append(AppendHeader(nil, rev, []Column{{"c", "UInt8"}})[:len(AppendHeader(nil, rev, []Column{{"c", "UInt8"}}))-1], 1),
		"varint overflow":        bytes.Repeat([]byte{0xff}, 11),
		"many rows, little data": {1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'c', 6, 'S', 't', 'r', 'i', 'n', 'g', 1, 'a'},
	} {
		from := 0
		if name == "bad block info field" || name == "custom serialization" {
			from = rev
		}
		if _, _, err := Transcode(nil, bytes.NewReader(in), from, rev); err == nil || err == io.EOF {
			t.Errorf("%s: %v", name, err)
		}
	}
}
