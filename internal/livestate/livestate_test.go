// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package livestate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSource is a test double: a live group failing over on command.
type fakeSource struct {
	name    string
	failing atomic.Bool
}

func (f *fakeSource) Name() string               { return f.name }
func (f *fakeSource) FailingOver(time.Time) bool { return f.failing.Load() }

func TestFailingOverFollowsRegisteredSources(t *testing.T) {
	a, b := &fakeSource{name: "a"}, &fakeSource{name: "b"}
	if _, yes := FailingOver(time.Now()); yes {
		t.Fatal("failing over with no source registered")
	}
	unA, unB := Register(a), Register(b)
	if _, yes := FailingOver(time.Now()); yes {
		t.Fatal("failing over while no source is")
	}
	b.failing.Store(true)
	if s, yes := FailingOver(time.Now()); !yes || s.Name() != "b" {
		t.Fatalf("FailingOver = %v, %v; want b, true", s, yes)
	}
	unB()
	unB() // a second call does nothing
	if _, yes := FailingOver(time.Now()); yes {
		t.Fatal("an unregistered source still counts")
	}
	a.failing.Store(true)
	if s, yes := FailingOver(time.Now()); !yes || s.Name() != "a" {
		t.Fatalf("FailingOver = %v, %v; want a, true", s, yes)
	}
	unA()
	if _, yes := FailingOver(time.Now()); yes {
		t.Fatal("failing over after every source left")
	}
}

func TestRegisterWhileReading(t *testing.T) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				FailingOver(time.Now())
			}
		}
	})
	for i := range 200 {
		s := &fakeSource{name: "s"}
		s.failing.Store(i%2 == 0)
		Register(s)()
	}
	close(stop)
	wg.Wait()
	if _, yes := FailingOver(time.Now()); yes {
		t.Fatal("sources left behind")
	}
}
