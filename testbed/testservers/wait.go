// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package testservers

import (
	"testing"
	"time"
)

// WaitFor polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with what (and cond's last detail) in the message.
// Use it instead of bare sleeps: the condition is the thing waited for.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var detail string
	for {
		var ok bool
		ok, detail = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, detail)
		}
		<-tick.C
	}
}
