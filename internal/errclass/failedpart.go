// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package errclass

import "errors"

// FailedPart returns the part of a batch that a consumer reported it did
// not accept (the data of a consumererror.Traces, Metrics or Logs: E is one
// of those, D its pdata type), if err carries one. A partial success moves
// on, or goes to poison, with this part only.
func FailedPart[E interface {
	error
	Data() D
}, D any](err error) (D, bool) {
	if e, ok := errors.AsType[E](err); ok {
		return e.Data(), true
	}
	var zero D
	return zero, false
}
