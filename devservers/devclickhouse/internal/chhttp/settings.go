// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"slices"
	"strconv"
	"strings"
)

// ClickHouse's HTTP interface treats every URL parameter that is not one of
// its own as a query setting of that request. devclickhouse has one engine
// session for all requests, so it applies a request's settings where they
// cannot outlive the request:
//
//   - INSERT ... FORMAT X (the data in the body): in the SETTINGS clause of
//     the statement runInsert builds, query-level, nothing to undo;
//   - any other statement: SET on the session before it and put back after
//     it, under the lock that serialises statements. Session-level, as the
//     context ClickHouse applies URL settings to, so the statement's own
//     SETTINGS clause still wins, and settings read while parsing apply too.

// setting is one query setting a request asks for. Values stay text, as
// ClickHouse keeps them: the engine parses them as the setting's type.
type setting struct {
	name, value string
}

// reservedParams are the URL parameters ClickHouse's HTTP handler keeps for
// itself (HTTPHandler::processQuery, and query for the dynamic handler);
// param_* are query parameters. Neither is a setting.
var reservedParams = map[string]bool{
	"query": true, "database": true, "default_format": true,
	"compress": true, "decompress": true, "buffer_size": true, "wait_end_of_query": true,
	"user": true, "password": true, "quota_key": true, "role": true,
	"query_id": true, "stacktrace": true, "client_protocol_version": true,
	"session_id": true, "session_timeout": true, "session_check": true, "close_session": true,
}

const queryParamPrefix = "param_"

