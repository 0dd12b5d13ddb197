// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"slices"
	"strings"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// ClickHouse's HTTP interface treats every URL parameter that is not one of
// its own as a query setting of that request; chsession applies them to
// that request alone.

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
// refused as the real server refuses any unknown name.
func settingsFromParams(params map[string][]string) ([]chsession.Setting, *chsession.Exception) {
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
	list := make([]chsession.Setting, 0, len(names))
	for _, name := range names {
		if !chsession.ValidSettingName(name) {
			return nil, chsession.UnknownSetting(name)
		}
		values := params[name]
		list = append(list, chsession.Setting{Name: name, Value: values[len(values)-1]})
	}
	return list, nil
}
