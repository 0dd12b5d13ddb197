// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"slices"
	"strconv"
	"strings"
)

// A request's settings (URL parameters over HTTP, the Query packet's over
// the native protocol) are settings of that request alone. devclickhouse has
// one engine session for all requests, so it applies them where they cannot
// outlive the request:
//
//   - an insert from a file (INSERT ... FORMAT X with its data): in the
//     SETTINGS clause of the statement it builds, query-level, nothing to
//     undo;
//   - any other statement: SET on the session before it and put back after
//     it, under the lock that serialises statements. Session-level, as the
//     context ClickHouse applies request settings to, so the statement's own
//     SETTINGS clause still wins, and settings read while parsing apply too.

// Setting is one query setting a request asks for. Values stay text, as
// ClickHouse keeps them: the engine parses them as the setting's type.
type Setting struct {
	Name, Value string
}

// ValidSettingName reports whether s can name a setting: a plain
// ClickHouse identifier. Anything else is refused as the real server
// refuses an unknown name, which also keeps the names safe to write into
// SQL.
func ValidSettingName(s string) bool {
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

// UnknownSetting is the exception for a name that is no setting.
func UnknownSetting(name string) *Exception {
	return NewException(CodeUnknownSetting, "UNKNOWN_SETTING", "Unknown setting '%s'", Truncate(name, 100))
}

// MergeSettings returns base overridden by over (the last value of a name
// wins), sorted by name.
func MergeSettings(base, over []Setting) []Setting {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	byName := make(map[string]string, len(base)+len(over))
	for _, st := range base {
		byName[st.Name] = st.Value
	}
	for _, st := range over {
		byName[st.Name] = st.Value
	}
	out := make([]Setting, 0, len(byName))
	for name, value := range byName {
		out = append(out, Setting{Name: name, Value: value})
	}
	slices.SortFunc(out, func(a, b Setting) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TakeReadonly removes readonly from the settings and reports whether it
// asks for read-only execution. devclickhouse does what it means (no
// modifying statement, code 164) instead of setting it: on the shared
// session a readonly engine would refuse the SET that restores it.
func TakeReadonly(list []Setting) ([]Setting, bool, *Exception) {
	i := slices.IndexFunc(list, func(st Setting) bool { return st.Name == "readonly" })
	if i < 0 {
		return list, false, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(list[i].Value), 10, 64)
	if err != nil {
		return nil, false, NewException(CodeBadArguments, "BAD_ARGUMENTS",
			"Invalid value '%s' of setting 'readonly': 0, 1 or 2 expected", Truncate(list[i].Value, 100))
	}
	return slices.Delete(slices.Clone(list), i, i+1), v != 0, nil
}

// SettingList renders settings as the body of a SET statement or a SETTINGS
// clause: name = 'value', ... Values are string literals whatever their
// type, as URL parameters are: the engine parses '10' or 'true' for numeric
// and boolean settings as ClickHouse parses the parameter.
func SettingList(list []Setting) string {
	var b strings.Builder
	for i, st := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(st.Name)
		b.WriteString(" = ")
		b.WriteString(QuoteString(st.Value))
	}
	return b.String()
}

// sessionChange is what Run does to the shared session around one
// statement: apply the request's settings, then put their start-up values
// back.
type sessionChange struct {
	apply, restore string
}

// newSessionChange builds the two SET statements for a request's settings.
// baseline holds the values the engine session started with where they
// differ from ClickHouse's defaults (chDB changes a few): those settings go
// back to that value, the others to DEFAULT.
func newSessionChange(list []Setting, baseline map[string]string) (*sessionChange, *Exception) {
	if len(list) == 0 {
		return nil, nil
	}
	var restore strings.Builder
	restore.WriteString("SET ")
	for i, st := range list {
		if i > 0 {
			restore.WriteString(", ")
		}
		restore.WriteString(st.Name)
		if v, ok := baseline[st.Name]; ok {
			restore.WriteString(" = ")
			restore.WriteString(QuoteString(v))
		} else {
			restore.WriteString(" = DEFAULT")
		}
	}
	ch := &sessionChange{apply: "SET " + SettingList(list), restore: restore.String()}
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
func checkRestorable(list []Setting, restoreLen int) *Exception {
	for _, st := range list {
		v := strings.TrimSpace(st.Value)
		switch st.Name {
		case "dialect":
			if !strings.EqualFold(v, "clickhouse") {
				return NewException(CodeNotImplemented, "NOT_IMPLEMENTED",
					"devclickhouse runs only dialect 'clickhouse': its requests share one engine session")
			}
		case "implicit_transaction":
			if v != "0" && !strings.EqualFold(v, "false") {
				return NewException(CodeNotImplemented, "NOT_IMPLEMENTED", "Transactions are not supported")
			}
		case "max_query_size":
			if exc := checkFloor(st.Name, v, uint64(restoreLen)); exc != nil {
				return exc
			}
		case "max_parser_depth":
			if exc := checkFloor(st.Name, v, minParserDepth); exc != nil {
				return exc
			}
		case "max_parser_backtracks":
			if exc := checkFloor(st.Name, v, minParserBacktracks); exc != nil {
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
	return NewException(CodeBadArguments, "BAD_ARGUMENTS",
		"devclickhouse sets %s only to a whole number from %d up, or 0 for no limit: its requests share one engine session, which could not be restored below that",
		name, floor)
}

// SessionlessSet turns a SET statement into a query that only checks its
// settings (names, values), ok=false for any other statement. The engine's
// session is shared by every client, so a client's SET must never change
// it; what a SET means for the client (nothing over HTTP without a
// session_id, the rest of the connection over the native protocol) is up to
// the front end. SET ROLE, SET DEFAULT ROLE and SET TRANSACTION are left
// alone.
func SessionlessSet(stmt string) (string, bool) {
	kw, rest := SplitFirstKeyword(stmt)
	if kw != "SET" {
		return stmt, false
	}
	switch next, _ := SplitFirstKeyword(rest); next {
	case "ROLE", "DEFAULT", "TRANSACTION":
		return stmt, false
	}
	return "SELECT 1 FORMAT Null SETTINGS " + rest, true
}
