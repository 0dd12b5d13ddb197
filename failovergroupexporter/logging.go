// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// demotedFailures are the ERROR lines a member logs for every failed call,
// by the start of their message: exporterhelper's, and the kafka exporter's
// own. The demotion keys on their text: TestRealClickHouseConnectionRefused
// and TestRealKafkaMemberFailureLogIsDemoted fail if an upstream version
// changes it.
var demotedFailures = []string{
	"Exporting failed",                      // exporterhelper
	"kafka records export failed",           // kafka exporter, on a failed produce
	"kafka record exceeds max message size", // kafka exporter, on MESSAGE_TOO_LARGE
}

// demoteExportFailures turns the ERROR lines that members log on every
// failed call into DEBUG. During an outage they would repeat for every
// batch, while the group already logs each breaker state change once and,
// rate-limited, the batches no member took.
func demoteExportFailures() zap.Option {
	return zap.WrapCore(func(c zapcore.Core) zapcore.Core { return demoteCore{c} })
}

type demoteCore struct{ zapcore.Core }

func (c demoteCore) With(fields []zapcore.Field) zapcore.Core {
	return demoteCore{c.Core.With(fields)}
}

func (c demoteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.ErrorLevel {
		for _, prefix := range demotedFailures {
			if strings.HasPrefix(e.Message, prefix) {
				e.Level = zapcore.DebugLevel
				break
			}
		}
	}
	return c.Core.Check(e, ce)
}
