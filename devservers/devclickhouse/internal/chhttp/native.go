// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/nativeblock"
)

// reencodeNative rewrites the engine's Native output (protocol revision 0:
// no block info, no per-column serialization flag) at the revision the HTTP
// client announced with client_protocol_version, which is what ClickHouse's
// HTTP interface does and what clickhouse-go decodes.
func reencodeNative(in []byte, revision int) ([]byte, error) {
	if revision <= 0 || len(in) == 0 {
		return in, nil
	}
	out := make([]byte, 0, len(in)+len(in)/8+64)
	err := nativeblock.TranscodeAll(in, 0, revision, func(block []byte, _ nativeblock.Header) error {
		out = append(out, block...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
