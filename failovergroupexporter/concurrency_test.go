// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Many goroutines call the group while members flip between failing,
// partly failing and succeeding, and breakers open, probe and close (real
// clock). The last member is always healthy. Every item must be accepted by
// exactly one member: none dropped, none delivered twice by the group.
// Run under -race.
func TestConcurrentBatchesDeliveredExactlyOnce(t *testing.T) {
	forEachSignal(t, func(t *testing.T, sig signalCase) {
		h := newHarness(t, sig, `
members:
  - testmember/a:
  - testmember/b:
  - testmember/c:
attempt_timeout: 1s
circuit_breaker:
  failure_threshold: 2
  open_duration: 2ms
  backoff_multiplier: 2
  max_open_duration: 8ms
  success_threshold: 2
`)
		var phase atomic.Int64
		a, b, c := h.member("a"), h.member("b"), h.member("c")
		a.set(func(_ context.Context, ids []string) result {
			switch phase.Load() % 4 {
			case 0:
				return fail(errRefused)
			case 1:
				return partial(ids[len(ids)-1]) // the last item fails
			case 2:
				return fail(errBadData)
			default:
				return succeed()
			}
		})
		b.set(func(context.Context, []string) result {
			if phase.Load()%3 == 0 {
				return fail(errRefused)
			}
			return succeed()
		})
		c.always(succeed())

		// Flip the members' behavior while batches flow.
		stop := make(chan struct{})
		flipped := make(chan struct{})
		go func() {
			defer close(flipped)
			tick := time.NewTicker(200 * time.Microsecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					phase.Add(1)
				}
			}
		}()

		const workers, batches, perBatch = 8, 150, 3
		var (
			wg      sync.WaitGroup
			errsMu  sync.Mutex
			errs    []error
			sentIDs []string
		)
		for w := range workers {
			wg.Go(func() {
				for i := range batches {
					batch := make([]string, perBatch)
					for j := range batch {
						batch[j] = fmt.Sprintf("w%d-b%d-i%d", w, i, j)
					}
					err := h.send(batch...)
					errsMu.Lock()
					sentIDs = append(sentIDs, batch...)
					if err != nil {
						errs = append(errs, err)
					}
					errsMu.Unlock()
				}
			})
		}
		wg.Wait()
		close(stop)
		<-flipped

		require.Empty(t, errs, "the last member is always healthy: no batch fails")
		var accepted []string
		for _, m := range []*testMember{a, b, c} {
			accepted = append(accepted, m.acceptedIDs()...)
		}
		sort.Strings(accepted)
		sort.Strings(sentIDs)
		require.Len(t, sentIDs, workers*batches*perBatch)
		assert.Equal(t, sentIDs, accepted, "every item accepted by exactly one member")
		for i := 1; i < len(accepted); i++ {
			if accepted[i] == accepted[i-1] {
				t.Fatalf("item %s delivered twice", accepted[i])
			}
		}
		// The breakers did move.
		assert.Positive(t, h.sum("failover_group_skipped", memberAttr("testmember/a"), reasonAttr("breaker_open")))
		t.Logf("accepted by a=%d b=%d c=%d", len(a.acceptedIDs()), len(b.acceptedIDs()), len(c.acceptedIDs()))
	})
}
