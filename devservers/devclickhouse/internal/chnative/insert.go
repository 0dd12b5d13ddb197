// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/nativeblock"
)

// valuesEndRe finds an INSERT that ends with VALUES: its data comes in
// Data packets, as for "FORMAT X" with nothing after it.
var valuesEndRe = regexp.MustCompile(`(?is)^(\s*INSERT\s+INTO\s.*?)\bVALUES\s*;?\s*$`)

// insert runs an INSERT. Its data comes in the query text (after
// "FORMAT X" or as VALUES (...), or from a SELECT), or, when the query ends
// where the data would begin, in Data packets: the server names the columns
// in a header block and the client sends blocks until an empty one.
func (c *conn) insert(stmt string, settings []chsession.Setting, start time.Time) (*chsession.Exception, error) {
	if head, format, dataStart, ok := chsession.MatchInsertFormat(stmt); ok {
		if data := stmt[dataStart:]; strings.TrimSpace(data) != "" {
			// Inline data, read as over HTTP: from a file, in its format.
			if exc := c.sess.Insert(c.db, chsession.Insert{Head: head, Format: format, Data: []byte(data)}, settings); exc != nil {
				return exc, nil
			}
			c.writeEndOfStream()
			return nil, nil
		}
		if target, ok := parseInsertHead(head); ok {
			return c.insertBlocks(head, target, settings, start)
		}
	}
	if m := valuesEndRe.FindStringSubmatch(stmt); m != nil {
		if target, ok := parseInsertHead(m[1]); ok {
			return c.insertBlocks(m[1], target, settings, start)
		}
	}
	// INSERT ... SELECT, INSERT ... VALUES (...): plain SQL.
	if _, exc := c.sess.Run(c.db, []byte(stmt), "TabSeparated", settings); exc != nil {
		return exc, nil
	}
	c.writeEndOfStream()
	return nil, nil
}

// insertBlocks runs an INSERT whose data comes in Data packets. The blocks
// go, at revision 0, into a file that the engine inserts from, by the path
// an HTTP insert takes (the request's settings, deduplication), once the
// empty block ends them.
func (c *conn) insertBlocks(head string, target insertTarget, settings []chsession.Setting, start time.Time) (*chsession.Exception, error) {
	cols, exc := c.insertColumns(target)
	if exc != nil {
		return exc, nil
	}
	if err := c.writeData(nativeblock.AppendHeader(nil, c.rev, cols)); err != nil {
		return exception(proto.ErrStdException, "devclickhouse: cannot compress a Data block: %v", err), nil
	}
	if err := c.flush(); err != nil {
		return nil, err
	}

	f, exc := c.sess.TempFile()
	if exc != nil {
		// The client sends its blocks all the same: read them, then refuse.
		return c.refuseBlocks(exc)
	}
	path := f.Name()
	defer os.Remove(path)
	defer f.Close()
	fw := bufio.NewWriterSize(f, 1<<20)

	var (
		rows, size int
		failure    *chsession.Exception
		buf        []byte
	)
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ReceiveTimeout))
		code, err := c.pr.code()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		switch code {
		case proto.ClientCodeData:
		case proto.ClientCodeCancel:
			// Nothing is inserted.
			c.writeEndOfStream()
			return nil, nil
		default:
			return nil, newProtocolError(proto.ErrUnexpectedPacketFromClient,
				"Unexpected packet %s received from client while it sends the data of an INSERT (expected Data)", code)
		}
		var h nativeblock.Header
		buf, h, err = c.readData(buf[:0])
		if err != nil {
			return nil, err
		}
		switch {
		case h.End():
		case h.Rows == 0 || failure != nil:
			continue
		case !sameNames(h.Columns, cols):
			failure = exception(proto.ErrIncorrectData,
				"The columns of a block (%s) are not those of the INSERT's header (%s), in that order", names(h.Columns), names(cols))
			continue
		default:
			if _, err := fw.Write(buf); err != nil {
				failure = exception(proto.ErrStdException, "devclickhouse: cannot write temporary file: %v", err)
			}
			rows += h.Rows
			size += len(buf)
			continue
		}
		break
	}
	if failure != nil {
		return failure, nil
	}
	if err := fw.Flush(); err != nil {
		return exception(proto.ErrStdException, "devclickhouse: cannot write temporary file: %v", err), nil
	}
	if rows > 0 {
		if exc := c.sess.InsertFile(c.db, chsession.Insert{Head: head, Format: "Native"}, path, settings); exc != nil {
			return exc, nil
		}
	}
	c.writeProgress(proto.Progress{WroteRows: uint64(rows), WroteBytes: uint64(size), ElapsedNs: uint64(time.Since(start))})
	c.writeEndOfStream()
	return nil, nil
}

// refuseBlocks reads and drops the blocks of an insert that cannot be
// taken, so that the connection can go on, and returns exc.
func (c *conn) refuseBlocks(exc *chsession.Exception) (*chsession.Exception, error) {
	var buf []byte
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ReceiveTimeout))
		code, err := c.pr.code()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if code == proto.ClientCodeCancel {
			return exc, nil
		}
		if code != proto.ClientCodeData {
			return nil, newProtocolError(proto.ErrUnexpectedPacketFromClient,
				"Unexpected packet %s received from client while it sends the data of an INSERT (expected Data)", code)
		}
		var h nativeblock.Header
		if buf, h, err = c.readData(buf[:0]); err != nil {
			return nil, err
		}
		if h.End() {
			return exc, nil
		}
	}
}

// insertColumns names and types the columns an INSERT takes, from the
// table's description: those of its column list, else the columns with no
// or a DEFAULT expression (not MATERIALIZED, ALIAS or EPHEMERAL ones), as
// ClickHouse's header for the insert.
func (c *conn) insertColumns(target insertTarget) ([]nativeblock.Column, *chsession.Exception) {
	out, exc := c.sess.Run(c.db, []byte("DESCRIBE TABLE "+target.table), "TabSeparated", nil)
	if exc != nil {
		return nil, exc
	}
	type described struct{ typ, kind string }
	table := make(map[string]described)
	var insertable []nativeblock.Column
	for _, row := range parseTSV(out) {
		if len(row) < 3 {
			continue
		}
		table[row[0]] = described{typ: row[1], kind: row[2]}
		if row[2] == "" || row[2] == "DEFAULT" {
			insertable = append(insertable, nativeblock.Column{Name: row[0], Type: row[1]})
		}
	}
	if len(target.columns) == 0 {
		return insertable, nil
	}
	cols := make([]nativeblock.Column, 0, len(target.columns))
	for _, name := range target.columns {
		d, ok := table[name]
		if !ok {
			return nil, exception(proto.ErrNoSuchColumnInTable, "No such column %s in table %s", chsession.Truncate(name, 200), target.table)
		}
		cols = append(cols, nativeblock.Column{Name: name, Type: d.typ})
	}
	return cols, nil
}

func sameNames(a, b []nativeblock.Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

func names(cols []nativeblock.Column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name)
	}
	return chsession.Truncate(b.String(), 300)
}
