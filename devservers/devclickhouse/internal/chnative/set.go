// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"fmt"
	"strings"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// parseSet reads the assignments of a SET statement (the text after SET):
// name = value, ... A string literal's value is its text; any other value
// is kept as written, and the engine parses it as the setting's type, as it
// does a URL parameter. name = DEFAULT goes in reset.
func parseSet(assignments string) (set []chsession.Setting, reset []string, err error) {
	s := strings.TrimSpace(assignments)
	s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	if s == "" {
		return nil, nil, fmt.Errorf("no setting")
	}
	for _, part := range splitTopLevel(s, ',') {
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !chsession.ValidSettingName(name) || value == "" {
			return nil, nil, fmt.Errorf("%q is not name = value", chsession.Truncate(strings.TrimSpace(part), 100))
		}
		switch {
		case strings.EqualFold(value, "DEFAULT"):
			reset = append(reset, name)
		case value[0] == '\'':
			v, ok := unquoteLiteral(value)
			if !ok {
				return nil, nil, fmt.Errorf("bad string literal for %s", name)
			}
			set = append(set, chsession.Setting{Name: name, Value: v})
		default:
			set = append(set, chsession.Setting{Name: name, Value: value})
		}
	}
	return set, reset, nil
}
