// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package chhttp serves the ClickHouse HTTP interface in front of an
// embedded engine (chDB), enough of it for clickhouse-go's HTTP transport and
// for a person with curl.
package chhttp

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Engine runs one statement and returns its output in the given format.
// Errors carry ClickHouse's error text ("Code: N. DB::Exception: ...").
type Engine interface {
	Query(query []byte, format string) ([]byte, error)
}

// Options configure a Server.
type Options struct {
	// TempDir holds the bodies of INSERT ... FORMAT requests while the engine
	// reads them. Required.
	TempDir string
	// MaxBodyBytes bounds a request body after decompression (default 1 GiB).
	MaxBodyBytes int64
	// Logger receives errors and, with Verbose, every statement. Nil
	// discards.
	Logger  *log.Logger
	Verbose bool
}

// Server is an http.Handler serving the ClickHouse HTTP interface.
type Server struct {
	eng     Engine
	opts    Options
	version string
	tz      string
	name    string

	// baseline holds the settings the engine session started with where
	// they differ from ClickHouse's defaults: a request's settings are put
	// back to these values after it.
	baseline map[string]string

	// mu serialises statements together with the USE that selects their
	// database and the SETs that apply their settings: the engine has one
	// session.
	mu    sync.Mutex
	curDB string
}

const (
	defaultMaxBody = 1 << 30
	// responseFrame is the uncompressed size of one compressed response
	// frame.
	responseFrame = 1 << 20
)

// New returns a Server over eng. It asks the engine for its version and time
// zone once.
func New(eng Engine, opts Options) (*Server, error) {
	if opts.TempDir == "" {
		return nil, errors.New("chhttp: TempDir is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = log.New(io.Discard, "", 0)
	}
	s := &Server{eng: eng, opts: opts, version: "unknown", tz: "UTC", name: "devclickhouse"}
	out, err := eng.Query([]byte("SELECT version(), timezone()"), "TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("chhttp: engine does not answer: %w", err)
	}
	if f := strings.Split(strings.TrimSpace(string(out)), "\t"); len(f) == 2 {
		s.version, s.tz = f[0], f[1]
	}
	if s.baseline, err = loadBaseline(eng); err != nil {
		return nil, fmt.Errorf("chhttp: cannot read the engine's settings: %w", err)
	}
	return s, nil
}

// baselineQuery lists the settings the session starts with that differ from
// ClickHouse's defaults, and their aliases, so that restoring an alias
// restores the same value.
const baselineQuery = "SELECT name, value FROM system.settings WHERE changed OR alias_for IN " +
	"(SELECT name FROM system.settings WHERE changed)"

func loadBaseline(eng Engine) (map[string]string, error) {
	out, err := eng.Query([]byte(baselineQuery), "JSONCompactEachRow")
	if err != nil {
		return nil, err
	}
	baseline := make(map[string]string)
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var row [2]string
		if err := json.Unmarshal(line, &row); err != nil {
			return nil, fmt.Errorf("row %q: %w", line, err)
		}
		baseline[row[0]] = row[1]
	}
	return baseline, nil
}

// Version is the engine's ClickHouse version.
func (s *Server) Version() string { return s.version }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	compressOut := boolParam(r.URL.Query().Get("compress"))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Logger.Printf("panic serving %s: %v\n%s", r.URL.Path, v, debug.Stack())
			s.writeException(w, compressOut, newException(codeStdException, "STD_EXCEPTION", "devclickhouse: internal error: %v", v))
		}
	}()
	s.setCommonHeaders(w)
	switch r.URL.Path {
	case "/ping", "/replicas_status":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.notFound(w, r)
			return
		}
		writePlain(w, http.StatusOK, "Ok.\n")
	case "/":
		s.serveQuery(w, r, compressOut)
	default:
		s.notFound(w, r)
	}
}