// settingsFromParams returns the settings among a request's URL parameters,
// sorted by name, the last value of a repeated name winning (ClickHouse
// applies them in order). A name that is not an identifier is no setting:
// refused as the real server refuses any unknown name, which also keeps the
// names safe to write into SQL.
func settingsFromParams(params map[string][]string) ([]setting, *Exception) {
	names := make([]string, 0, len(params))
	for name, values := range params {
		if name == "" || len(values) == 0 || reservedParams[name] || strings.HasPrefix(name, queryParamPrefix) {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	list := make([]setting, 0, len(names))
	for _, name := range names {
		if !isIdentifier(name) {
			return nil, newException(codeUnknownSetting, "UNKNOWN_SETTING", "Unknown setting '%s'", truncate(name, 100))
		}
		values := params[name]
		list = append(list, setting{name: name, value: values[len(values)-1]})
	}
	return list, nil
}

// isIdentifier reports whether s is a plain ClickHouse identifier, the form
// of every setting name.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// takeReadonly removes readonly from the settings and reports whether it
// asks for read-only execution. devclickhouse does what it means (no
// modifying statement, code 164, as for GET) instead of setting it: on the
// shared session a readonly engine would refuse the SET that restores it.
func takeReadonly(list []setting) ([]setting, bool, *Exception) {
	i := slices.IndexFunc(list, func(st setting) bool { return st.name == "readonly" })
	if i < 0 {
		return list, false, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(list[i].value), 10, 64)
	if err != nil {
		return nil, false, newException(codeBadArguments, "BAD_ARGUMENTS",
			"Invalid value '%s' of setting 'readonly': 0, 1 or 2 expected", truncate(list[i].value, 100))
	}
	return slices.Delete(slices.Clone(list), i, i+1), v != 0, nil
}

// settingList renders settings as the body of a SET statement or a SETTINGS
// clause: name = 'value', ... Values are string literals whatever their
// type, as URL parameters are: the engine parses '10' or 'true' for numeric
// and boolean settings as ClickHouse parses the parameter.
func settingList(list []setting) string {
	var b strings.Builder
	for i, st := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(st.name)
		b.WriteString(" = ")
		b.WriteString(quoteString(st.value))
	}
	return b.String()
}

// sessionChange is what run does to the shared session around one
// statement: apply the request's settings, then put their start-up values
// back.
type sessionChange struct {
	apply, restore string
}

// newSessionChange builds the two SET statements for a request's settings.
// baseline holds the values the engine session started with where they
// differ from ClickHouse's defaults (chDB changes a few): those settings go
// back to that value, the others to DEFAULT.
func newSessionChange(list []setting, baseline map[string]string) (*sessionChange, *Exception) {
	if len(list) == 0 {
		return nil, nil
	}
	var restore strings.Builder
	restore.WriteString("SET ")
	for i, st := range list {
		if i > 0 {
			restore.WriteString(", ")
		}
		restore.WriteString(st.name)
		if v, ok := baseline[st.name]; ok {
			restore.WriteString(" = ")
			restore.WriteString(quoteString(v))
		} else {
			restore.WriteString(" = DEFAULT")
		}
	}
	ch := &sessionChange{apply: "SET " + settingList(list), restore: restore.String()}
	if exc := checkRestorable(list, len(ch.restore)); exc != nil {
		return nil, exc
	}
	return ch, nil
}

// Floors under the parser limits for settings applied to the session: below
// them the engine cannot parse the SET that restores the session (measured:
// a SET needs a parser depth of 6 to 8), and every later request would fail.
const (
	minParserDepth      = 32
	minParserBacktracks = 1000
)

// checkRestorable refuses the few settings that, set on the shared session,
// would make the engine refuse or misparse the SET that restores it, and
// with it every later statement: another SQL dialect, an implicit
// transaction (chDB has none, so every statement would fail), parser limits
// below what that SET needs. restoreLen is the length of that SET.
func checkRestorable(list []setting, restoreLen int) *Exception {
	for _, st := range list {
		v := strings.TrimSpace(st.value)
		switch st.name {
		case "dialect":
			if !strings.EqualFold(v, "clickhouse") {
				return newException(codeNotImplemented, "NOT_IMPLEMENTED",
					"devclickhouse runs only dialect 'clickhouse': its requests share one engine session")
			}
		case "implicit_transaction":
			if v != "0" && !strings.EqualFold(v, "false") {
				return newException(codeNotImplemented, "NOT_IMPLEMENTED", "Transactions are not supported")
			}
		case "max_query_size":
			if exc := checkFloor(st.name, v, uint64(restoreLen)); exc != nil {
				return exc
			}
		case "max_parser_depth":
			if exc := checkFloor(st.name, v, minParserDepth); exc != nil {
				return exc
			}
		case "max_parser_backtracks":
			if exc := checkFloor(st.name, v, minParserBacktracks); exc != nil {
				return exc
			}
		}
	}
	return nil
}

// checkFloor refuses a limit below floor (0, no limit, is fine). Only whole
// numbers are taken: the engine also reads forms such as 1e1 or 1Ki, which
// devclickhouse would then have to read as it does to check them.
func checkFloor(name, value string, floor uint64) *Exception {
	n, err := strconv.ParseUint(value, 10, 64)
	if err == nil && (n == 0 || n >= floor) {
		return nil
	}
	return newException(codeBadArguments, "BAD_ARGUMENTS",
		"devclickhouse sets %s only to a whole number from %d up, or 0 for no limit: its requests share one engine session, which could not be restored below that",
		name, floor)
}

// sessionlessSet turns a SET statement into a query that only checks its
// settings (names, values), ok=false for any other statement. Without a
// session_id ClickHouse applies a SET to its own request alone, so it
// changes nothing for later requests; on the shared engine session it would
// change them all. SET ROLE, SET DEFAULT ROLE and SET TRANSACTION are left
// alone.
func sessionlessSet(stmt string) (string, bool) {
	kw, rest := splitFirstKeyword(stmt)
	if kw != "SET" {
		return stmt, false
	}
	switch next, _ := splitFirstKeyword(rest); next {
	case "ROLE", "DEFAULT", "TRANSACTION":
		return stmt, false
	}
	return "SELECT 1 FORMAT Null SETTINGS " + rest, true
}

// splitHeadSettings splits an INSERT head ("INSERT INTO t (a) SETTINGS
// k = v") at its SETTINGS clause: FROM INFILE must come before that clause,
// so runInsert moves it. The keyword counts only outside quotes, comments
// and parentheses, not after a dot (db.settings) and only when a
// "name =" follows (a table named settings).
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
// starts at i (backslash escapes, doubled quotes).
func skipQuoted(s string, i int) int {
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
			return j + 1
		}
	}
	return len(s)
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
