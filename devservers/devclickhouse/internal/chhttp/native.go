// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chhttp

import (
	"bytes"
	"errors"
	"io"

	"github.com/ClickHouse/ch-go/proto"
)

// reencodeNative rewrites the engine's Native output (protocol revision 0:
// no block info, no per-column serialization flag) at the revision the HTTP
// client announced with client_protocol_version, which is what ClickHouse's
// HTTP interface does and what clickhouse-go decodes.
func reencodeNative(in []byte, revision int) ([]byte, error) {
	if revision <= 0 || len(in) == 0 {
		return in, nil
	}
	r := proto.NewReader(bytes.NewReader(in))
	out := &proto.Buffer{Buf: make([]byte, 0, len(in)+len(in)/8+64)}
	for {
		var (
			block   proto.Block
			results proto.Results
		)
		if err := block.DecodeRawBlock(r, 0, results.Auto()); err != nil {
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && block.Columns == 0 {
				return out.Buf, nil
			}
			return nil, err
		}
		input := make([]proto.InputColumn, 0, len(results))
		for _, col := range results {
			data, ok := col.Data.(proto.ColInput)
			if !ok {
				return nil, errors.New("column " + col.Name + " of type " + string(col.Data.Type()) + " cannot be re-encoded")
			}
			input = append(input, proto.InputColumn{Name: col.Name, Data: data})
		}
		block.Info = proto.BlockInfo{BucketNum: -1}
		if err := block.EncodeBlock(out, revision, input); err != nil {
			return nil, err
		}
	}
}
