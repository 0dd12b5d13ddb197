// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// prober checks one destination in the background, every probe::interval,
// while the member takes no data (destination.needsProbe): its breaker is
// open or half-open, it is not started, or it is a standby. Results go to
// the shared breaker (probeSucceeded, probeFailed): a member that answers
// again takes the next batch at once, a standby that stops answering is
// reported before data needs it. A success also wakes a member whose start
// failed, instead of leaving it to its restart backoff.
type prober struct {
	dest     *destination
	probe    destinationProbe
	interval time.Duration
	timeout  time.Duration
	logger   *zap.Logger
	tel      *probeTelemetry
	now      func() time.Time

	// failing: the last probe failed (a warning was logged for the streak).
	failing bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newProber(d *destination, p destinationProbe, cfg ProbeConfig, logger *zap.Logger, tel *probeTelemetry) *prober {
	return &prober{dest: d, probe: p, interval: cfg.Interval, timeout: cfg.Timeout, logger: logger, tel: tel, now: time.Now, done: make(chan struct{})}
}

// start probes at once (a missing DLQ topic is reported at start), then
// every interval.
func (p *prober) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.dest.breaker.probed.Store(true)
	go func() {
		defer close(p.done)
		defer p.probe.close()
		ticker := time.NewTicker(p.interval)
		defer ticker.Stop()
		for {
			if p.dest.needsProbe(p.now(), p.interval) {
				p.once(ctx)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// once runs one probe and hands its result to the breaker.
func (p *prober) once(ctx context.Context) {
	probeCtx, cancel := context.WithTimeout(ctx, p.timeout)
	began := time.Now()
	err := p.probe.check(probeCtx)
	took := time.Since(began)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the result says nothing
	}
	p.tel.record(err == nil, took)
	if err != nil {
		p.failed(err)
		return
	}
	if p.failing {
		p.failing = false
		p.logger.Info("Member answers its probe again", zap.Duration("probe_duration", took))
	}
	p.dest.breaker.probeSucceeded()
	for _, w := range p.dest.watching() {
		if !w.started() {
			w.wake()
		}
	}
}

// failed: one warning per streak, and only when the probe is the first to
// see it: not for a breaker opened by failed batches, nor for a member whose
// start fails (each logs its own warning).
func (p *prober) failed(err error) {
	if !p.failing {
		switch {
		case p.dest.breaker.state() != stateClosed:
			p.failing = true
			p.logger.Debug("Member failed its probe", zap.Error(err))
		case p.allStarted():
			p.failing = true
			p.logger.Warn("Member failed its probe: it could not take data now; after circuit_breaker::failure_threshold failed probes it is skipped and the group's status is degraded",
				zap.Error(err))
		default:
			p.logger.Debug("Member failed its probe while starting", zap.Error(err))
		}
	}
	p.dest.breaker.probeFailed()
}

// allStarted: no instance of the member is failing to start (which logs
// its own warning).
func (p *prober) allStarted() bool {
	for _, w := range p.dest.watching() {
		if !w.started() {
			return false
		}
	}
	return true
}
