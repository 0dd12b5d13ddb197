// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package nativeblock

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// colType is what the transcoder needs to know of a column type: how its
// values are laid out in the Native format, not what they mean.
type colType struct {
	kind  kind
	size  int        // bytes per value, for fixed
	elems []*colType // array, nullable, lowCardinality: one; tuple: its elements
}

type kind int

const (
	fixed          kind = iota // size bytes per value
	str                        // UVarInt length, bytes
	array                      // UInt64 end offsets, then the elements
	nullable                   // UInt8 null map, then the values
	tuple                      // each element's column in turn
	lowCardinality             // state prefix; keys and indexes in granules (elems[0]: the keys' type)
)

// UnsupportedError reports a column type whose layout the transcoder does
// not know.
type UnsupportedError struct{ Type string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("column type %.200s is not supported by devclickhouse's Native transcoder", e.Type)
}

// fixedSizes are the types stored as a fixed number of bytes per value.
// Types with arguments (DateTime('UTC'), DateTime64(9), Enum8('a' = 1),
// Decimal32(2), Time64(3)) are listed by their name.
var fixedSizes = map[string]int{
	"UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1, "Nothing": 1,
	"UInt16": 2, "Int16": 2, "Date": 2, "BFloat16": 2, "Enum16": 2,
	"UInt32": 4, "Int32": 4, "Float32": 4, "Date32": 4, "DateTime": 4, "IPv4": 4, "Decimal32": 4, "Time": 4,
	"UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
	"UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16, "Point": 16,
	"UInt256": 32, "Int256": 32, "Decimal256": 32,
	"IntervalNanosecond": 8, "IntervalMicrosecond": 8, "IntervalMillisecond": 8, "IntervalSecond": 8,
	"IntervalMinute": 8, "IntervalHour": 8, "IntervalDay": 8, "IntervalWeek": 8, "IntervalMonth": 8,
	"IntervalQuarter": 8, "IntervalYear": 8,
}

// geoArrays are the geo types that are arrays of points, by depth.
var geoArrays = map[string]int{"Ring": 1, "LineString": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}

const (
	// maxTypeDepth bounds the nesting of a type, so that a hostile type
	// name cannot exhaust the stack.
	maxTypeDepth = 32
	// maxFixedString bounds FixedString(N), as ClickHouse does (16 MiB).
	maxFixedString = 1 << 24
)

