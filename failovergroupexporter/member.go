package failovergroupexporter // import "github.com/otelfailover/otelcol-failover/failovergroupexporter"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
)

// instance is one created member exporter. A member whose Start failed is
// shut down and replaced by a new instance (calling Start twice on the same
// exporter leaks its connections), so a member may own several in turn.
type instance[T any] struct {
	comp    component.Component
	consume func(context.Context, T) error
	mutates bool

	shutdownOnce sync.Once
	shutdownErr  error
}

// shutdown calls the exporter's Shutdown exactly once, whatever path gets
// there first (a failed start, the group's shutdown).
func (in *instance[T]) shutdown(ctx context.Context) error {
	in.shutdownOnce.Do(func() { in.shutdownErr = in.comp.Shutdown(ctx) })
	return in.shutdownErr
}

// createFunc builds one instance of a member for the group's signal.
type createFunc[T any] func(context.Context, exporter.Factory, exporter.Settings, component.Config) (*instance[T], error)

// member supervises one member exporter: it starts it in the background,
// restarts it with backoff while Start fails, and holds its breaker.
type member[T any] struct {
	id component.ID // as configured, e.g. clickhouse/live
	// isDLQ marks a member that must never receive data replayed from a DLQ:
	// every member after the primary, and any kafka member.
	isDLQ   bool
	breaker *breaker

	cfg      MemberConfig
	settings exporter.Settings
	create   createFunc[T]
	startCfg MemberStartConfig
	// firstWait bounds how long batches wait for the member's first start
	// (attempt_timeout), counted from the group's Start.
	firstWait time.Duration
	logger    *zap.Logger
	// onAvailability is called when the member becomes ready or its start fails.
	onAvailability func()

	ready      atomic.Pointer[instance[T]]
	firstStart chan struct{} // closed once the first Start attempt has ended
	waitUntil  atomic.Int64  // UnixNano: batches wait for the first start until then

	mu        sync.Mutex
	closed    bool
	instances []*instance[T] // every instance ever created, for shutdown
	cancel    context.CancelFunc
	done      chan struct{}
}

// newInstance creates an instance and remembers it for shutdown.
func (m *member[T]) newInstance(ctx context.Context) (*instance[T], error) {
	in, err := m.create(ctx, m.cfg.factory, m.settings, m.cfg.cfg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		// The group shut down while this instance was being created.
		_ = in.shutdown(ctx)
		return nil, errors.New("the group is shutting down")
	}
	m.instances = append(m.instances, in)
	return in, nil
}

// start launches the supervisor. It never blocks on the member's own Start.
func (m *member[T]) start(host component.Host, first *instance[T]) {
	m.waitUntil.Store(time.Now().Add(m.firstWait).UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.cancel = cancel
	m.mu.Unlock()
	go func() {
		defer close(m.done)
		m.supervise(ctx, host, first)
	}()
}

func (m *member[T]) supervise(ctx context.Context, host component.Host, in *instance[T]) {
	firstDone := sync.OnceFunc(func() { close(m.firstStart) })
	defer firstDone()
	wait := m.startCfg.InitialInterval
	for attempt := 1; ; attempt++ {
		var err error
		if in == nil {
			in, err = m.newInstance(ctx)
		}
		if err == nil {
			err = m.startOnce(ctx, host, in)
		}
		if err == nil {
			m.ready.Store(in)
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
		if in != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), m.startCfg.Timeout)
			_ = in.shutdown(shutdownCtx)
			cancel()
			in = nil
		}
		m.logger.Warn("Member could not start; it is unavailable and its data goes to the next member. Retrying in the background.",
			zap.Int("start_attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		m.onAvailability()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, m.startCfg.MaxInterval)
	}
}

func (m *member[T]) startOnce(ctx context.Context, host component.Host, in *instance[T]) error {
	startCtx, cancel := context.WithTimeout(ctx, m.startCfg.Timeout)
	defer cancel()
	if err := in.comp.Start(startCtx, host); err != nil {
		return err
	}
	if err := startCtx.Err(); err != nil {
		// Start returned nil after its deadline: do not trust it.
		return fmt.Errorf("start did not finish within member_start::timeout (%v): %w", m.startCfg.Timeout, err)
	}
	return nil
}

// acquire returns the started instance, or nil if the member is not
// available. While the member's first start attempt is still running, it
// waits for it until ctx ends, but never past attempt_timeout after the
// group's Start: a member whose Start hangs must not hold up every batch
// for the whole member_start::timeout, only the first ones, once.
func (m *member[T]) acquire(ctx context.Context) *instance[T] {
	if in := m.ready.Load(); in != nil {
		return in
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

// shutdown stops the supervisor and every instance the member created, each
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
			// A Start that ignores its context: shut its instance down anyway.
		}
	}
	m.mu.Lock()
	m.closed = true
	instances := m.instances
	m.mu.Unlock()
	var errs []error
	for _, in := range instances {
		if err := in.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.id, err))
		}
	}
	return errors.Join(errs...)
}
