// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package nativeblock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// The data of a column is the same at every protocol revision; only what
// surrounds it differs. The walker copies a column's bytes as it reads them,
// knowing the layout of each type well enough to find where the column
// ends. ClickHouse writes a Native column as the state prefixes of all its
// nested parts first, then the data of its parts
// (ISerialization::serializeBinaryBulkStatePrefix and
// serializeBinaryBulkWithMultipleStreams, every stream into one buffer).
//
// It checks what the engine would otherwise trust: array offsets that never
// go back, LowCardinality indexes within their dictionary. The engine runs
// in this process, so a hostile block must not reach it.

const (
	// copyChunk is the most the walker reads ahead of the data it has
	// received: a length that lies costs at most this much memory before
	// the input runs out.
	copyChunk = 1 << 20
	// maxElements bounds the values of one nested column (2^36).
	maxElements = 1 << 36
)

// LowCardinality index serialization flags (SerializationLowCardinality).
const (
	lcIndexTypeMask      = 0xff
	lcNeedGlobalDict     = 1 << 8
	lcHasAdditionalKeys  = 1 << 9
	lcSharedDictsVersion = 1 // KeysSerializationVersion::SharedDictionariesWithAdditionalKeys
)

// walker copies column data from src to out.
type walker struct {
	src Source
	out []byte
}

// copyN copies n bytes.
func (w *walker) copyN(n uint64) error {
	for n > 0 {
		k := int(min(n, copyChunk))
		start := len(w.out)
		w.out = slices.Grow(w.out, k)[:start+k]
		if _, err := io.ReadFull(w.src, w.out[start:]); err != nil {
			w.out = w.out[:start]
			return unexpectedEOF(err)
		}
		n -= uint64(k)
	}
	return nil
}

// u64 copies a little-endian UInt64 and returns it.
func (w *walker) u64() (uint64, error) {
	if err := w.copyN(8); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(w.out[len(w.out)-8:]), nil
}

// uvarint copies a UVarInt and returns it.
func (w *walker) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(w.src)
	if err != nil {
		return 0, unexpectedEOF(err)
	}
	w.out = binary.AppendUvarint(w.out, v)
	return v, nil
}

// prefix copies the state prefixes of t and its nested parts.
func (w *walker) prefix(t *colType) error {
	switch t.kind {
	case array, nullable:
		return w.prefix(t.elems[0])
	case tuple:
		for _, e := range t.elems {
			if err := w.prefix(e); err != nil {
				return err
			}
		}
	case lowCardinality:
		v, err := w.u64()
		if err != nil {
			return err
		}
		if v != lcSharedDictsVersion {
			return fmt.Errorf("LowCardinality: unknown key serialization version %d", v)
		}
	}
	return nil
}

// data copies the values of n rows of t.
func (w *walker) data(t *colType, n uint64) error {
	if n == 0 {
		return nil
	}
	switch t.kind {
	case fixed:
		if n > math.MaxInt64/uint64(t.size) {
			return fmt.Errorf("%d values of %d bytes: too many", n, t.size)
		}
		return w.copyN(n * uint64(t.size))
	case str:
		for range n {
			l, err := w.uvarint()
			if err != nil {
				return err
			}
			if l > math.MaxInt32 {
				return fmt.Errorf("string of %d bytes: too long", l)
			}
			if err := w.copyN(l); err != nil {
				return err
			}
		}
		return nil
	case nullable:
		if err := w.copyN(n); err != nil {
			return err
		}
		return w.data(t.elems[0], n)
	case tuple:
		for _, e := range t.elems {
			if err := w.data(e, n); err != nil {
				return err
			}
		}
		return nil
	case array:
		total, err := w.offsets(n)
		if err != nil {
			return err
		}
		return w.data(t.elems[0], total)
	case lowCardinality:
		return w.lowCardinality(t.elems[0], n)
	}
	return fmt.Errorf("unknown column kind %d", t.kind)
}

// offsets copies n array end offsets, checks that they never go back, and
// returns the last: the number of elements.
func (w *walker) offsets(n uint64) (uint64, error) {
	if n > maxElements {
		return 0, fmt.Errorf("%d arrays: too many", n)
	}
	start := len(w.out)
	if err := w.copyN(n * 8); err != nil {
		return 0, err
	}
	var prev uint64
	for b := w.out[start:]; len(b) >= 8; b = b[8:] {
		off := binary.LittleEndian.Uint64(b)
		if off < prev {
			return 0, fmt.Errorf("array offsets go back (%d after %d)", off, prev)
		}
		prev = off
	}
	if prev > maxElements {
		return 0, fmt.Errorf("%d array elements: too many", prev)
	}
	return prev, nil
}

// lowCardinality copies n rows of a LowCardinality column: granules of
// flags, a dictionary of keys and indexes into it, until n rows are read.
// Only dictionaries sent with each granule ("additional keys") are taken:
// what ClickHouse, clickhouse-go and ch-go write.
func (w *walker) lowCardinality(keys *colType, n uint64) error {
	for n > 0 {
		flags, err := w.u64()
		if err != nil {
			return err
		}
		var width int
		switch flags & lcIndexTypeMask {
		case 0:
			width = 1
		case 1:
			width = 2
		case 2:
			width = 4
		case 3:
			width = 8
		default:
			return fmt.Errorf("LowCardinality: unknown index type %d", flags&lcIndexTypeMask)
		}
		if flags&lcNeedGlobalDict != 0 {
			return errors.New("LowCardinality: global dictionaries are not supported")
		}
		if flags&lcHasAdditionalKeys == 0 {
			return errors.New("LowCardinality: granule without keys")
		}
		numKeys, err := w.u64()
		if err != nil {
			return err
		}
		if numKeys > maxElements {
			return fmt.Errorf("LowCardinality: %d keys: too many", numKeys)
		}
		if err := w.data(keys, numKeys); err != nil {
			return err
		}
		rows, err := w.u64()
		if err != nil {
			return err
		}
		if rows > n {
			return fmt.Errorf("LowCardinality: granule of %d rows where %d are left", rows, n)
		}
		start := len(w.out)
		if err := w.copyN(rows * uint64(width)); err != nil {
			return err
		}
		for b := w.out[start:]; len(b) >= width; b = b[width:] {
			var idx uint64
			switch width {
			case 1:
				idx = uint64(b[0])
			case 2:
				idx = uint64(binary.LittleEndian.Uint16(b))
			case 4:
				idx = uint64(binary.LittleEndian.Uint32(b))
			default:
				idx = binary.LittleEndian.Uint64(b)
			}
			if idx >= numKeys {
				return fmt.Errorf("LowCardinality: index %d outside a dictionary of %d keys", idx, numKeys)
			}
		}
		n -= rows
	}
	return nil
}

// unexpectedEOF turns an end of input inside a block into
// io.ErrUnexpectedEOF: only an end between blocks is a clean end.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