// parseType reads a ClickHouse type name.
func parseType(s string, depth int) (*colType, error) {
	if depth > maxTypeDepth {
		return nil, fmt.Errorf("type %.100s is nested too deeply", s)
	}
	name, args, err := splitType(s)
	if err != nil {
		return nil, err
	}
	if size, ok := fixedSizes[name]; ok {
		return &colType{kind: fixed, size: size}, nil
	}
	if n, ok := geoArrays[name]; ok {
		t := &colType{kind: fixed, size: 16}
		for range n {
			t = &colType{kind: array, elems: []*colType{t}}
		}
		return t, nil
	}
	nargs := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("type %.200s: %d arguments, want %d", s, len(args), n)
		}
		return nil
	}
	sub := func(i int) (*colType, error) { return parseType(args[i], depth+1) }
	switch name {
	case "String":
		return &colType{kind: str}, nil
	case "FixedString":
		if err := nargs(1); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(args[0]))
		if err != nil || n <= 0 || n > maxFixedString {
			return nil, fmt.Errorf("type %.200s: bad size", s)
		}
		return &colType{kind: fixed, size: n}, nil
	case "Decimal":
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("type %.200s: want Decimal(P, S)", s)
		}
		p, err := strconv.Atoi(strings.TrimSpace(args[0]))
		switch {
		case err != nil || p < 1 || p > 76:
			return nil, fmt.Errorf("type %.200s: bad precision", s)
		case p <= 9:
			return &colType{kind: fixed, size: 4}, nil
		case p <= 18:
			return &colType{kind: fixed, size: 8}, nil
		case p <= 38:
			return &colType{kind: fixed, size: 16}, nil
		}
		return &colType{kind: fixed, size: 32}, nil
	case "Array", "Nullable":
		if err := nargs(1); err != nil {
			return nil, err
		}
		elem, err := sub(0)
		if err != nil {
			return nil, err
		}
		k := array
		if name == "Nullable" {
			k = nullable
		}
		return &colType{kind: k, elems: []*colType{elem}}, nil
	case "LowCardinality":
		if err := nargs(1); err != nil {
			return nil, err
		}
		inner, err := sub(0)
		if err != nil {
			return nil, err
		}
		// The dictionary of LowCardinality(Nullable(T)) holds plain T
		// values; null is its first key.
		if inner.kind == nullable {
			inner = inner.elems[0]
		}
		if inner.kind != fixed && inner.kind != str {
			return nil, fmt.Errorf("type %.200s: LowCardinality of a composite type", s)
		}
		return &colType{kind: lowCardinality, elems: []*colType{inner}}, nil
	case "Map":
		if err := nargs(2); err != nil {
			return nil, err
		}
		k, err := sub(0)
		if err != nil {
			return nil, err
		}
		v, err := sub(1)
		if err != nil {
			return nil, err
		}
		return &colType{kind: array, elems: []*colType{{kind: tuple, elems: []*colType{k, v}}}}, nil
	case "Tuple", "Nested":
		if len(args) == 0 {
			return nil, fmt.Errorf("type %.200s: no elements", s)
		}
		t := &colType{kind: tuple}
		for _, arg := range args {
			elem, err := parseElement(arg, depth+1)
			if err != nil {
				return nil, err
			}
			t.elems = append(t.elems, elem)
		}
		if name == "Nested" {
			return &colType{kind: array, elems: []*colType{t}}, nil
		}
		return t, nil
	case "SimpleAggregateFunction":
		// SimpleAggregateFunction(f, T) stores plain T values.
		if err := nargs(2); err != nil {
			return nil, err
		}
		return sub(1)
	}
	return nil, &UnsupportedError{Type: strings.TrimSpace(s)}
}

// parseElement reads a tuple element: a type, or a name and a type.
func parseElement(s string, depth int) (*colType, error) {
	t, err := parseType(s, depth)
	if err == nil {
		return t, nil
	}
	s = strings.TrimSpace(s)
	var rest string
	switch {
	case s != "" && (s[0] == '`' || s[0] == '"'):
		rest = s[skipQuoted(s, 0):]
	default:
		i := strings.IndexAny(s, " \t\r\n")
		if i < 0 {
			return nil, err
		}
		rest = s[i:]
	}
	if strings.TrimSpace(rest) == "" {
		return nil, err
	}
	return parseType(rest, depth)
}

// splitType splits "Name(a, b)" into its name and its top-level arguments.
func splitType(s string) (string, []string, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open < 0 {
		if s == "" {
			return "", nil, fmt.Errorf("empty type name")
		}
		return s, nil, nil
	}
	if !strings.HasSuffix(s, ")") {
		return "", nil, fmt.Errorf("type %.200s: unbalanced parentheses", s)
	}
	name, inner := strings.TrimSpace(s[:open]), s[open+1:len(s)-1]
	var args []string
	depth, start := 0, 0
	for i := 0; i < len(inner); i++ {
		switch c := inner[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(inner, i) - 1
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return "", nil, fmt.Errorf("type %.200s: unbalanced parentheses", s)
			}
		case ',':
			if depth == 0 {
				args = append(args, inner[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return "", nil, fmt.Errorf("type %.200s: unbalanced parentheses", s)
	}
	if strings.TrimSpace(inner) != "" {
		args = append(args, inner[start:])
	}
	return name, args, nil
}

// skipQuoted returns the index after the quoted literal or identifier that
// starts at i, or len(s) when it is not closed (chsession's SQL scanner).
func skipQuoted(s string, i int) int {
	end, _ := chsession.SkipQuoted(s, i)
	return end
}
