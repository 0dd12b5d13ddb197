// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package dlqroutingconnector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/otelfailover/otelcol-failover/internal/livestate"
)

const (
	// maxHold is how long one replayed request waits for the live side
	// before it is refused as transient (the record stays uncommitted and
	// the kafka receiver retries it with its backoff). Longer than the
	// receiver's backoff, because each retry decodes the record again; a
	// held request goes on within holdPoll of the live side recovering. Not
	// much longer: each refusal counts as a transient replay failure, which
	// the alert on a DLQ that does not drain reads. A rebalance (the
	// receiver's context) or Shutdown ends the wait at once.
	maxHold = 2 * time.Second
	// holdPoll is how often a held request looks at the live side again.
	holdPoll = 50 * time.Millisecond
)

var errStopping = errors.New("the connector is shutting down")

// pacer decides when a replayed request may go to the replay pipelines: not
// while the collector's live side is failing over (hold_while_failing_over),
// and no faster than max_items_per_second. The one place of the replay's
// pacing; the routing decision does not wait anywhere else.
type pacer struct {
	id      string
	rate    float64 // items per second; 0: no limit
	hold    bool
	maxHold time.Duration
	logger  *zap.Logger

	// now and failingOver are the clock and the live side (tests replace
	// them).
	now         func() time.Time
	failingOver func(time.Time) (livestate.Source, bool)

	mu   sync.Mutex
	next time.Time // when the next request may start (rate limit)

	held atomic.Bool // a request is held: logged once per change
	stop chan struct{}
	once sync.Once
}

func newPacer(id string, cfg ReplayConfig, logger *zap.Logger) *pacer {
	return &pacer{
		id: id, rate: cfg.MaxItemsPerSecond, hold: cfg.HoldWhileFailingOver, maxHold: maxHold, logger: logger,
		now: time.Now, failingOver: livestate.FailingOver,
		stop: make(chan struct{}),
	}
}

// admit waits until a replayed request of n items may go on. An error is
// transient: the request goes back to the receiver, uncommitted.
func (p *pacer) admit(ctx context.Context, n int) error {
	if p.hold {
		if err := p.waitForLive(ctx); err != nil {
			return err
		}
	}
	if p.rate > 0 {
		return p.waitForRate(ctx, n)
	}
	return nil
}

// waitForLive holds the request while a live group of this collector is
// failing over, for at most maxHold.
func (p *pacer) waitForLive(ctx context.Context) error {
	src, failing := p.failingOver(p.now())
	if !failing {
		if p.held.CompareAndSwap(true, false) {
			p.logger.Info("Replay resumes: the live side takes its data again")
		}
		return nil
	}
	if p.held.CompareAndSwap(false, true) {
		p.logger.Info("Replay held back while a live group fails over (replay::hold_while_failing_over)",
			zap.String("live_group", src.Name()))
	}
	deadline := p.now().Add(p.maxHold)
	t := time.NewTicker(holdPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stop:
			return errStopping
		case <-t.C:
		}
		now := p.now()
		if src, failing = p.failingOver(now); !failing {
			if p.held.CompareAndSwap(true, false) {
				p.logger.Info("Replay resumes: the live side takes its data again")
			}
			return nil
		}
		if !now.Before(deadline) {
			return fmt.Errorf("dlq_routing %q: replay held back while %s fails over (replay::hold_while_failing_over); the record stays in the DLQ and is retried", p.id, src.Name())
		}
	}
}

// waitForRate spaces requests so that items go on at no more than rate per
// second, over every partition of this connector: a request starts when the
// previous one's share of time has passed.
func (p *pacer) waitForRate(ctx context.Context, n int) error {
	wait := p.reserve(n)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return errStopping
	}
}

// reserve books the next slot for n items and returns how long to wait for
// it. An idle connector starts at once: no credit is saved up while idle.
func (p *pacer) reserve(n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	start := p.next
	if start.Before(now) {
		start = now
	}
	p.next = start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	return start.Sub(now)
}

// shutdown ends every wait.
func (p *pacer) shutdown() { p.once.Do(func() { close(p.stop) }) }
