// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package nativeblock re-encodes blocks of ClickHouse's Native format from
// one protocol revision to another. The revisions differ around the column
// data, never in it: revision 0 (the Native format of files and of the
// engine's output) has no block info and no per-column serialization flag;
// the native protocol has both. So a block is re-encoded by copying each
// column's bytes, with just enough knowledge of its type to find where it
// ends; any type whose layout is known works, whatever its values, which
// decoding them with a typed column library would restrict.
package nativeblock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ClickHouse/ch-go/proto"
)

// Source is what blocks are read from: a connection's proto.Reader (which
// decompresses when the protocol says so) or a bytes.Reader.
type Source interface {
	io.Reader
	io.ByteReader
}

// Column names and types one column of a block.
type Column struct {
	Name, Type string
}

// Header describes a block read by Transcode.
type Header struct {
	Info    proto.BlockInfo
	Rows    int
	Columns []Column
}

// End reports whether the block is the empty one that ends a stream of
// blocks: no columns (ClickHouse tests a block for columns, not rows).
func (h Header) End() bool { return len(h.Columns) == 0 }

// Limits on what a block may declare; the data behind them is read as it
// arrives, so they only bound the work a hostile header can ask for.
const (
	maxColumns = 1 << 20
	maxRows    = 1 << 32
	maxName    = 1 << 20 // bytes of a column name or type
)

// Transcode reads one block encoded at revision from and appends it to dst
// encoded at revision to. It returns io.EOF, and dst unchanged, when src
// ends before the block begins. Any other error leaves src inside the
// block: a stream cannot be read further.
func Transcode(dst []byte, src Source, from, to int) ([]byte, Header, error) {
	h := Header{Info: proto.BlockInfo{BucketNum: -1}}
	atStart := true
	uvarint := func(what string) (uint64, error) {
		v, err := binary.ReadUvarint(src)
		if err != nil {
			if atStart && errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("block %s: %w", what, unexpectedEOF(err))
		}
		atStart = false
		return v, nil
	}
	if from > 0 {
		if err := readBlockInfo(&h.Info, uvarint, src); err != nil {
			return dst, h, err
		}
	}
	cols, err := uvarint("columns")
	if err != nil {
		return dst, h, err
	}
	rows, err := uvarint("rows")
	if err != nil {
		return dst, h, err
	}
	if cols > maxColumns || rows > maxRows {
		return dst, h, fmt.Errorf("block of %d columns and %d rows: too large", cols, rows)
	}
	h.Rows = int(rows)

	out := proto.Buffer{Buf: dst}
	if to > 0 {
		h.Info.Encode(&out)
	}
	out.PutUVarInt(cols)
	out.PutUVarInt(rows)
	w := &walker{src: src}
	for i := range int(cols) {
		name, err := readString(src, "column name")
		if err != nil {
			return dst, h, err
		}
		typ, err := readString(src, "column type")
		if err != nil {
			return dst, h, err
		}
		h.Columns = append(h.Columns, Column{Name: name, Type: typ})
		if proto.FeatureCustomSerialization.In(from) {
			custom, err := src.ReadByte()
			if err != nil {
				return dst, h, fmt.Errorf("column %s: serialization flag: %w", name, unexpectedEOF(err))
			}
			if custom != 0 {
				return dst, h, fmt.Errorf("column %s: custom (sparse) serialization is not supported", name)
			}
		}
		out.PutString(name)
		out.PutString(typ)
		if proto.FeatureCustomSerialization.In(to) {
			out.PutBool(false)
		}
		if rows == 0 {
			// No rows, no data: not even the state prefix.
			continue
		}
		t, err := parseType(typ, 0)
		if err != nil {
			return dst, h, fmt.Errorf("column %s: %w", name, err)
		}
		w.out = out.Buf
		if err := w.prefix(t); err != nil {
			return dst, h, fmt.Errorf("column %s (%s, column %d): %w", name, typ, i, err)
		}
		if err := w.data(t, rows); err != nil {
			return dst, h, fmt.Errorf("column %s (%s, column %d): %w", name, typ, i, err)
		}
		out.Buf = w.out
	}
	return out.Buf, h, nil
}

// readBlockInfo reads the block info that revisions above 0 put before a
// block: numbered fields, ended by field 0 (BlockInfo::read).
func readBlockInfo(info *proto.BlockInfo, uvarint func(string) (uint64, error), src Source) error {
	for {
		field, err := uvarint("info field")
		if err != nil {
			return err
		}
		switch field {
		case 0:
			return nil
		case 1:
			b, err := src.ReadByte()
			if err != nil {
				return fmt.Errorf("block info: %w", unexpectedEOF(err))
			}
			info.Overflows = b != 0
		case 2:
			var v [4]byte
			if _, err := io.ReadFull(src, v[:]); err != nil {
				return fmt.Errorf("block info: %w", unexpectedEOF(err))
			}
			info.BucketNum = int(int32(binary.LittleEndian.Uint32(v[:])))
		default:
			return fmt.Errorf("block info: unknown field %d", field)
		}
	}
}

// readString reads a column name or type.
func readString(src Source, what string) (string, error) {
	n, err := binary.ReadUvarint(src)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, unexpectedEOF(err))
	}
	if n > maxName {
		return "", fmt.Errorf("%s of %d bytes: too long", what, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(src, b); err != nil {
		return "", fmt.Errorf("%s: %w", what, unexpectedEOF(err))
	}
	return string(b), nil
}

// AppendHeader appends a block of no rows with the given columns, encoded
// at revision rev: what a server sends before a result, or before the data
// of an INSERT, to name and type the columns.
func AppendHeader(dst []byte, rev int, cols []Column) []byte {
	out := proto.Buffer{Buf: dst}
	if rev > 0 {
		proto.BlockInfo{BucketNum: -1}.Encode(&out)
	}
	out.PutInt(len(cols))
	out.PutInt(0)
	for _, c := range cols {
		out.PutString(c.Name)
		out.PutString(c.Type)
		if proto.FeatureCustomSerialization.In(rev) {
			out.PutBool(false)
		}
	}
	return out.Buf
}

// TranscodeAll re-encodes a whole stream of blocks held in memory (the
// engine's Native output), calling each for every block.
func TranscodeAll(in []byte, from, to int, each func(block []byte, h Header) error) error {
	r := bytes.NewReader(in)
	var buf []byte
	for {
		var (
			h   Header
			err error
		)
		buf, h, err = Transcode(buf[:0], r, from, to)
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := each(buf, h); err != nil {
			return err
		}
	}
}
