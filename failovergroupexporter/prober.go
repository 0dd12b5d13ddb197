// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// prober checks a member's destinations in the background, every
// probe::interval, while one of them takes no data (destination.needsProbe):
// its breaker is open or half-open, it is not started, or it is a standby.
// One check covers all of the member's destinations (a kafka member's
// topics: one metadata request). Results go to each destination's breaker
// (probeSucceeded, probeFailed): a member that answers again takes the next
// batch at once, a standby that stops answering is reported before data
// needs it. A success also wakes a member whose start failed, instead of
// leaving it to its restart backoff.
type prober struct {
	dests    []*destination
	probe    destinationProbe
	interval time.Duration
	timeout  time.Duration
	logger   *zap.Logger
	tel      *probeTelemetry
	now      func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

func newProber(dests []*destination, p destinationProbe, cfg ProbeConfig, logger *zap.Logger, tel *probeTelemetry) *prober {
	if l, ok := p.(loggingProbe); ok {
		l.setLogger(logger)
	}
	return &prober{dests: dests, probe: p, interval: cfg.Interval, timeout: cfg.Timeout, logger: logger, tel: tel, now: time.Now, done: make(chan struct{})}
}

// start probes at once (a missing DLQ topic is reported at start), then
// every interval.
func (p *prober) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, d := range p.dests {
		d.breaker.probed.Store(true)
	}
	go func() {
		defer close(p.done)
		defer p.probe.close()
		ticker := time.NewTicker(p.interval)
		defer ticker.Stop()
		for {
			if p.needed() {
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

func (p *prober) needed() bool {
	now := p.now()
	for _, d := range p.dests {
		if d.needsProbe(now, p.interval) {
			return true
		}
	}
	return false
}

// once runs one probe and hands its result to each destination's breaker.
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
	var warn []error
	for _, d := range p.dests {
		derr := errorOf(err, d.key.part)
		if derr == nil {
			p.succeeded(d, took)
		} else if d.noteProbeFailure() {
			warn = append(warn, derr)
		}
	}
	if len(warn) > 0 {
		if _, perPart := errors.AsType[partErrors](err); !perPart {
			warn = []error{err} // the same error for every part: once
		}
		p.logger.Warn("Member failed its probe: it could not take data now; after circuit_breaker::failure_threshold failed probes it is skipped and the group's status is degraded",
			zap.Error(errors.Join(warn...)))
	}
}

func (p *prober) succeeded(d *destination, took time.Duration) {
	if d.probeFailing {
		d.probeFailing = false
		p.logger.Info("Member answers its probe again", append(partField(d), zap.Duration("probe_duration", took))...)
	}
	d.breaker.probeSucceeded()
	// A destination that answers again: a start that failed against it
	// is retried now. Only then: a start that fails while the destination
	// answers (a table's DDL refused) keeps its backoff.
	if d.probeFailed {
		d.probeFailed = false
		for _, w := range d.watching() {
			if !w.started() {
				w.wake()
			}
		}
	}
}

// noteProbeFailure hands a failed probe to the breaker and says whether to warn: once
// per streak of failed probes, when the probe is the first to see the
// problem (the member is started and its breaker closed, or the probes
// themselves opened it, which is logged at INFO). A breaker opened by
// failed batches was announced already, and a member whose start fails
// logs that itself.
func (d *destination) noteProbeFailure() (warn bool) {
	d.probeFailed = true
	opened := d.breaker.probeFailed()
	if d.probeFailing {
		return false
	}
	switch {
	case opened || (d.breaker.state() == stateClosed && d.allStarted()):
		d.probeFailing = true
		return true
	case d.breaker.state() != stateClosed:
		d.probeFailing = true
	}
	return false
}

func partField(d *destination) []zap.Field {
	if d.key.part == "" {
		return nil
	}
	return []zap.Field{zap.String("topic", d.key.part)}
}
