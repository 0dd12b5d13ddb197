// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ClickHouse error codes raised by devclickhouse itself. The numbers and
// names are ClickHouse's (src/Common/ErrorCodes.cpp); errors raised by the
// engine carry their own code in their text and are passed through.
const (
	CodeNoSuchColumnInTable      = 16
	CodeCannotReadAllData        = 33
	CodeBadArguments             = 36
	CodeChecksumDoesntMatch      = 40
	CodeNotImplemented           = 48
	CodeSyntaxError              = 62
	CodeUnknownFormat            = 73
	CodeUnknownDatabase          = 81
	CodeUnknownCompressionMethod = 89
	CodeUnknownSetting           = 115
	CodeIncorrectData            = 117
	CodeReadonly                 = 164
	CodeQueryIsTooLarge          = 229
	CodeCannotDecompress         = 271
	CodeStdException             = 1001
)

// Exception is a ClickHouse error: its code and its full text, as the
// server's text interfaces show it ("Code: 60. DB::Exception: ...
// (UNKNOWN_TABLE)").
type Exception struct {
	Code int
	Text string
}

func (e *Exception) Error() string { return e.Text }

// NewException builds an exception raised by devclickhouse itself; name is
// the code's ClickHouse name.
func NewException(code int, name, format string, args ...any) *Exception {
	msg := fmt.Sprintf(format, args...)
	return &Exception{
		Code: code,
		Text: fmt.Sprintf("Code: %d. DB::Exception: %s. (%s)", code, strings.TrimSuffix(msg, "."), name),
	}
}

// AsException returns err as an Exception: itself when it is one, else the
// engine's error text with its code.
func AsException(err error) *Exception {
	var exc *Exception
	if errors.As(err, &exc) {
		return exc
	}
	return EngineException(err.Error())
}

var codeRe = regexp.MustCompile(`Code: (\d+)\.`)

// EngineException turns the engine's error text into an Exception, keeping
// the ClickHouse code found in the text. Text without a code is reported as
// STD_EXCEPTION (1001).
func EngineException(text string) *Exception {
	text = strings.TrimSpace(text)
	if m := codeRe.FindStringSubmatch(text); m != nil {
		if code, err := strconv.Atoi(m[1]); err == nil {
			return &Exception{Code: code, Text: tidyVersionSuffix(tidyNestedException(text, m[0]))}
		}
	}
	if text == "" {
		text = "unknown engine error"
	}
	return NewException(CodeStdException, "STD_EXCEPTION", "%s", text)
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

var leadingCodeRe = regexp.MustCompile(`^Code: \d+\. `)

// Message is the exception's text as ClickHouse's native protocol carries
// it (Exception::displayText): "DB::Exception: " and the message, without
// the "Code: N." prefix and the "(NAME) (version ...)" suffix that the text
// interfaces add; the code travels in a field of its own.
func (e *Exception) Message() string {
	t := strings.TrimSpace(e.Text)
	if loc := leadingCodeRe.FindStringIndex(t); loc != nil {
		t = t[loc[1]:]
	}
	t = strings.TrimPrefix(t, "DB::Exception: ")
	if i := strings.LastIndex(t, " (version "); i >= 0 && strings.HasSuffix(t, ")") {
		t = t[:i]
	}
	if i := strings.LastIndex(t, " ("); i >= 0 && strings.HasSuffix(t, ")") && isErrorName(t[i+2:len(t)-1]) {
		t = t[:i]
	}
	return "DB::Exception: " + t
}

// isErrorName reports whether s looks like a ClickHouse error code name
// (UNKNOWN_TABLE).
func isErrorName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
