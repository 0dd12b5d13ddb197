// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bytes"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/nativeblock"
)

// query answers a Query packet: the query, then the Data packets of its
// external tables up to an empty block, then the query runs. A failing
// query gets an exception and the connection goes on; an error ends it.
func (c *conn) query() error {
	q, err := c.pr.query(c.rev)
	if err != nil {
		return err
	}
	c.compress = q.Compression == proto.CompressionEnabled
	external, err := c.readExternalTables()
	if err != nil {
		return err
	}
	start := time.Now()
	exc, err := c.run(q, external, start)
	if err != nil {
		return err
	}
	if exc != nil {
		c.writeException(exc)
	}
	return c.flush()
}

// readExternalTables reads the Data packets that follow a Query up to the
// empty block that ends them, and returns how many tables came.
func (c *conn) readExternalTables() (int, error) {
	var (
		n   int
		buf []byte
	)
	for {
		code, err := c.pr.code()
		if err != nil {
			return 0, unexpectedEOF(err)
		}
		if code != proto.ClientCodeData {
			return 0, newProtocolError(proto.ErrUnexpectedPacketFromClient,
				"Unexpected packet %s received from client after a Query (expected Data)", code)
		}
		var h nativeblock.Header
		buf, h, err = c.readData(buf[:0])
		if err != nil {
			return 0, err
		}
		if h.End() {
			return n, nil
		}
		n++
	}
}

// readData reads the rest of a Data packet (after its code) and appends its
// block to dst at revision 0, the Native format of files.
func (c *conn) readData(dst []byte) ([]byte, nativeblock.Header, error) {
	if err := c.pr.skipStr("table name"); err != nil {
		return dst, nativeblock.Header{}, unexpectedEOF(err)
	}
	if c.compress {
		c.r.EnableCompression()
		defer c.r.DisableCompression()
	}
	out, h, err := nativeblock.Transcode(dst, c.r, c.rev, 0)
	if err != nil {
		return dst, h, blockError(err)
	}
	return out, h, nil
}

// run runs a query and writes its answer, but for a final exception.
func (c *conn) run(q proto.Query, external int, start time.Time) (*chsession.Exception, error) {
	switch {
	case len(q.Parameters) > 0:
		return exception(proto.ErrNotImplemented,
			"devclickhouse does not support query parameters ({name:Type}): bind the values into the query text"), nil
	case q.Stage != proto.StageComplete:
		return exception(proto.ErrNotImplemented, "devclickhouse runs queries to completion only, not to stage %s", q.Stage), nil
	case q.Secret != "":
		return exception(proto.ErrNotImplemented, "devclickhouse does not serve inter-server queries"), nil
	case external > 0:
		return exception(proto.ErrNotImplemented, "devclickhouse does not support external tables"), nil
	}
	qs, exc := c.querySettings(q.Settings)
	if exc != nil {
		return exc, nil
	}
	settings, readonly, exc := chsession.TakeReadonly(chsession.MergeSettings(c.settings, qs))
	if exc != nil {
		return exc, nil
	}
	c.method = compressionMethod(settings)
	stmt := q.Body
	kw, rest := chsession.SplitFirstKeyword(stmt)
	switch {
	case strings.TrimSpace(stmt) == "":
		return exception(proto.ErrSyntaxError, "Empty query"), nil
	case readonly && chsession.IsModifying(stmt):
		return chsession.ReadonlyException(""), nil
	case kw == "INSERT":
		return c.insert(stmt, settings, start)
	case kw == "USE":
		return c.use(stmt, rest, settings), nil
	}
	if checked, ok := chsession.SessionlessSet(stmt); ok {
		return c.set(checked, rest, settings), nil
	}
	return c.statement(stmt, kw, settings, start), nil
}

// querySettings takes the settings of a Query packet as settings of that
// query. As in ClickHouse, a name the engine does not know is refused when
// the client marks it important (clickhouse-go marks them all) and skipped
// otherwise (a newer client's setting).
func (c *conn) querySettings(list []proto.Setting) ([]chsession.Setting, *chsession.Exception) {
	var out []chsession.Setting
	for _, st := range list {
		if !chsession.ValidSettingName(st.Key) {
			return nil, chsession.UnknownSetting(st.Key)
		}
		if !st.Important && !st.Custom && !c.sess.KnownSetting(st.Key) {
			if c.sess.Verbose() {
				c.srv.log.Printf("native: %s: skipping unknown setting %s", c.nc.RemoteAddr(), st.Key)
			}
			continue
		}
		v := st.Value
		if st.Custom {
			// A custom setting's value is a field dump: a string comes
			// quoted.
			if s, ok := unquoteLiteral(v); ok {
				v = s
			}
		}
		out = append(out, chsession.Setting{Name: st.Key, Value: v})
	}
	return out, nil
}

