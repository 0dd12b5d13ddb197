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
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// Options configure a Server.
type Options struct {
	// MaxBodyBytes bounds a request body after decompression (default 1 GiB).
	MaxBodyBytes int64
}

// Server is an http.Handler serving the ClickHouse HTTP interface.
type Server struct {
	sess *chsession.Session
	opts Options
	name string
}

const (
	defaultMaxBody = 1 << 30
	// responseFrame is the uncompressed size of one compressed response
	// frame.
	responseFrame = 1 << 20
)

// New returns a Server running its statements on sess.
func New(sess *chsession.Session, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBody
	}
	return &Server{sess: sess, opts: opts, name: "devclickhouse"}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	compressOut := boolParam(r.URL.Query().Get("compress"))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.sess.Logger().Printf("panic serving %s: %v\n%s", r.URL.Path, v, debug.Stack())
			s.writeException(w, compressOut, chsession.NewException(chsession.CodeStdException, "STD_EXCEPTION", "devclickhouse: internal error: %v", v))
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
	h.Set("X-ClickHouse-Timezone", s.sess.Timezone())
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
			s.writeException(w, compressOut, chsession.NewException(chsession.CodeNotImplemented, "NOT_IMPLEMENTED",
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
		s.writeException(w, compressOut, chsession.NewException(chsession.CodeSyntaxError, "SYNTAX_ERROR", "Empty query"))
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
		if exc := s.sess.Insert(db, ins, settings); exc != nil {
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
	if readonly && chsession.IsModifying(stmt) {
		s.writeException(w, compressOut, readonlyException())
		return
	}
	format := defaultFormat
	if f := chsession.ExplicitFormat(stmt); f != "" {
		format = f
	}
	// Without a session_id, ClickHouse applies a SET to its own request
	// alone: it changes nothing for later requests.
	if checked, ok := chsession.SessionlessSet(stmt); ok {
		stmt, format = checked, "TabSeparated"
	}
	out, exc := s.sess.Run(db, []byte(stmt), defaultFormat, settings)
	if exc != nil {
		s.writeException(w, compressOut, exc)
		return
	}
	if format == "Native" {
		if rev, _ := strconv.Atoi(params.Get("client_protocol_version")); rev > 0 {
			re, err := reencodeNative(out, rev)
			if err != nil {
				s.writeException(w, compressOut, chsession.NewException(chsession.CodeNotImplemented, "NOT_IMPLEMENTED",
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
func requestSettings(r *http.Request, params url.Values) ([]chsession.Setting, bool, *chsession.Exception) {
	list, exc := settingsFromParams(params)
	if exc != nil {
		return nil, false, exc
	}
	list, readonly, exc := chsession.TakeReadonly(list)
	if exc != nil {
		return nil, false, exc
	}
	return list, readonly || r.Method == http.MethodGet || r.Method == http.MethodHead, nil
}

func readonlyException() *chsession.Exception {
	return chsession.ReadonlyException(". For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries")
}

// readBody reads the request body, undoing its Content-Encoding and, with
// decompress=1, ClickHouse's own compressed frames.
func (s *Server) readBody(r *http.Request, framed bool) ([]byte, *chsession.Exception) {
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "none":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, chsession.NewException(chsession.CodeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read gzip body: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		zr, err := zlib.NewReader(rd)
		if err != nil {
			return nil, chsession.NewException(chsession.CodeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read deflate body: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "br":
		rd = brotli.NewReader(rd)
	case "zstd":
		zr, err := zstd.NewReader(rd, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, chsession.NewException(chsession.CodeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot read zstd body: %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, chsession.NewException(chsession.CodeUnknownCompressionMethod, "UNKNOWN_COMPRESSION_METHOD",
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
		return nil, chsession.NewException(chsession.CodeQueryIsTooLarge, "QUERY_IS_TOO_LARGE",
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

func bodyException(err error) *chsession.Exception {
	var corrupted *compress.CorruptedDataErr
	switch {
	case errors.As(err, &corrupted):
		return chsession.NewException(chsession.CodeChecksumDoesntMatch, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return chsession.NewException(chsession.CodeCannotReadAllData, "CANNOT_READ_ALL_DATA", "Cannot read all data of the request body: %v", err)
	case strings.Contains(err.Error(), "not implemented"):
		return chsession.NewException(chsession.CodeUnknownCompressionMethod, "UNKNOWN_COMPRESSION_METHOD", "Unknown compression method in request body: %v", err)
	}
	return chsession.NewException(chsession.CodeCannotDecompress, "CANNOT_DECOMPRESS", "Cannot decompress request body: %v", err)
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
func (s *Server) writeException(w http.ResponseWriter, compressOut bool, exc *chsession.Exception) {
	body := exc.Text
	if !strings.Contains(body, "(version ") {
		body += " (version " + s.sess.Version() + ")"
	}
	body += "\n"
	if s.sess.Verbose() || httpStatus(exc.Code) >= 500 {
		s.sess.Logger().Printf("error: %s", chsession.Truncate(exc.Text, 500))
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
