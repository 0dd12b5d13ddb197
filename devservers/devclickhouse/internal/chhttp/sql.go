// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"bytes"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// headLimit bounds how much of a request body is searched for the end of an
// INSERT statement when the statement itself comes in the body.
const headLimit = 256 << 10

// splitInsert recognises "INSERT INTO ... FORMAT X" followed by data. It
// reports ok=false for any other statement (INSERT ... VALUES and
// INSERT ... SELECT included: those are plain SQL).
//
// The query parameter and the body form one text, as in ClickHouse: the
// parameter, a newline, then the body.
func splitInsert(param string, body []byte) (chsession.Insert, bool) {
	if param != "" {
		head, format, start, ok := chsession.MatchInsertFormat(param)
		if !ok {
			return chsession.Insert{}, false
		}
		st := chsession.Insert{Head: head, Format: format}
		rest := param[start:]
		switch {
		case rest == "":
			st.Data = body
		case len(body) == 0:
			st.Data = []byte(rest)
		default:
			st.Data = make([]byte, 0, len(rest)+1+len(body))
			st.Data = append(append(append(st.Data, rest...), '\n'), body...)
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
	head, format, start, ok := chsession.MatchInsertFormat(string(prefix))
	if !ok {
		return chsession.Insert{}, false
	}
	return chsession.Insert{Head: head, Format: format, Data: body[start:]}, true
}
