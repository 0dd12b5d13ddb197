// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
)

// Member start: in the background, so that a destination that is down (the
// clickhouse exporter creates its schema in Start) or hangs when the
// collector starts neither stops nor delays it. A failed start is retried
// with backoff on a new exporter.

// newExporter creates an exporter and remembers it for shutdown.
func (m *member[T]) newExporter(ctx context.Context) (*memberExporter[T], error) {
	e, err := m.create(ctx, m.cfg.factory, m.settings, m.cfg.cfg)
	if err != nil {
		return nil, err
	}
	if m.outlivesContext {
		e.consume = untilDone(e.consume)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		// The group shut down while this exporter was being created.
		_ = e.shutdown(ctx)
		return nil, errors.New("the group is shutting down")
	}
	m.exporters = append(m.exporters, e)
	return e, nil
}

// start launches the supervisor. It never blocks on the member's own Start.
func (m *member[T]) start(host component.Host) {
	m.waitUntil.Store(time.Now().Add(m.firstWait).UnixNano())
	ctx, cancel := context.WithCancel(context.Background()) //nolint:gosec // G118: shutdown calls it
	m.mu.Lock()
	m.cancel = cancel
	m.mu.Unlock()
	go func() {
		defer close(m.done)
		m.supervise(ctx, host, m.first)
	}()
}

func (m *member[T]) supervise(ctx context.Context, host component.Host, exp *memberExporter[T]) {
	firstDone := sync.OnceFunc(func() { close(m.firstStart) })
	defer firstDone()
	wait := m.startCfg.InitialInterval
	for attempt := 1; ; attempt++ {
		var err error
		if exp == nil {
			exp, err = m.newExporter(ctx)
		}
		if err == nil {
			err = m.startOnce(ctx, host, exp)
		}
		if err == nil {
			m.ready.Store(exp)
			firstDone()
			if attempt > 1 {
				m.logger.Info("Member started after earlier failures; it takes data again", zap.Int("start_attempts", attempt))
			}
			m.onAvailability()
			return
		}
		firstDone()
		if ctx.Err() != nil {
			return
		}
		if exp != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), m.startCfg.Timeout)
			_ = exp.shutdown(shutdownCtx)
			cancel()
			exp = nil
		}
		m.logger.Warn("Member could not start; it is unavailable and its data goes to the next member. Retrying in the background.",
			zap.Int("start_attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		m.onAvailability()
		select { // a wake from before this attempt is stale
		case <-m.wakeCh:
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-m.wakeCh:
		}
		wait = min(2*wait, m.startCfg.MaxInterval)
	}
}

func (m *member[T]) startOnce(ctx context.Context, host component.Host, exp *memberExporter[T]) error {
	startCtx, cancel := context.WithTimeout(ctx, m.startCfg.Timeout)
	defer cancel()
	if err := exp.comp.Start(startCtx, host); err != nil {
		return err
	}
	if err := startCtx.Err(); err != nil {
		// Start returned nil after its deadline: do not trust it.
		return fmt.Errorf("start did not finish within member_start::timeout (%v): %w", m.startCfg.Timeout, err)
	}
	if m.tableSetup != nil {
		// Before the member takes its first batch, within the start's
		// time and at most tableSetupTimeout (a server that stops
		// answering right after the start must not keep the member
		// unavailable); a failure is logged, the member works without it,
		// and the step runs again at the member's next start.
		setupCtx, cancelSetup := context.WithTimeout(startCtx, tableSetupTimeout)
		m.tableSetup.run(setupCtx, m.logger)
		cancelSetup()
	}
	return nil
}

// acquire returns the started exporter, or nil if the member is not
// available. While the member's first start attempt is still running, it
// waits for it until ctx ends, but never past attempt_timeout after the
// group's Start: a member whose Start hangs must not hold up every batch
// for the whole member_start::timeout, only the first ones, once.
func (m *member[T]) acquire(ctx context.Context) *memberExporter[T] {
	if exp := m.ready.Load(); exp != nil {
		return exp
	}
	select {
	case <-m.firstStart:
		return m.ready.Load()
	default:
	}
	wait := time.Until(time.Unix(0, m.waitUntil.Load()))
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-m.firstStart:
	case <-ctx.Done():
	case <-timer.C:
	}
	return m.ready.Load()
}

// shutdown stops the supervisor and every exporter the member created, each
// exactly once, including those whose start failed or is still in flight.
func (m *member[T]) shutdown(ctx context.Context) error {
	m.mu.Lock()
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-m.done:
		case <-ctx.Done():
			// A Start that ignores its context: shut its exporter down anyway.
		}
	}
	m.mu.Lock()
	left := m.closed
	m.closed = true
	exporters := m.exporters
	m.mu.Unlock()
	if m.dest != nil && !left {
		m.dest.leave(m)
	}
	var errs []error
	for _, e := range exporters {
		if err := e.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.id, err))
		}
	}
	return errors.Join(errs...)
}
