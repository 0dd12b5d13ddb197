// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// demoteExportFailures turns the "Exporting failed..." ERROR that
// exporterhelper logs on every failed member call into DEBUG. During an
// outage that line would repeat for every batch, while the group already logs
// each breaker state change once and returns an error upstream when no member
// took the data.
func demoteExportFailures() zap.Option {
	return zap.WrapCore(func(c zapcore.Core) zapcore.Core { return demoteCore{c} })
}

type demoteCore struct{ zapcore.Core }

func (c demoteCore) With(fields []zapcore.Field) zapcore.Core {
	return demoteCore{c.Core.With(fields)}
}

func (c demoteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.ErrorLevel && strings.HasPrefix(e.Message, "Exporting failed") {
		e.Level = zapcore.DebugLevel
	}
	return c.Core.Check(e, ce)
}