func (s *Server) setCommonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-ClickHouse-Server-Display-Name", s.name)
	h.Set("X-ClickHouse-Timezone", s.tz)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writePlain(w, http.StatusNotFound, fmt.Sprintf(
		"There is no handle %s\n\nUse / or /ping for health checks.\n\nSend queries from your program with POST method or GET /?query=...\n",
		r.URL.Path))
}

func writePlain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, compressOut bool) {
	params := r.URL.Query()
	queryID := params.Get("query_id")
	if queryID == "" {
		queryID = newQueryID()
	}
	w.Header().Set("X-ClickHouse-Query-Id", queryID)

	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
			s.writeException(w, compressOut, newException(codeNotImplemented, "NOT_IMPLEMENTED",
				"devclickhouse does not support external tables (multipart/form-data requests)"))
			return
		}
		b, exc := s.readBody(r, boolParam(params.Get("decompress")))
		if exc != nil {
			s.writeException(w, compressOut, exc)
			return
		}
		body = b
	} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writePlain(w, http.StatusMethodNotAllowed, "Method not allowed.\n")
		return
	}

	param := params.Get("query")
	if param == "" && len(body) == 0 {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			writePlain(w, http.StatusOK, "Ok.\n")
			return
		}
		s.writeException(w, compressOut, newException(codeSyntaxError, "SYNTAX_ERROR", "Empty query"))
		return
	}

	settings, readonly, exc := requestSettings(r, params)
	if exc != nil {
		s.writeException(w, compressOut, exc)
		return
	}

	db := params.Get("database")
	if db == "" {
		db = r.Header.Get("X-ClickHouse-Database")
	}
	if db == "" {
		db = "default"
	}
	defaultFormat := params.Get("default_format")
	if defaultFormat == "" {
		defaultFormat = r.Header.Get("X-ClickHouse-Format")
	}
	if defaultFormat == "" {
		defaultFormat = "TabSeparated"
	}

	if ins, ok := splitInsert(param, body); ok {
		if readonly {
			s.writeException(w, compressOut, readonlyException())
			return
		}
		if exc := s.runInsert(db, ins, settings); exc != nil {
			s.writeException(w, compressOut, exc)
			return
		}
		s.writeResult(w, r, compressOut, "TabSeparated", nil)
		return
	}

	stmt := param
	if len(body) > 0 {
		if stmt != "" {
			stmt += "\n"
		}
		stmt += string(body)
	}
	if readonly && modifyingKeywords[firstKeyword(stmt)] {
		s.writeException(w, compressOut, readonlyException())
		return
	}
	format := defaultFormat
	if f := explicitFormat(stmt); f != "" {
		format = f
	}
	if checked, ok := sessionlessSet(stmt); ok {
		stmt, format = checked, "TabSeparated"
	}
	change, exc := newSessionChange(settings, s.baseline)
	if exc != nil {
		s.writeException(w, compressOut, exc)
		return
	}
	out, err := s.run(db, []byte(stmt), defaultFormat, change)
	if err != nil {
		s.writeException(w, compressOut, asException(err))
		return
	}
	if format == "Native" {
		if rev, _ := strconv.Atoi(params.Get("client_protocol_version")); rev > 0 {
			re, err := reencodeNative(out, rev)
			if err != nil {
				s.writeException(w, compressOut, newException(codeNotImplemented, "NOT_IMPLEMENTED",
					"devclickhouse cannot re-encode this result as Native for client_protocol_version %d (%v); ask for another FORMAT", rev, err))
				return
			}
			out = re
		}
	}
	s.writeResult(w, r, compressOut, format, out)
}

// requestSettings returns the settings among the request's URL parameters
// and whether the request runs read-only: GET, as in ClickHouse, or the
// readonly setting.
func requestSettings(r *http.Request, params url.Values) ([]setting, bool, *Exception) {
	list, exc := settingsFromParams(params)
	if exc != nil {
		return nil, false, exc
	}
	list, readonly, exc := takeReadonly(list)
	if exc != nil {
		return nil, false, exc
	}
	return list, readonly || r.Method == http.MethodGet || r.Method == http.MethodHead, nil
}

