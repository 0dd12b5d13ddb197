// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"fmt"
	"time"
)

// untilDoneGrace is how long, after the attempt's deadline, a member's call
// is given to return its own error (its own timeout fires at the same
// moment) before the group stops waiting for it.
const untilDoneGrace = 100 * time.Millisecond

// untilDone bounds a member's call by its context even when the call itself
// is not (typesOutlivingTheirContext): the call runs on its own goroutine,
// and once ctx is done the group stops waiting for it, so the batch fails
// over (or the caller gets a retryable error) at the attempt's deadline
// instead of when a broker comes back. The call goes on in the background
// and its record may still be written later: the data is then delivered
// twice (at-least-once), never lost. Only members of those types pay for
// the goroutine: a DLQ member, on the failover path.
func untilDone[T any](consume func(context.Context, T) error) func(context.Context, T) error {
	return func(ctx context.Context, data T) error {
		done := make(chan error, 1)
		go func() { done <- consume(ctx, data) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		grace := time.NewTimer(untilDoneGrace)
		defer grace.Stop()
		select {
		case err := <-done:
			return err
		case <-grace.C:
			return fmt.Errorf("the member's call did not end by its deadline (a record sent to a broker that went away waits for the broker; it may still be written): %w", ctx.Err())
		}
	}
}
