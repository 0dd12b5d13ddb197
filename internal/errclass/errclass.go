// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package errclass decides whether an export error means "the destination is
// unavailable, try elsewhere or later" (Transient) or "this data will never be
// accepted" (Permanent).
//
// It is the single classifier shared by the failover_group exporter (which
// charges a member's circuit breaker only for transient errors) and the
// dlq_routing connector (which sends permanently rejected replay data to the
// poison pipelines). The contrib exporters rarely mark their errors: the
// clickhouse exporter marks nothing permanent, so ClickHouse server exception
// codes are read here.
package errclass

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	chproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is the verdict on an export error.
type Class uint8

const (
	// Transient errors mean the destination could not take the data now:
	// connection refused, timeouts, overload. The data is fine; it may
	// succeed elsewhere or later.
	Transient Class = iota
	// Permanent errors mean the destination rejected the data itself:
	// it does not parse, violates a constraint, is too large. Sending it
	// again to the same destination will fail again.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "transient"
}

// Verdict is the class of an error and a short, stable reason token suitable
// for metric attributes and DLQ headers (never the full error text, which may
// carry hostnames or user data).
type Verdict struct {
	Class  Class
	Reason string
}

// String is "<class>:<reason>", e.g. "transient:connection_refused": the
// form DLQ stamps and the failover group's upstream errors use.
func (v Verdict) String() string { return v.Class.String() + ":" + v.Reason }

// ReasonTooLarge is the reason of a record refused for its size.
const ReasonTooLarge = "too_large"

// Classified is an error that carries its own verdict: the failover group's
// upstream error, which hides its members' errors (and their marks) but
// knows how they were classified.
type Classified interface {
	error
	Verdict() Verdict
}

// Classify returns the verdict for a non-nil export error. Specific knowledge
// comes first (deadlines, network errors, ClickHouse exception codes, OTLP
// status codes) and the generic consumererror permanent mark last, so that for
// example an OTLP exporter's permanent-marked "Unauthenticated" is treated as
// the member being unusable rather than the data being bad. Anything unknown is
// Transient: parking data we do not understand is safer than dropping it.
func Classify(err error) Verdict {
	var classified Classified
	switch {
	case err == nil:
		return Verdict{Class: Transient, Reason: "none"}
	case errors.As(err, &classified):
		return classified.Verdict()
	case errors.Is(err, context.DeadlineExceeded):
		return Verdict{Class: Transient, Reason: "timeout"}
	case errors.Is(err, context.Canceled):
		return Verdict{Class: Transient, Reason: "canceled"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Verdict{Class: Transient, Reason: "connection_refused"}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Verdict{Class: Transient, Reason: "connection_reset"}
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		// A record larger than the producer or broker allows: the data
		// must be cut smaller, the destination is fine.
		return Verdict{Class: Permanent, Reason: ReasonTooLarge}
	case errors.Is(err, clickhouse.ErrAcquireConnTimeout):
		// Every connection of the pool is busy (or none can be dialed)
		// within dial_timeout: the server is slow or down.
		return Verdict{Class: Transient, Reason: "clickhouse_acquire_conn_timeout"}
	}

	if code, ok := clickHouseCode(err); ok {
		return classifyClickHouse(code)
	}
	if v, ok := clickHouseRefusal(err); ok {
		return v
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return classifyKafka(ke)
	}
	if st, ok := grpcStatus(err); ok {
		return classifyGRPC(st.Code())
	}
	if netErr, ok := errors.AsType[net.Error](err); ok {
		if netErr.Timeout() {
			return Verdict{Class: Transient, Reason: "timeout"}
		}
		return Verdict{Class: Transient, Reason: "network"}
	}
	if ce, ok := errors.AsType[*consumererror.Error](err); ok {
		// An OTLP status recorded with NewOTLPHTTPError/NewOTLPGRPCError
		// (a gRPC status is mapped to HTTP as the OTLP spec says).
		switch code := consumererror.ToHTTPStatus(ce); code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			return Verdict{Class: Permanent, Reason: "http_" + strconv.Itoa(code)}
		}
		if ce.IsRetryable() {
			return Verdict{Class: Transient, Reason: "retryable"}
		}
	}
	if consumererror.IsPermanent(err) {
		return Verdict{Class: Permanent, Reason: "permanent"}
	}
	return Verdict{Class: Transient, Reason: "error"}
}

// IsPermanent is shorthand for Classify(err).Class == Permanent.
func IsPermanent(err error) bool {
	return err != nil && Classify(err).Class == Permanent
}

// grpcStatus finds a gRPC status anywhere in the chain. status.FromError only
// looks at the outermost GRPCStatus implementation it can unwrap to, which is
// what the OTLP gRPC exporter returns (wrapped in consumererror).
func grpcStatus(err error) (*status.Status, bool) {
	var withStatus interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &withStatus) {
		return nil, false
	}
	st := withStatus.GRPCStatus()
	// Unknown is a real answer here (only status errors implement
	// GRPCStatus): a server-side failure, and what the OTLP/HTTP exporter
	// turns an HTTP 500 into. Skipping it would leave the exporter's
	// permanent mark to decide, and a broken server would never trip the
	// breaker.
	if st == nil || st.Code() == codes.OK {
		return nil, false
	}
	return st, true
}

func classifyGRPC(code codes.Code) Verdict {
	reason := "grpc_" + code.String()
	switch code {
	case codes.InvalidArgument:
		// The server parsed the request and refused its content.
		return Verdict{Class: Permanent, Reason: reason}
	default:
		// Unavailable, ResourceExhausted, DeadlineExceeded, Aborted,
		// OutOfRange and DataLoss are retryable in the OTLP spec;
		// Unauthenticated, PermissionDenied, NotFound, Unimplemented mean
		// this destination is misconfigured, not that the data is bad.
		return Verdict{Class: Transient, Reason: reason}
	}
}

// classifyKafka reads a Kafka broker error. The kafka exporter marks every
// error Kafka calls non-retriable permanent, but most of those say the
// destination is misconfigured (authorization, an unknown topic with
// auto-creation off, unsupported settings), not that the data is bad: only
// records the broker refuses for what they hold are bad data.
func classifyKafka(ke *kerr.Error) Verdict {
	reason := "kafka_" + strings.ToLower(ke.Message)
	switch ke {
	case kerr.InvalidRecord, kerr.CorruptMessage:
		return Verdict{Class: Permanent, Reason: reason}
	}
	return Verdict{Class: Transient, Reason: reason}
}

// exceptionCode matches the "Code: 469. DB::Exception: ..." text that the
// ClickHouse HTTP interface returns as the error body, which clickhouse-go
// reports as `[HTTP 500] response body: "Code: 469. ..."`.
var exceptionCode = regexp.MustCompile(`\bCode: (\d+)\. DB::Exception`)

func clickHouseCode(err error) (int32, bool) {
	if ex, ok := errors.AsType[*chproto.Exception](err); ok {
		return ex.Code, true
	}
	m := exceptionCode.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	code, convErr := strconv.ParseInt(m[1], 10, 32)
	if convErr != nil {
		return 0, false
	}
	return int32(code), true
}
