// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"bytes"
	"regexp"
	"strings"
)

// insertFormatRe finds "INSERT INTO ... FORMAT <name>" at the start of a
// statement: the data of such an insert follows the format name.
var insertFormatRe = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s.*?\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)`)

// outputFormatRe finds a FORMAT clause at the end of a statement (before an
// optional SETTINGS clause and semicolon).
var outputFormatRe = regexp.MustCompile(`(?is)\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:\bSETTINGS\b[^;]*)?;?\s*$`)

// headLimit bounds how much of a request body is searched for the end of an
// INSERT statement when the statement itself comes in the body.
const headLimit = 256 << 10

// insertStatement is an INSERT whose data follows its FORMAT clause.
type insertStatement struct {
	head   string // the statement without its FORMAT clause
	format string
	data   []byte
}

// splitInsert recognises "INSERT INTO ... FORMAT X" followed by data. It
// reports ok=false for any other statement (INSERT ... VALUES and
// INSERT ... SELECT included: those are plain SQL).
//
// The query parameter and the body form one text, as in ClickHouse: the
// parameter, a newline, then the body.
func splitInsert(param string, body []byte) (insertStatement, bool) {
	if param != "" {
		loc := insertFormatRe.FindStringSubmatchIndex(param)
		if loc == nil {
			return insertStatement{}, false
		}
		st := insertStatement{head: param[:formatKeywordStart(param, loc)], format: param[loc[2]:loc[3]]}
		rest := skipDataSeparator(param[loc[1]:])
		switch {
		case rest == "":
			st.data = body
		case len(body) == 0:
			st.data = []byte(rest)
		default:
			st.data = make([]byte, 0, len(rest)+1+len(body))
			st.data = append(append(append(st.data, rest...), '\n'), body...)
		}
		return st, true
	}
	prefix := body
	if len(prefix) > headLimit {
		prefix = prefix[:headLimit]
	}
	// Only the statement part is examined: stop at the first byte that
	// cannot be SQL text, so binary data is never scanned as text.
	if i := bytes.IndexByte(prefix, 0); i >= 0 {
		prefix = prefix[:i]
	}
	text := string(prefix)
	loc := insertFormatRe.FindStringSubmatchIndex(text)
	if loc == nil {
		return insertStatement{}, false
	}
	st := insertStatement{head: text[:formatKeywordStart(text, loc)], format: text[loc[2]:loc[3]]}
	end := loc[1] + (len(text[loc[1]:]) - len(skipDataSeparator(text[loc[1]:])))
	st.data = body[end:]
	return st, true
}

// formatKeywordStart returns where the FORMAT keyword of a match begins.
func formatKeywordStart(s string, loc []int) int {
	i := strings.LastIndex(strings.ToUpper(s[:loc[2]]), "FORMAT")
	if i < 0 {
		return loc[2]
	}
	return i
}

// skipDataSeparator drops the blanks and the one line break that separate
// "FORMAT X" from its data.
func skipDataSeparator(s string) string {
	s = strings.TrimLeft(s, " \t")
	switch {
	case strings.HasPrefix(s, "\r\n"):
		return s[2:]
	case strings.HasPrefix(s, "\n"):
		return s[1:]
	}
	return s
}

// explicitFormat returns the format named by a FORMAT clause at the end of a
// statement, or "".
func explicitFormat(stmt string) string {
	tail := stmt
	if len(tail) > 4096 {
		tail = tail[len(tail)-4096:]
	}
	if m := outputFormatRe.FindStringSubmatch(tail); m != nil {
		return m[1]
	}
	return ""
}

// firstKeyword returns the statement's first word, upper-cased, skipping
// blanks, comments and opening parentheses.
func firstKeyword(stmt string) string {
	kw, _ := splitFirstKeyword(stmt)
	return kw
}

// splitFirstKeyword returns the statement's first word, upper-cased, and
// the text after it, skipping blanks, comments and opening parentheses
// before it.
func splitFirstKeyword(stmt string) (kw, rest string) {
	s := stmt
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "--"):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
				continue
			}
			return "", ""
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
				continue
			}
			return "", ""
		}
		break
	}
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
	})
	if end < 0 {
		end = len(s)
	}
	return strings.ToUpper(s[:end]), s[end:]
}

// modifyingKeywords start statements that a GET request may not run:
// ClickHouse treats GET as readonly. Anything else goes to the engine, which
// reports syntax errors itself.
var modifyingKeywords = map[string]bool{
	"INSERT": true, "CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true,
	"RENAME": true, "OPTIMIZE": true, "DELETE": true, "UPDATE": true, "ATTACH": true,
	"DETACH": true, "SYSTEM": true, "GRANT": true, "REVOKE": true, "KILL": true,
	"EXCHANGE": true, "UNDROP": true, "BACKUP": true, "RESTORE": true, "MOVE": true,
	"REPLACE": true,
}

// quoteIdent quotes a ClickHouse identifier with backquotes.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// quoteString quotes a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}
