// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"regexp"
	"strings"
)

// The few pieces of ClickHouse SQL that devclickhouse reads itself: it
// passes statements to the engine as they are, and only needs to know what
// kind a statement is, where an INSERT's data begins and which FORMAT it
// asks for.

// insertFormatRe finds "INSERT INTO ... FORMAT <name>" at the start of a
// statement: the data of such an insert follows the format name.
var insertFormatRe = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s.*?\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)`)

// outputFormatRe finds a FORMAT clause at the end of a statement (before an
// optional SETTINGS clause and semicolon).
var outputFormatRe = regexp.MustCompile(`(?is)(\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*))\s*(?:\bSETTINGS\b[^;]*)?;?\s*$`)

// formatTail bounds how much of the end of a statement is searched for its
// FORMAT clause.
const formatTail = 4096

// MatchInsertFormat recognises "INSERT INTO ... FORMAT X" at the start of
// s. It returns the statement before the FORMAT keyword, the format, and the
// offset in s where the data begins: after the blanks and the one line break
// that follow the format name.
func MatchInsertFormat(s string) (head, format string, dataStart int, ok bool) {
	loc := insertFormatRe.FindStringSubmatchIndex(s)
	if loc == nil {
		return "", "", 0, false
	}
	end := loc[1] + (len(s[loc[1]:]) - len(skipDataSeparator(s[loc[1]:])))
	return s[:formatKeywordStart(s, loc)], s[loc[2]:loc[3]], end, true
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

// ExplicitFormat returns the format named by a FORMAT clause at the end of a
// statement, or "".
func ExplicitFormat(stmt string) string {
	_, format := StripFormat(stmt)
	return format
}

// StripFormat removes the FORMAT clause at the end of a statement, if any,
// and returns the statement without it and the format it named. An
// optional SETTINGS clause after it stays.
func StripFormat(stmt string) (string, string) {
	off := max(0, len(stmt)-formatTail)
	m := outputFormatRe.FindStringSubmatchIndex(stmt[off:])
	if m == nil {
		return stmt, ""
	}
	return stmt[:off+m[2]] + stmt[off+m[3]:], stmt[off+m[4] : off+m[5]]
}

// FirstKeyword returns the statement's first word, upper-cased, skipping
// blanks, comments and opening parentheses.
func FirstKeyword(stmt string) string {
	kw, _ := SplitFirstKeyword(stmt)
	return kw
}

// SplitFirstKeyword returns the statement's first word, upper-cased, and
// the text after it, skipping blanks, comments and opening parentheses
// before it.
func SplitFirstKeyword(stmt string) (kw, rest string) {
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

// modifyingKeywords start statements that a read-only request may not run.
// Anything else goes to the engine, which reports syntax errors itself.
var modifyingKeywords = map[string]bool{
	"INSERT": true, "CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true,
	"RENAME": true, "OPTIMIZE": true, "DELETE": true, "UPDATE": true, "ATTACH": true,
	"DETACH": true, "SYSTEM": true, "GRANT": true, "REVOKE": true, "KILL": true,
	"EXCHANGE": true, "UNDROP": true, "BACKUP": true, "RESTORE": true, "MOVE": true,
	"REPLACE": true,
}

// IsModifying reports whether a statement changes data or schema, which
// read-only execution refuses (READONLY, 164).
func IsModifying(stmt string) bool { return modifyingKeywords[FirstKeyword(stmt)] }

// ReadonlyException is what a read-only request gets for a modifying
// statement.
func ReadonlyException(why string) *Exception {
	return NewException(CodeReadonly, "READONLY", "Cannot execute query in readonly mode%s", why)
}

// QuoteIdent quotes a ClickHouse identifier with backquotes.
func QuoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// QuoteString quotes a ClickHouse string literal.
func QuoteString(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}

// splitHeadSettings splits an INSERT head ("INSERT INTO t (a) SETTINGS
// k = v") at its SETTINGS clause: FROM INFILE must come before that clause,
// so an insert from a file moves it. The keyword counts only outside
// quotes, comments and parentheses, not after a dot (db.settings) and only
// when a "name =" follows (a table named settings).
func splitHeadSettings(head string) (prefix, settings string) {
	depth := 0
	for i := 0; i < len(head); {
		switch c := head[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(head, i)
		case strings.HasPrefix(head[i:], "--"):
			i = skipTo(head, i, "\n")
		case strings.HasPrefix(head[i:], "/*"):
			i = skipTo(head, i, "*/")
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case isWordStart(c):
			j := i
			for j < len(head) && isWordByte(head[j]) {
				j++
			}
			if depth == 0 && strings.EqualFold(head[i:j], "SETTINGS") && !afterDot(head, i) && startsAssignment(head[j:]) {
				return head[:i], strings.TrimSpace(head[j:])
			}
			i = j
		default:
			i++
		}
	}
	return head, ""
}

// skipQuoted returns the index after the quoted literal or identifier that
// starts at i, or len(s) when it does not end.
func skipQuoted(s string, i int) int {
	end, _ := SkipQuoted(s, i)
	return end
}

// SkipQuoted returns the index after the quoted literal or identifier that
// starts at i (backslash escapes, doubled quotes), and whether its closing
// quote is there; len(s) when it is not.
func SkipQuoted(s string, i int) (int, bool) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return len(s), false
}

// skipTo returns the index after the next end marker from i, or len(s).
func skipTo(s string, i int, end string) int {
	if k := strings.Index(s[i+2:], end); k >= 0 {
		return i + 2 + k + len(end)
	}
	return len(s)
}

func isWordStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isWordByte(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' }

// afterDot reports whether the word at i follows a dot (a qualified name).
func afterDot(s string, i int) bool {
	t := strings.TrimRight(s[:i], " \t\r\n")
	return strings.HasSuffix(t, ".")
}

// startsAssignment reports whether s starts with "name =" (after blanks).
func startsAssignment(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n")
	j := 0
	for j < len(s) && isWordByte(s[j]) {
		j++
	}
	return j > 0 && isWordStart(s[0]) && strings.HasPrefix(strings.TrimLeft(s[j:], " \t\r\n"), "=")
}

// Abbreviate keeps the first head and the last tail bytes of a long
// statement: the end of an insert holds the settings it ran with.
func Abbreviate(s string, head, tail int) string {
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + " ... " + s[len(s)-tail:]
}

// Truncate keeps the first n bytes of s.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
