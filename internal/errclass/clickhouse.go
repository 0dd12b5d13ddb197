// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package errclass

import (
	"strconv"
	"strings"

	"github.com/ClickHouse/ch-go/proto"
)

// clickHouseBadData lists the server exception codes that mean the rows
// themselves were refused. Everything else a ClickHouse server says (too many
// parts, memory limit, too many simultaneous queries, read-only table, unknown
// table while the schema is being created, network and timeout codes) is an
// outage or a misconfiguration of the destination: the data is fine.
var clickHouseBadData = map[proto.Error]bool{
	proto.ErrCannotParseText:                  true, // 6
	proto.ErrCannotParseQuotedString:          true, // 26
	proto.ErrCannotParseInputAssertionFailed:  true, // 27
	proto.ErrCannotParseDate:                  true, // 38
	proto.ErrCannotParseDatetime:              true, // 41
	proto.ErrTypeMismatch:                     true, // 53
	proto.ErrArgumentOutOfBound:               true, // 69
	proto.ErrCannotConvertType:                true, // 70
	proto.ErrCannotParseNumber:                true, // 72
	proto.ErrIncorrectData:                    true, // 117
	proto.ErrTooLargeArraySize:                true, // 128
	proto.ErrTooLargeStringSize:               true, // 131
	proto.ErrSizesOfArraysDoesntMatch:         true, // 190
	proto.ErrValueIsOutOfRangeOfDataType:      true, // 321
	proto.ErrCannotInsertNullInOrdinaryColumn: true, // 349
	proto.ErrDecimalOverflow:                  true, // 407
	proto.ErrCannotParseBool:                  true, // 467
	proto.ErrViolatedConstraint:               true, // 469
	proto.ErrCannotParseIpv4:                  true, // 675
	proto.ErrCannotParseIpv6:                  true, // 676
}

func classifyClickHouse(code int32) Verdict {
	reason := "clickhouse_" + strconv.Itoa(int(code))
	if clickHouseBadData[proto.Error(code)] {
		return Verdict{Class: Permanent, Reason: reason}
	}
	return Verdict{Class: Transient, Reason: reason}
}

// clickHouseRefusals are errors the clickhouse exporter (v0.155.0,
// pushMetricsData) returns for a batch it refuses before writing anything:
// plain errors, known only by their text. TestClickHouseExporterRefusals
// in failovergroupexporter pins them against the real exporter.
var clickHouseRefusals = []struct{ text, reason string }{
	{"metrics type is unset", "clickhouse_metrics_type_unset"},
	{"unsupported metrics type", "clickhouse_metrics_type_unsupported"},
}

// RefusedBeforeWriting reports whether err is a refusal the clickhouse
// exporter makes before it writes any of the batch (clickHouseRefusals).
func RefusedBeforeWriting(err error) bool {
	_, ok := clickHouseRefusal(err)
	return ok
}

func clickHouseRefusal(err error) (Verdict, bool) {
	msg := err.Error()
	for _, r := range clickHouseRefusals {
		if strings.Contains(msg, r.text) {
			return Verdict{Class: Permanent, Reason: r.reason}, true
		}
	}
	return Verdict{}, false
}
