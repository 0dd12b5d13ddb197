// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// ClickHouse error codes used by the HTTP layer itself. The numbers are
// ClickHouse's (src/Common/ErrorCodes.cpp); errors raised by the engine carry
// their own code in their text and are passed through unchanged.
const (
	codeCannotReadAllData        = 33
	codeBadArguments             = 36
	codeChecksumDoesntMatch      = 40
	codeNotImplemented           = 48
	codeSyntaxError              = 62
	codeUnknownFormat            = 73
	codeUnknownCompressionMethod = 89
	codeUnknownSetting           = 115
	codeReadonly                 = 164
	codeQueryIsTooLarge          = 229
	codeCannotDecompress         = 271
	codeStdException             = 1001
)

// Exception is a ClickHouse-style error: its code and its full text
// ("Code: 60. DB::Exception: ... (UNKNOWN_TABLE)").
type Exception struct {
	Code int
	Text string
}

func (e *Exception) Error() string { return e.Text }

// newException builds an exception raised by devclickhouse itself.
func newException(code int, name, format string, args ...any) *Exception {
	msg := fmt.Sprintf(format, args...)
	return &Exception{
		Code: code,
		Text: fmt.Sprintf("Code: %d. DB::Exception: %s. (%s)", code, strings.TrimSuffix(msg, "."), name),
	}
}

var codeRe = regexp.MustCompile(`Code: (\d+)\.`)

// engineException turns the engine's error text into an Exception, keeping
// the ClickHouse code found in the text. Text without a code is reported as
// STD_EXCEPTION (1001).
func engineException(text string) *Exception {
	text = strings.TrimSpace(text)
	if m := codeRe.FindStringSubmatch(text); m != nil {
		if code, err := strconv.Atoi(m[1]); err == nil {
			return &Exception{Code: code, Text: tidyVersionSuffix(tidyNestedException(text, m[0]))}
		}
	}
	if text == "" {
		text = "unknown engine error"
	}
	return newException(codeStdException, "STD_EXCEPTION", "%s", text)
}

// tidyNestedException removes the doubled prefix that some engine paths
// produce ("Code: 469. DB::Exception: Code: 469. DB::Exception: ...").
func tidyNestedException(text, codePrefix string) string {
	prefix := codePrefix + " DB::Exception: "
	for strings.HasPrefix(text, prefix+prefix) {
		text = text[len(prefix):]
	}
	return text
}

// tidyVersionSuffix removes the error name that some engine paths repeat
// after the version (an unknown setting in a SETTINGS clause:
// "... (UNKNOWN_SETTING) (version 26.7.2.1). (UNKNOWN_SETTING)"), so the
// text ends with the version as a server's does.
func tidyVersionSuffix(text string) string {
	open := strings.LastIndex(text, ". (")
	if open < 0 || !strings.HasSuffix(text, ")") {
		return text
	}
	name := text[open+3 : len(text)-1]
	body := text[:open]
	if strings.HasSuffix(body, ")") && strings.Contains(body, "("+name+") (version ") {
		return body
	}
	return text
}

// httpStatus maps an exception code to the HTTP status a ClickHouse server
// answers with (after src/Server/HTTP/exceptionCodeToHTTPStatus.cpp).
func httpStatus(code int) int {
	switch code {
	case 194: // REQUIRED_PASSWORD
		return http.StatusUnauthorized
	case 192, 193, 516, 512, 497: // UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED, SET_NON_GRANTED_ROLE, ACCESS_DENIED
		return http.StatusForbidden
	case 36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223, 62, 117, 53, 321:
		// BAD_ARGUMENTS, CANNOT_COMPILE_REGEXP, CANNOT_PARSE_*, DUPLICATE_COLUMN,
		// ILLEGAL_COLUMN, UNKNOWN_ELEMENT_IN_AST, UNKNOWN_TYPE_OF_AST_NODE,
		// THERE_IS_NO_COLUMN, TOO_DEEP_AST, TOO_BIG_AST, UNEXPECTED_AST_STRUCTURE,
		// SYNTAX_ERROR, INCORRECT_DATA, TYPE_MISMATCH, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
		return http.StatusBadRequest
	case 60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511:
		// UNKNOWN_TABLE, UNKNOWN_FUNCTION, UNKNOWN_IDENTIFIER, UNKNOWN_TYPE,
		// UNKNOWN_STORAGE, UNKNOWN_DATABASE, UNKNOWN_SETTING,
		// UNKNOWN_DIRECTION_OF_SORTING, UNKNOWN_AGGREGATE_FUNCTION, UNKNOWN_FORMAT,
		// UNKNOWN_DATABASE_ENGINE, UNKNOWN_TYPE_OF_QUERY, UNKNOWN_ROLE
		return http.StatusNotFound
	case codeQueryIsTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeNotImplemented:
		return http.StatusNotImplemented
	case 209, 76, 439: // SOCKET_TIMEOUT, CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK
		return http.StatusServiceUnavailable
	case 381: // HTTP_LENGTH_REQUIRED
		return http.StatusLengthRequired
	case 159: // TIMEOUT_EXCEEDED
		return http.StatusRequestTimeout
	case 779: // UNSUPPORTED_MEDIA_TYPE
		return http.StatusUnsupportedMediaType
	}
	return http.StatusInternalServerError
}
