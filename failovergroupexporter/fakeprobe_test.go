// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

// This file holds TEST DOUBLES for the background probes: commandedProbe, a
// destinationProbe whose check succeeds or fails on command (and can be
// held, blocking the prober, to freeze the probe's results), and
// commandedProbes, the registry a harness picks members' probes from
// (withProbes). fakeWatcher stands for a group instance's member as a
// destination sees it.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// commandedProbe is a destinationProbe that fails on command. It counts its
// checks and closes. A hold makes checks block (ignoring their context)
// until release: the prober, which runs one check at a time, then reports
// nothing more, so a test can look at what the probes so far did.
type commandedProbe struct {
	name   string
	closes atomic.Int64

	mu        sync.Mutex
	err       error // nil: checks succeed
	calls     int
	gate      chan struct{} // non-nil: checks past `passes` block on it
	passes    int           // checks that still run before the hold
	held      int           // checks blocked now
	released  bool          // released for good (the test ends)
	deadlines []time.Duration
	noDL      int // checks without a deadline
}

func (p *commandedProbe) check(ctx context.Context) error {
	p.mu.Lock()
	p.calls++
	if dl, ok := ctx.Deadline(); ok {
		p.deadlines = append(p.deadlines, time.Until(dl))
	} else {
		p.noDL++
	}
	gate := p.gate
	if gate != nil && p.passes > 0 {
		p.passes--
		gate = nil
	}
	if gate != nil {
		p.held++
	}
	err := p.err
	p.mu.Unlock()
	if gate != nil {
		<-gate
		p.mu.Lock()
		p.held--
		err = p.err
		p.mu.Unlock()
	}
	return err
}

func (p *commandedProbe) close() { p.closes.Add(1) }

// fail makes the next checks fail with err; succeed makes them succeed.
func (p *commandedProbe) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *commandedProbe) succeed() { p.fail(nil) }

// succeedThenHold: the next n checks succeed, later ones block until
// release (then succeed, or do what the probe was told meanwhile).
func (p *commandedProbe) succeedThenHold(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = nil
	p.holdLocked(n)
}

// hold: checks block from now on until release.
func (p *commandedProbe) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdLocked(0)
}

func (p *commandedProbe) holdLocked(n int) {
	if p.released {
		return
	}
	if p.gate == nil {
		p.gate = make(chan struct{})
	}
	p.passes = n
}

// release lets held checks return; later checks run freely.
func (p *commandedProbe) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// releaseForGood releases, and ignores later holds (test cleanup: a held
// check would keep the prober, and so Shutdown, from ending).
func (p *commandedProbe) releaseForGood() {
	p.release()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released = true
}

// heldNow: a check is blocked on the hold (the prober is stuck in it).
func (p *commandedProbe) heldNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held > 0
}

func (p *commandedProbe) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// deadlineLeft is how much time each check's context had left when the
// check began; withoutDeadline counts checks with no deadline.
func (p *commandedProbe) deadlineLeft() (left []time.Duration, withoutDeadline int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.deadlines), p.noDL
}

// commandedProbes is the registry of a test's probes, one per member name
// (the name of testmember/<name>), created on demand, so that a test can
// command a member's probe before the group starts.
type commandedProbes struct {
	mu     sync.Mutex
	probes map[string]*commandedProbe
	// picks: how many times the group asked for each member's probe, and
	// the signals it named each time.
	picks   map[string]int
	signals map[string][][]string
}

func (r *commandedProbes) get(name string) *commandedProbe {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.probes == nil {
		r.probes = map[string]*commandedProbe{}
	}
	p := r.probes[name]
	if p == nil {
		p = &commandedProbe{name: name}
		r.probes[name] = p
	}
	return p
}

// pick is the group's probe hook (Config.probes, harness withProbes).
func (r *commandedProbes) pick(mc *MemberConfig, signals []string) (destinationProbe, string) {
	name := mc.id.Name()
	p := r.get(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.picks == nil {
		r.picks, r.signals = map[string]int{}, map[string][][]string{}
	}
	r.picks[name]++
	r.signals[name] = append(r.signals[name], slices.Clone(signals))
	return p, "commanded test probe"
}

func (r *commandedProbes) pickCount(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.picks[name]
}

func (r *commandedProbes) pickedSignals(name string) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.signals[name])
}

// releaseAll releases every probe for good.
func (r *commandedProbes) releaseAll() {
	r.mu.Lock()
	ps := make([]*commandedProbe, 0, len(r.probes))
	for _, p := range r.probes {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.releaseForGood()
	}
}

// newProbedHarnessNoStart is newHarnessNoStart with commanded probes. The
// probes are released before the group shuts down (cleanups run last
// registered first), so a held check cannot hang Shutdown.
func newProbedHarnessNoStart(t *testing.T, sig signalCase, doc string, opts ...harnessOption) (*harness, *commandedProbes) {
	t.Helper()
	probes := &commandedProbes{}
	h := newHarnessNoStart(t, sig, doc, append(opts, withProbes(probes.pick))...)
	t.Cleanup(probes.releaseAll)
	return h, probes
}

// fakeWatcher is a destinationWatcher: a group instance's member as its
// destination sees it. startedCalls counts started() calls, which the
// prober makes on every tick (needsProbe), so a test can wait for ticks.
type fakeWatcher struct {
	signal       string
	isStarted    atomic.Bool
	startedCalls atomic.Int64
	wakes        atomic.Int64
	changes      atomic.Int64
}

func (w *fakeWatcher) breakerChanged() { w.changes.Add(1) }

func (w *fakeWatcher) started() bool {
	w.startedCalls.Add(1)
	return w.isStarted.Load()
}

func (w *fakeWatcher) wake()              { w.wakes.Add(1) }
func (w *fakeWatcher) signalName() string { return w.signal }
