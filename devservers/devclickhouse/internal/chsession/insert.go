// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Insert is an INSERT whose data comes apart from its statement: after
// "FORMAT X" in an HTTP body, or in Data packets over the native protocol.
type Insert struct {
	Head   string // the statement without its FORMAT clause or VALUES keyword
	Format string
	Data   []byte
}

// Insert stores the data of ins in a temporary file and has the engine read
// it from there, with the request's settings in the statement's SETTINGS
// clause. No data inserts nothing, as in ClickHouse.
func (s *Session) Insert(db string, ins Insert, settings []Setting) *Exception {
	if len(ins.Data) == 0 {
		return nil
	}
	f, exc := s.TempFile()
	if exc != nil {
		return exc
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.Write(ins.Data); err != nil {
		f.Close()
		return tempFileException("write", err)
	}
	if err := f.Close(); err != nil {
		return tempFileException("write", err)
	}
	return s.InsertFile(db, ins, path, settings)
}

// TempFile creates a file for the data of an insert; the caller removes it.
func (s *Session) TempFile() (*os.File, *Exception) {
	f, err := os.CreateTemp(s.opts.TempDir, "insert-*.data")
	if err != nil {
		return nil, tempFileException("create", err)
	}
	return f, nil
}

func tempFileException(op string, err error) *Exception {
	return NewException(CodeStdException, "STD_EXCEPTION", "devclickhouse: cannot %s temporary file: %v", op, err)
}

// InsertFile has the engine insert the data in the file at path, in
// ins.Format, as the INSERT ins.Head.
func (s *Session) InsertFile(db string, ins Insert, path string, settings []Setting) *Exception {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if _, err := s.run(db, []byte(insertFromFile(ins, abs, settings)), "TabSeparated", nil); err != nil {
		return AsException(err)
	}
	return nil
}

// nativeFileSettings end the SETTINGS clause of a Native insert, after the
// request's own, so that they stay as devclickhouse needs them. Temporary
// file names recur: no schema cache. The engine deduplicates
// INSERT ... SELECT only when it deems the SELECT stable, which it does not
// for file(); the insert stands for a plain INSERT with data, which a
// ClickHouse server deduplicates by content (for a table with a
// deduplication window) unless deduplicate_insert or insert_deduplicate say
// otherwise, and this value makes the engine do the same.
const nativeFileSettings = "schema_inference_use_cache_for_file = 0, deduplicate_insert_select = 'enable_even_for_bad_queries'"

// insertFromFile builds the statement that inserts the data of ins from the
// file at path. The INSERT's own SETTINGS clause wins over the request's
// settings, as in ClickHouse: it stays in the head of a Native insert (the
// head's settings win over the SELECT's) and comes last in the clause of a
// text one (the last of a repeated name wins). Parts are joined with line
// breaks, so that a line comment ending the head comments out nothing.
func insertFromFile(ins Insert, path string, settings []Setting) string {
	head := strings.TrimRight(ins.Head, " \t\r\n")
	if ins.Format == "Native" {
		// Native data names and types its columns, so the engine can read it
		// as a table; the INSERT's column list maps them by position.
		clause := nativeFileSettings
		if len(settings) > 0 {
			clause = SettingList(settings) + ", " + clause
		}
		return fmt.Sprintf("%s\nSELECT * FROM file(%s, 'Native') SETTINGS %s", head, QuoteString(path), clause)
	}
	// Text formats are parsed with the table's own column types. FROM INFILE
	// takes the SETTINGS clause between the file name and FORMAT.
	prefix, own := splitHeadSettings(head)
	var clauses []string
	if len(settings) > 0 {
		clauses = append(clauses, SettingList(settings))
	}
	if own != "" {
		clauses = append(clauses, own)
	}
	stmt := strings.TrimRight(prefix, " \t\r\n") + "\nFROM INFILE " + QuoteString(path)
	if len(clauses) > 0 {
		stmt += " SETTINGS " + strings.Join(clauses, ", ") + "\n"
	}
	return stmt + " FORMAT " + ins.Format
}
