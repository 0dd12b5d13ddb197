// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/otelfailover/otelcol-failover/testbed/loadgen"
)

// Real OTLP clients, as SDKs and gateway collectors are: OTLP/HTTP with
// protobuf bodies and OTLP/gRPC, each sending one whole batch and returning
// the answer as the client sees it.

// answer is what an OTLP client got back.
type answer struct {
	proto   string     // "http" or "grpc"
	http    int        // HTTP status (http)
	code    codes.Code // gRPC status code (grpc)
	message string     // the error text the client sees
}

func (a answer) ok() bool {
	if a.proto == "http" {
		return a.http == http.StatusOK
	}
	return a.code == codes.OK
}

func (a answer) String() string {
	if a.proto == "http" {
		return fmt.Sprintf("HTTP %d %q", a.http, a.message)
	}
	return fmt.Sprintf("gRPC %s %q", a.code, a.message)
}

// exportHTTP posts data (ptrace.Traces, pmetric.Metrics or plog.Logs) to the
// collector's OTLP/HTTP endpoint.
func (e *env) exportHTTP(t *testing.T, s loadgen.Signal, data any) answer {
	t.Helper()
	body, err := marshalRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.col.OTLPHTTP+"/v1/"+string(s), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("OTLP/HTTP %s: %v", s, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	a := answer{proto: "http", http: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		// The body is a google.rpc.Status in protobuf; its message is
		// printable text within it.
		a.message = string(msg)
	}
	return a
}

// exportGRPC sends data over OTLP/gRPC.
func (e *env) exportGRPC(t *testing.T, data any) answer {
	t.Helper()
	conn, err := grpc.NewClient(e.col.OTLPGRPC,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	switch d := data.(type) {
	case ptrace.Traces:
		_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(d))
	case pmetric.Metrics:
		_, err = pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(d))
	case plog.Logs:
		_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(d))
	default:
		t.Fatalf("not a batch: %T", data)
	}
	st := status.Convert(err)
	return answer{proto: "grpc", code: st.Code(), message: st.Message()}
}

func marshalRequest(data any) ([]byte, error) {
	switch d := data.(type) {
	case ptrace.Traces:
		return ptraceotlp.NewExportRequestFromTraces(d).MarshalProto()
	case pmetric.Metrics:
		return pmetricotlp.NewExportRequestFromMetrics(d).MarshalProto()
	case plog.Logs:
		return plogotlp.NewExportRequestFromLogs(d).MarshalProto()
	}
	return nil, fmt.Errorf("not a batch: %T", data)
}

// batchOf builds a batch of signal s for run with n items whose ids are
// first, first+1, ..., each with attrs attributes.
func batchOf(s loadgen.Signal, run string, n, attrs int, first uint64) any {
	switch s {
	case loadgen.Traces:
		td := loadgen.NewTracesWithAttributes(run, n, attrs)
		loadgen.SetTraceIDs(td, first)
		return td
	case loadgen.Metrics:
		md := loadgen.NewGaugeWithAttributes(run, n, attrs)
		loadgen.SetGaugeIDs(md, first)
		return md
	default:
		ld := loadgen.NewLogsWithAttributes(run, n, attrs)
		loadgen.SetLogIDs(ld, first)
		return ld
	}
}

// encodedBytes is the size of data's OTLP request body.
func encodedBytes(data any) int {
	b, err := marshalRequest(data)
	if err != nil {
		return 0
	}
	return len(b)
}