func readonlyException() *Exception {
	return newException(codeReadonly, "READONLY",
		"Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries")
}

// run executes one statement in database db, with the request's settings
// (change, nil for none) applied to the session for that statement only.
func (s *Server) run(db string, stmt []byte, format string, change *sessionChange) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Verbose {
		start := time.Now()
		defer func() {
			var set string
			if change != nil {
				set = " " + truncate(change.apply, 300)
			}
			s.opts.Logger.Printf("query db=%s%s (%v): %s", db, set, time.Since(start).Round(time.Microsecond), abbreviate(string(stmt), 200, 150))
		}()
	}
	if db != s.curDB {
		if _, err := s.eng.Query([]byte("USE "+quoteIdent(db)), "TabSeparated"); err != nil {
			s.curDB = ""
			return nil, err
		}
		s.curDB = db
	}
	if change != nil {
		// Restored whatever happens next: after the statement, a failing or
		// panicking one included, and after a failing SET too. The engine
		// checks a SET whole before it applies any of it, so there is then
		// nothing to undo, but being sure costs one statement on an error
		// path only.
		defer s.restoreSession(change.restore)
		if _, err := s.eng.Query([]byte(change.apply), "TabSeparated"); err != nil {
			return nil, err
		}
	}
	out, err := s.eng.Query(stmt, format)
	if firstKeyword(string(stmt)) == "USE" {
		// The statement changed the session's database itself.
		s.curDB = ""
	}
	return out, err
}

// restoreSession puts the settings of the session back after a statement.
// It fails only on settings that checkRestorable does not foresee; the
// session may then keep them, which is worth a line in the log.
func (s *Server) restoreSession(restore string) {
	if _, err := s.eng.Query([]byte(restore), "TabSeparated"); err != nil {
		s.opts.Logger.Printf("error: cannot restore the session's settings (%s): %v", truncate(restore, 300), err)
	}
}

