// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package testservers

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKafkaProduceCountCommitRestart(t *testing.T) {
	k := StartKafka(t, "a", "b")
	if k.Addr == "" {
		t.Fatal("Addr is empty")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	prod := k.NewClient(t)
	for i := range 7 {
		rec := &kgo.Record{Topic: "a", Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if got := k.RecordCount(t, "a"); got != 7 {
		t.Fatalf("RecordCount(a) = %d, want 7", got)
	}
	if got := k.RecordCount(t, "b"); got != 0 {
		t.Fatalf("RecordCount(b) = %d, want 0", got)
	}
	if _, err := k.RecordCountE(ctx, "missing"); err == nil {
		t.Fatal("RecordCountE of a missing topic: want an error")
	}

	// Consume and commit 7 records in a group, then check the committed count.
	cons := k.NewClient(t, kgo.ConsumeTopics("a"), kgo.ConsumerGroup("g"), kgo.DisableAutoCommit())
	seen := 0
	for seen < 7 {
		fetches := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 7 records: %v", seen, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		seen += fetches.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := k.CommittedCount(t, "g", "a"); got != 7 {
		t.Fatalf("CommittedCount(g, a) = %d, want 7", got)
	}

	// An outage: the port refuses connections, then the broker comes back
	// on the same address with its data.
	addr := k.Addr
	k.Stop()
	if _, err := k.RecordCountE(ctxWithTimeout(t, 2*time.Second), "a"); err == nil {
		t.Fatal("RecordCountE while stopped: want an error")
	}
	k.Start()
	if k.Addr != addr {
		t.Fatalf("restarted on %s, want %s", k.Addr, addr)
	}
	if got := k.RecordCount(t, "a"); got != 7 {
		t.Fatalf("after restart RecordCount(a) = %d, want 7", got)
	}
	if got := k.CommittedCount(t, "g", "a"); got != 7 {
		t.Fatalf("after restart CommittedCount(g, a) = %d, want 7", got)
	}
}

func ctxWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestWaitForSucceedsWhenConditionTurnsTrue(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, "n to reach 3", func() (bool, string) {
		n++
		return n >= 3, strconv.Itoa(n)
	})
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
