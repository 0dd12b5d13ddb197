// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package errclass

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// chHTTP is the error clickhouse-go returns for an exception over HTTP.
func chHTTP(code int, name, msg string) error {
	return fmt.Errorf("[HTTP 500] response body: \"Code: %d. DB::Exception: %s. (%s) (version 26.7.3.1 (official build))\n\"", code, msg, name)
}

// chNative is the error clickhouse-go returns for an exception over the
// native protocol, wrapped as the clickhouse exporter wraps it.
func chNative(code int32, name, msg string) error {
	return fmt.Errorf("insert traces: %w", &chproto.Exception{Code: code, Name: "DB::Exception", Message: msg + " (" + name + ")"})
}

func TestClassify(t *testing.T) {
	refused := realConnRefused(t)
	readTimeout := realReadTimeout(t)

	tests := []struct {
		name   string
		err    error
		class  Class
		reason string
	}{
		// ClickHouse exceptions that mean bad data, over HTTP and native.
		{"http 469 violated constraint", chHTTP(469, "VIOLATED_CONSTRAINT", "Constraint `c` for table otel.otel_traces is violated"), Permanent, "clickhouse_469"},
		{"http 6 cannot parse text", chHTTP(6, "CANNOT_PARSE_TEXT", "Cannot parse string 'x' as UInt64"), Permanent, "clickhouse_6"},
		{"http 27 cannot parse input", chHTTP(27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "Cannot parse input"), Permanent, "clickhouse_27"},
		{"http 53 type mismatch", chHTTP(53, "TYPE_MISMATCH", "Type mismatch in IN or VALUES section"), Permanent, "clickhouse_53"},
		{"http 117 incorrect data", chHTTP(117, "INCORRECT_DATA", "Incorrect data"), Permanent, "clickhouse_117"},
		{"http 131 too large string", chHTTP(131, "TOO_LARGE_STRING_SIZE", "String too large"), Permanent, "clickhouse_131"},
		{"http 349 null in ordinary column", chHTTP(349, "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", "Cannot insert NULL"), Permanent, "clickhouse_349"},
		{"native 53 type mismatch", chNative(53, "TYPE_MISMATCH", "Type mismatch"), Permanent, "clickhouse_53"},
		{"native 469 violated constraint", chNative(469, "VIOLATED_CONSTRAINT", "Constraint violated"), Permanent, "clickhouse_469"},
		{"native exception not wrapped", &chproto.Exception{Code: 72, Message: "Cannot parse number"}, Permanent, "clickhouse_72"},

		// ClickHouse exceptions that mean overload or outage.
		{"http 252 too many parts", chHTTP(252, "TOO_MANY_PARTS", "Too many parts (300)"), Transient, "clickhouse_252"},
		{"http 241 memory limit", chHTTP(241, "MEMORY_LIMIT_EXCEEDED", "Memory limit (total) exceeded"), Transient, "clickhouse_241"},
		{"http 202 too many simultaneous queries", chHTTP(202, "TOO_MANY_SIMULTANEOUS_QUERIES", "Too many simultaneous queries"), Transient, "clickhouse_202"},
		{"http 81 unknown database", chHTTP(81, "UNKNOWN_DATABASE", "Database otel does not exist"), Transient, "clickhouse_81"},
		{"http 60 unknown table", chHTTP(60, "UNKNOWN_TABLE", "Table otel.otel_traces does not exist"), Transient, "clickhouse_60"},
		{"http 159 timeout exceeded", chHTTP(159, "TIMEOUT_EXCEEDED", "Timeout exceeded"), Transient, "clickhouse_159"},
		{"http 164 readonly", chHTTP(164, "READONLY", "Cannot execute query in readonly mode"), Transient, "clickhouse_164"},
		{"native 252 too many parts", chNative(252, "TOO_MANY_PARTS", "Too many parts"), Transient, "clickhouse_252"},
		{"native 241 memory limit", chNative(241, "MEMORY_LIMIT_EXCEEDED", "Memory limit exceeded"), Transient, "clickhouse_241"},
		{"clickhouse acquire conn timeout", fmt.Errorf("insert: %w", clickhouse.ErrAcquireConnTimeout), Transient, "clickhouse_acquire_conn_timeout"},
		{"text mentioning Code without DB::Exception", errors.New("Code: 469 in the body of some proxy page"), Transient, "error"},

		// Network and deadlines.
		{"real connection refused", refused, Transient, "connection_refused"},
		{"connection refused wrapped", fmt.Errorf("clickhouse [execute]:: %w", refused), Transient, "connection_refused"},
		{"connection reset", fmt.Errorf("write: %w", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}), Transient, "connection_reset"},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, Transient, "connection_reset"},
		{"context deadline", context.DeadlineExceeded, Transient, "timeout"},
		{"context deadline wrapped", fmt.Errorf("kafka produce: %w", context.DeadlineExceeded), Transient, "timeout"},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), Transient, "canceled"},
		{"real net read timeout", readTimeout, Transient, "timeout"},
		{"net error not a timeout", &net.DNSError{Err: "no such host", Name: "clickhouse", IsNotFound: true}, Transient, "network"},

		// gRPC statuses (what the OTLP gRPC exporter returns).
		{"grpc unavailable", status.Error(codes.Unavailable, "connection refused"), Transient, "grpc_Unavailable"},
		{"grpc resource exhausted", status.Error(codes.ResourceExhausted, "slow down"), Transient, "grpc_ResourceExhausted"},
		{"grpc deadline exceeded", status.Error(codes.DeadlineExceeded, "deadline"), Transient, "grpc_DeadlineExceeded"},
		{"grpc out of range is retryable in OTLP", status.Error(codes.OutOfRange, "out of range"), Transient, "grpc_OutOfRange"},
		{"grpc unknown (server failure)", status.Error(codes.Unknown, "panic in handler"), Transient, "grpc_Unknown"},
		{"grpc invalid argument", status.Error(codes.InvalidArgument, "bad span"), Permanent, "grpc_InvalidArgument"},
		{"grpc invalid argument marked permanent", consumererror.NewPermanent(status.Error(codes.InvalidArgument, "bad span")), Permanent, "grpc_InvalidArgument"},
		{"grpc unauthenticated marked permanent: member unusable, data fine", consumererror.NewPermanent(status.Error(codes.Unauthenticated, "no token")), Transient, "grpc_Unauthenticated"},
		{"grpc permission denied wrapped", fmt.Errorf("export: %w", status.Error(codes.PermissionDenied, "no")), Transient, "grpc_PermissionDenied"},
		{"otlp_http 500 as the exporter returns it", consumererror.NewPermanent(status.Error(codes.Unknown, "error exporting items, request to http://x/v1/traces responded with HTTP Status Code 500")), Transient, "grpc_Unknown"},

		// consumererror marks and OTLP statuses.
		{"permanent mark", consumererror.NewPermanent(errors.New("cannot encode")), Permanent, "permanent"},
		{"permanent mark wrapped", fmt.Errorf("push: %w", consumererror.NewPermanent(errors.New("cannot encode"))), Permanent, "permanent"},
		{"retryable", consumererror.NewRetryableError(errors.New("try later")), Transient, "retryable"},
		{"otlp http 400", consumererror.NewOTLPHTTPError(errors.New("bad request"), 400), Permanent, "http_400"},
		{"otlp http 413", consumererror.NewOTLPHTTPError(errors.New("too large"), 413), Permanent, "http_413"},
		{"otlp http 503", consumererror.NewOTLPHTTPError(errors.New("unavailable"), 503), Transient, "retryable"},
		{"otlp http 429", consumererror.NewOTLPHTTPError(errors.New("throttled"), 429), Transient, "retryable"},
		{"otlp http 401", consumererror.NewOTLPHTTPError(errors.New("unauthorized"), 401), Transient, "error"},
		{"otlp grpc invalid argument", consumererror.NewOTLPGRPCError(errors.New("bad"), status.New(codes.InvalidArgument, "bad")), Permanent, "http_400"},
		{"otlp grpc unavailable", consumererror.NewOTLPGRPCError(errors.New("down"), status.New(codes.Unavailable, "down")), Transient, "retryable"},
		{"otlp grpc status as the error itself", consumererror.NewOTLPGRPCError(status.Error(codes.InvalidArgument, "bad"), status.New(codes.InvalidArgument, "bad")), Permanent, "grpc_InvalidArgument"},

		// Partial success wraps the cause with the failed subset.
		{"partial success, bad data", consumererror.NewTraces(chHTTP(53, "TYPE_MISMATCH", "Type mismatch"), ptrace.NewTraces()), Permanent, "clickhouse_53"},
		{"partial success, outage", consumererror.NewTraces(refused, ptrace.NewTraces()), Transient, "connection_refused"},

		// Specific knowledge wins over a generic permanent mark.
		{"clickhouse overload marked permanent", consumererror.NewPermanent(chHTTP(252, "TOO_MANY_PARTS", "Too many parts")), Transient, "clickhouse_252"},
		{"connection refused marked permanent", consumererror.NewPermanent(refused), Transient, "connection_refused"},
		{"joined errors, one bad data", errors.Join(errors.New("first"), chNative(53, "TYPE_MISMATCH", "x")), Permanent, "clickhouse_53"},

		// Kafka: a record over producer::max_message_bytes, as the kafka
		// exporter wraps franz-go's error (joined, marked permanent).
		{"kafka message too large", errors.Join(consumererror.NewPermanent(fmt.Errorf("error exporting to topic %q: %w", "otlp_spans_dlq", fmt.Errorf("record size 2034 exceeds max 1000: %w", kerr.MessageTooLarge)))), Permanent, "too_large"},
		{"kafka unknown topic is an outage", fmt.Errorf("error exporting to topic %q: %w", "x", kerr.UnknownTopicOrPartition), Transient, "kafka_unknown_topic_or_partition"},
		{"kafka authorization marked permanent: destination unusable, data fine", consumererror.NewPermanent(fmt.Errorf("error exporting to topic %q: %w", "x", kerr.TopicAuthorizationFailed)), Transient, "kafka_topic_authorization_failed"},
		{"kafka invalid record: bad data", consumererror.NewPermanent(fmt.Errorf("error exporting to topic %q: %w", "x", kerr.InvalidRecord)), Permanent, "kafka_invalid_record"},
		{"kafka record list too large", consumererror.NewPermanent(kerr.RecordListTooLarge), Permanent, "too_large"},

		// The clickhouse exporter's own refusals, before it writes anything.
		{"clickhouse metric without a type", fmt.Errorf("push: %w", errors.New("metrics type is unset")), Permanent, "clickhouse_metrics_type_unset"},

		// Unknown.
		{"unknown", errors.New("something odd"), Transient, "error"},
		{"nil", nil, Transient, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Classify(tt.err)
			assert.Equal(t, tt.class, v.Class, "class of %v", tt.err)
			assert.Equal(t, tt.reason, v.Reason)
			assert.Equal(t, tt.class == Permanent, IsPermanent(tt.err))
		})
	}
}

func TestClassifyBadDataCodesArePermanent(t *testing.T) {
	for code := range clickHouseBadData {
		v := Classify(chHTTP(int(code), "X", "y"))
		assert.Equal(t, Permanent, v.Class, "code %d", code)
	}
	// Codes around them that are not bad data stay transient.
	for _, code := range []int{3, 32, 159, 164, 202, 209, 210, 241, 252, 394} {
		assert.Equal(t, Transient, Classify(chHTTP(code, "X", "y")).Class, "code %d", code)
	}
}

func TestClassString(t *testing.T) {
	assert.Equal(t, "transient", Transient.String())
	assert.Equal(t, "permanent", Permanent.String())
	assert.Equal(t, "permanent:too_large", Verdict{Class: Permanent, Reason: "too_large"}.String())
}

// realConnRefused dials a port nothing listens on.
func realConnRefused(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if c != nil {
		_ = c.Close()
	}
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	return err
}

// realReadTimeout reads from a connection whose peer never writes, past a
// read deadline.
func realReadTimeout(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	if peer := <-accepted; peer != nil {
		defer peer.Close()
	}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	return err
}