// runInsert stores the data of an INSERT ... FORMAT X request in a file and
// has the engine read it from there, with the request's settings in the
// statement's SETTINGS clause.
func (s *Server) runInsert(db string, ins insertStatement, settings []setting) *Exception {
	if len(ins.data) == 0 {
		return nil
	}
	f, err := os.CreateTemp(s.opts.TempDir, "insert-*.data")
	if err != nil {
		return newException(codeStdException, "STD_EXCEPTION", "devclickhouse: cannot create temporary file: %v", err)
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.Write(ins.data); err != nil {
		f.Close()
		return newException(codeStdException, "STD_EXCEPTION", "devclickhouse: cannot write temporary file: %v", err)
	}
	if err := f.Close(); err != nil {
		return newException(codeStdException, "STD_EXCEPTION", "devclickhouse: cannot write temporary file: %v", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	stmt := insertFromFile(ins, abs, settings)
	if _, err := s.run(db, []byte(stmt), "TabSeparated", nil); err != nil {
		return asException(err)
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
func insertFromFile(ins insertStatement, path string, settings []setting) string {
	head := strings.TrimRight(ins.head, " \t\r\n")
	if ins.format == "Native" {
		// Native data names and types its columns, so the engine can read it
		// as a table; the INSERT's column list maps them by position.
		clause := nativeFileSettings
		if len(settings) > 0 {
			clause = settingList(settings) + ", " + clause
		}
		return fmt.Sprintf("%s\nSELECT * FROM file(%s, 'Native') SETTINGS %s", head, quoteString(path), clause)
	}
	// Text formats are parsed with the table's own column types. FROM INFILE
	// takes the SETTINGS clause between the file name and FORMAT.
	prefix, own := splitHeadSettings(head)
	var clauses []string
	if len(settings) > 0 {
		clauses = append(clauses, settingList(settings))
	}
	if own != "" {
		clauses = append(clauses, own)
	}
	stmt := strings.TrimRight(prefix, " \t\r\n") + "\nFROM INFILE " + quoteString(path)
	if len(clauses) > 0 {
		stmt += " SETTINGS " + strings.Join(clauses, ", ") + "\n"
	}
	return stmt + " FORMAT " + ins.format
}

func asException(err error) *Exception {
	var exc *Exception
	if errors.As(err, &exc) {
		return exc
	}
	return engineException(err.Error())
}

// readBody reads the request body, undoing its Content-Encoding and, with
// decompress=1, ClickHouse's own compressed frames.
func (s *Server) readBody(r *http.Request, framed bool) ([]byte, *Exception) {
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "none":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, newException(codeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read gzip body: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		zr, err := zlib.NewReader(rd)
		if err != nil {
			return nil, newException(codeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read deflate body: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "br":
		rd = brotli.NewReader(rd)
	case "zstd":
		zr, err := zstd.NewReader(rd, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, newException(codeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read zstd body: %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, newException(codeUnknownCompressionMethod, "UNKNOWN_COMPRESSION_METHOD",
			"Unknown Content-Encoding of HTTP request: %s", enc)
	}
	if framed {
		rd = &framedReader{r: compress.NewReader(rd)}
	}
	limit := s.opts.MaxBodyBytes
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, bodyException(err)
	}
	if int64(len(b)) > limit {
		return nil, newException(codeQueryIsTooLarge, "QUERY_IS_TOO_LARGE",
			"Request body is larger than %d bytes", limit)
	}
	return b, nil
}

// framedReader reads ClickHouse compressed frames; a clean end of input
// between two frames is the end of the body.
type framedReader struct {
	r *compress.Reader
}

func (f *framedReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return n, io.EOF
	}
	return n, err
}

func bodyException(err error) *Exception {
	var corrupted *compress.CorruptedDataErr
	switch {
	case errors.As(err, &corrupted):
		return newException(codeChecksumDoesntMatch, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "Cannot read all data of the request body: %v", err)
	case strings.Contains(err.Error(), "not implemented"):
		return newException(codeUnknownCompressionMethod, "UNKNOWN_COMPRESSION_METHOD", "Unknown compression method in request body: %v", err)
	}
	return newException(codeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot decompress request body: %v", err)
}

// contentTypes names the Content-Type of common output formats.
var contentTypes = map[string]string{
	"TabSeparated":                  "text/tab-separated-values; charset=UTF-8",
	"TSV":                           "text/tab-separated-values; charset=UTF-8",
	"TabSeparatedWithNames":         "text/tab-separated-values; charset=UTF-8",
	"TSVWithNames":                  "text/tab-separated-values; charset=UTF-8",
	"TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
	"TSVWithNamesAndTypes":          "text/tab-separated-values; charset=UTF-8",
	"CSV":                           "text/csv; charset=UTF-8; header=absent",
	"CSVWithNames":                  "text/csv; charset=UTF-8; header=present",
	"JSON":                          "application/json; charset=UTF-8",
	"JSONCompact":                   "application/json; charset=UTF-8",
	"JSONEachRow":                   "application/x-ndjson; charset=UTF-8",
	"JSONCompactEachRow":            "application/x-ndjson; charset=UTF-8",
	"Pretty":                        "text/plain; charset=UTF-8",
	"PrettyCompact":                 "text/plain; charset=UTF-8",
	"Vertical":                      "text/plain; charset=UTF-8",
	"Native":                        "application/octet-stream",
	"RowBinary":                     "application/octet-stream",
	"RowBinaryWithNamesAndTypes":    "application/octet-stream",
	"Parquet":                       "application/octet-stream",
	"ArrowStream":                   "application/octet-stream",
	"TabSeparatedRaw":               "text/tab-separated-values; charset=UTF-8",
	"JSONStrings":                   "application/json; charset=UTF-8",
	"JSONCompactStringsEachRow":     "application/x-ndjson; charset=UTF-8",
	"CustomSeparated":               "text/plain; charset=UTF-8",
	"Values":                        "text/plain; charset=UTF-8",
	"Markdown":                      "text/markdown; charset=UTF-8",
	"XML":                           "application/xml; charset=UTF-8",
	"Null":                          "text/plain; charset=UTF-8",
	"JSONEachRowWithProgress":       "application/x-ndjson; charset=UTF-8",
	"JSONCompactEachRowWithNames":   "application/x-ndjson; charset=UTF-8",
}

func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, compressOut bool, format string, out []byte) {
	h := w.Header()
	ct, ok := contentTypes[format]
	if !ok {
		ct = "text/plain; charset=UTF-8"
	}
	h.Set("Content-Type", ct)
	h.Set("X-ClickHouse-Format", format)
	if compressOut {
		out = compressFrames(out)
	} else if enc := responseEncoding(r); enc != "" && len(out) > 0 {
		if b, err := encodeHTTP(enc, out); err == nil {
			out = b
			h.Set("Content-Encoding", enc)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out)
	}
}

// writeException answers with a ClickHouse-style error: the status for its
// code, the code in X-ClickHouse-Exception-Code, and its text as the body
// (compressed like any response when the client asked with compress=1).
func (s *Server) writeException(w http.ResponseWriter, compressOut bool, exc *Exception) {
	body := exc.Text
	if !strings.Contains(body, "(version ") {
		body += " (version " + s.version + ")"
	}
	body += "\n"
	if s.opts.Verbose || httpStatus(exc.Code) >= 500 {
		s.opts.Logger.Printf("error: %s", truncate(exc.Text, 500))
	}
	out := []byte(body)
	if compressOut {
		out = compressFrames(out)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("X-ClickHouse-Exception-Code", strconv.Itoa(exc.Code))
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(httpStatus(exc.Code))
	_, _ = w.Write(out)
}

// compressFrames wraps data in ClickHouse compressed frames (LZ4), the
// response encoding of compress=1.
func compressFrames(data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	cw := compress.NewWriter(compress.LevelZero, compress.LZ4)
	out := make([]byte, 0, len(data)/2+64)
	for len(data) > 0 {
		n := min(len(data), responseFrame)
		if err := cw.Compress(data[:n]); err != nil {
			// LZ4 block compression of in-memory data does not fail;
			// fall back to an uncompressed frame all the same.
			nw := compress.NewWriter(compress.LevelZero, compress.None)
			_ = nw.Compress(data[:n])
			out = append(out, nw.Data...)
		} else {
			out = append(out, cw.Data...)
		}
		data = data[n:]
	}
	return out
}

// responseEncoding returns the HTTP Content-Encoding to answer with: only
// when the client set enable_http_compression=1 and accepts gzip or deflate.
func responseEncoding(r *http.Request) string {
	if !boolParam(r.URL.Query().Get("enable_http_compression")) {
		return ""
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		switch enc := strings.TrimSpace(strings.SplitN(part, ";", 2)[0]); enc {
		case "gzip", "deflate":
			return enc
		}
	}
	return ""
}

func encodeHTTP(enc string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	var wc io.WriteCloser
	switch enc {
	case "gzip":
		wc = gzip.NewWriter(&buf)
	case "deflate":
		wc = zlib.NewWriter(&buf)
	default:
		return nil, fmt.Errorf("unsupported encoding %q", enc)
	}
	if _, err := wc.Write(data); err != nil {
		return nil, err
	}
	if err := wc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func boolParam(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func newQueryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// abbreviate keeps the first head and the last tail bytes of a long
// statement: the end of an insert holds the settings it ran with.
func abbreviate(s string, head, tail int) string {
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + " ... " + s[len(s)-tail:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