// resultKeywords start the statements that answer with a table, even an
// empty one: the client is owed its header.
var resultKeywords = map[string]bool{
	"SELECT": true, "WITH": true, "SHOW": true, "DESC": true, "DESCRIBE": true,
	"EXISTS": true, "EXPLAIN": true, "CHECK": true,
}

// statement runs a statement other than an insert, USE or SET, and sends
// its result as Data blocks: an empty header block first, as ClickHouse
// does, then the engine's blocks at the connection's revision.
func (c *conn) statement(stmt, kw string, settings []chsession.Setting, start time.Time) *chsession.Exception {
	// The client formats results itself: a FORMAT clause means nothing
	// over the native protocol.
	body, _ := chsession.StripFormat(stmt)
	out, exc := c.sess.Run(c.db, []byte(body), "Native", settings)
	if exc != nil {
		return exc
	}
	var (
		blocks [][]byte
		header []nativeblock.Column
		rows   int
	)
	err := nativeblock.TranscodeAll(out, 0, c.rev, func(b []byte, h nativeblock.Header) error {
		if header == nil {
			header = h.Columns
		}
		blocks = append(blocks, bytes.Clone(b))
		rows += h.Rows
		return nil
	})
	if err != nil {
		return exception(proto.ErrNotImplemented, "devclickhouse cannot send this result over the native protocol: %v", err)
	}
	if header == nil && resultKeywords[kw] {
		// The engine writes nothing for an empty result, not even the
		// names and types of its columns: ask for them.
		if header, exc = c.resultHeader(body, settings); exc != nil {
			return exc
		}
	}
	if header != nil {
		if err := c.writeData(nativeblock.AppendHeader(nil, c.rev, header)); err != nil {
			return exception(proto.ErrStdException, "devclickhouse: cannot compress a Data block: %v", err)
		}
		for _, b := range blocks {
			if err := c.writeData(b); err != nil {
				return exception(proto.ErrStdException, "devclickhouse: cannot compress a Data block: %v", err)
			}
		}
		c.writeProfile(proto.Profile{Rows: uint64(rows), Blocks: uint64(len(blocks)), Bytes: uint64(len(out))})
		c.writeProgress(proto.Progress{Rows: uint64(rows), Bytes: uint64(len(out)), ElapsedNs: uint64(time.Since(start))})
	}
	c.writeEndOfStream()
	return nil
}

// resultHeader returns the columns of a statement's result from a second
// run in a format that names and types them even without rows.
func (c *conn) resultHeader(stmt string, settings []chsession.Setting) ([]nativeblock.Column, *chsession.Exception) {
	out, exc := c.sess.Run(c.db, []byte(stmt), "TabSeparatedWithNamesAndTypes", settings)
	if exc != nil {
		return nil, exc
	}
	lines := parseTSV(out)
	if len(lines) < 2 || len(lines[0]) != len(lines[1]) {
		return nil, nil
	}
	cols := make([]nativeblock.Column, len(lines[0]))
	for i := range cols {
		cols[i] = nativeblock.Column{Name: lines[0][i], Type: lines[1][i]}
	}
	return cols, nil
}

// use runs USE: it changes the connection's database, as a session's.
func (c *conn) use(stmt, rest string, settings []chsession.Setting) *chsession.Exception {
	db, ok := unquoteIdent(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ";")))
	if !ok {
		return exception(proto.ErrSyntaxError, "Syntax error: USE takes one database name: %s", chsession.Truncate(stmt, 200))
	}
	if _, exc := c.sess.Run(c.db, []byte(stmt), "TabSeparated", settings); exc != nil {
		return exc
	}
	c.db = db
	c.writeEndOfStream()
	return nil
}

// set runs SET: the engine checks the settings (checked is the query that
// does), and they stay with the connection, as with a ClickHouse session,
// never on the engine's shared session.
func (c *conn) set(checked, rest string, settings []chsession.Setting) *chsession.Exception {
	if _, exc := c.sess.Run(c.db, []byte(checked), "TabSeparated", settings); exc != nil {
		return exc
	}
	set, reset, err := parseSet(rest)
	if err != nil {
		return exception(proto.ErrSyntaxError, "Syntax error in SET: %v", err)
	}
	c.settings = chsession.MergeSettings(c.settings, set)
	for _, name := range reset {
		for i, st := range c.settings {
			if st.Name == name {
				c.settings = append(c.settings[:i], c.settings[i+1:]...)
				break
			}
		}
	}
	c.writeEndOfStream()
	return nil
}
