// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/nativeblock"
)

// Two kinds of failure: an exception ends a query and the connection
// serves the next one; a protocolError means the client's stream cannot be
// read further, and ends the connection after its exception is sent.

// protocolError is a fault in the client's stream.
type protocolError struct {
	exc *chsession.Exception
}

func (e *protocolError) Error() string { return e.exc.Text }

func newProtocolError(code proto.Error, format string, args ...any) error {
	return &protocolError{exc: exception(code, format, args...)}
}

// exception builds an exception raised by devclickhouse itself, named
// after its ClickHouse code.
func exception(code proto.Error, format string, args ...any) *chsession.Exception {
	return chsession.NewException(int(code), errorName(code), format, args...)
}

// errorName names a ClickHouse error code (ch-go knows them all).
func errorName(code proto.Error) string {
	if code.IsAError() {
		return code.String()
	}
	return fmt.Sprintf("UNKNOWN_%d", int(code))
}

// blockError turns a failure to read a client's Data block into the
// protocolError ClickHouse would answer with.
func blockError(err error) error {
	var (
		unsupported *nativeblock.UnsupportedError
		corrupted   *compress.CorruptedDataErr
		ne          net.Error
	)
	switch {
	case errors.As(err, &ne):
		return err // the connection's own failure: nothing to tell
	case errors.As(err, &unsupported):
		return newProtocolError(proto.ErrNotImplemented, "%v", err)
	case errors.As(err, &corrupted):
		return newProtocolError(proto.ErrChecksumDoesntMatch, "Checksum doesn't match in a compressed Data block: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newProtocolError(proto.ErrCannotReadAllData, "Cannot read all data of a Data block: %v", err)
	}
	return newProtocolError(proto.ErrIncorrectData, "Malformed Data block from client: %v", err)
}
