// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"strings"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// The bits of SQL the native front end reads itself: the target of an
// INSERT whose data comes in blocks (to name its columns in the header),
// identifiers and literals, the engine's TabSeparated output.

// insertTarget is the table an INSERT writes and its column list.
type insertTarget struct {
	table   string   // as written: db.t, "db"."t", `t`
	columns []string // unquoted; none: the table's insertable columns
}

// parseInsertHead reads "INSERT INTO [TABLE] t [(c, ...)] [SETTINGS ...]".
// ok is false for anything else after the table (a SELECT) and for
// INSERT INTO FUNCTION.
func parseInsertHead(head string) (insertTarget, bool) {
	var t insertTarget
	kw, rest := chsession.SplitFirstKeyword(head)
	if kw != "INSERT" {
		return t, false
	}
	if kw, rest = chsession.SplitFirstKeyword(rest); kw != "INTO" {
		return t, false
	}
	if kw, after := chsession.SplitFirstKeyword(rest); kw == "TABLE" {
		rest = after
	} else if kw == "FUNCTION" {
		return t, false
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	name, rest, ok := cutIdent(rest)
	if !ok {
		return t, false
	}
	t.table = name
	if r := strings.TrimLeft(rest, " \t\r\n"); strings.HasPrefix(r, ".") {
		second, after, ok := cutIdent(strings.TrimLeft(r[1:], " \t\r\n"))
		if !ok {
			return t, false
		}
		t.table += "." + second
		rest = after
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	if strings.HasPrefix(rest, "(") {
		end := closingParen(rest)
		if end < 0 {
			return t, false
		}
		for _, part := range splitTopLevel(rest[1:end], ',') {
			col, ok := unquoteCompound(strings.TrimSpace(part))
			if !ok {
				return t, false
			}
			t.columns = append(t.columns, col)
		}
		rest = rest[end+1:]
	}
	if kw, _ := chsession.SplitFirstKeyword(rest); kw != "" && kw != "SETTINGS" {
		return t, false
	}
	return t, true
}

// cutIdent cuts an identifier, quoted or bare, from the start of s.
func cutIdent(s string) (ident, rest string, ok bool) {
	if s == "" {
		return "", s, false
	}
	if s[0] == '`' || s[0] == '"' {
		end, closed := chsession.SkipQuoted(s, 0)
		if !closed {
			return "", s, false
		}
		return s[:end], s[end:], true
	}
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i], s[i:], i > 0
}

// closingParen returns the index of the parenthesis that closes the one at
// the start of s, or -1.
func closingParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'', '"', '`':
			end, _ := chsession.SkipQuoted(s, i)
			i = end - 1
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTopLevel splits s at sep outside quotes and parentheses.
func splitTopLevel(s string, sep byte) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			end, _ := chsession.SkipQuoted(s, i)
			i = end - 1
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquoteCompound reads a column name as an INSERT lists it: bare
// (Events.Timestamp), quoted ("Events.Timestamp"), or quoted in parts
// (`Events`.`Timestamp`).
func unquoteCompound(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	var parts []string
	for s != "" {
		ident, rest, ok := cutIdent(s)
		if !ok {
			return "", false
		}
		name, ok := unquoteIdent(ident)
		if !ok {
			return "", false
		}
		parts = append(parts, name)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if !strings.HasPrefix(rest, ".") {
			return "", false
		}
		s = strings.TrimSpace(rest[1:])
	}
	return strings.Join(parts, "."), true
}

// unquoteIdent reads an identifier: bare, or in backquotes or double
// quotes with backslash escapes.
func unquoteIdent(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if s[0] == '`' || s[0] == '"' {
		if end, closed := chsession.SkipQuoted(s, 0); !closed || end != len(s) {
			return "", false
		}
		return unescape(s[1:len(s)-1], s[0]), true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.') {
			return "", false
		}
	}
	return s, true
}

// unquoteLiteral reads a string literal in single quotes.
func unquoteLiteral(s string) (string, bool) {
	if s == "" || s[0] != '\'' {
		return "", false
	}
	if end, closed := chsession.SkipQuoted(s, 0); !closed || end != len(s) {
		return "", false
	}
	return unescape(s[1:len(s)-1], '\''), true
}

// unescape undoes ClickHouse's escapes in quoted text: backslash
// sequences and a doubled quote.
func unescape(s string, quote byte) string {
	if !strings.ContainsAny(s, "\\"+string(quote)) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(escaped(s[i]))
		case c == quote && i+1 < len(s) && s[i+1] == quote:
			i++
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escaped is the character a backslash sequence stands for.
func escaped(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case '0':
		return 0
	}
	return c
}

// parseTSV reads the engine's TabSeparated output into rows of unescaped
// fields.
func parseTSV(out []byte) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		for i, f := range fields {
			fields[i] = unescape(f, 0)
		}
		rows = append(rows, fields)
	}
	return rows
}
