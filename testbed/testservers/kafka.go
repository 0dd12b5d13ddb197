// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package testservers starts an in-process Kafka protocol server (franz-go
// kfake) for package tests: it needs no built binary, so component tests that
// use it pass on a fresh clone. Tests that need bin/devclickhouse live in
// testbed/e2e and run through testbed/stack.
//
// Everything is bound to 127.0.0.1 on free ports, waited for with deadlines,
// and torn down with t.Cleanup. Tests of any package in the module may use it.
package testservers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaPartitions is how many partitions StartKafka gives each seeded topic.
const KafkaPartitions = 3

// Kafka is an in-process, single-broker Kafka cluster (kfake) speaking the
// real Kafka protocol over TCP on 127.0.0.1.
type Kafka struct {
	// Addr is the broker's host:port, for `brokers: [...]` in collector
	// configs and kgo.SeedBrokers.
	Addr string

	tb      testing.TB
	topics  []string
	dataDir string
	port    int

	mu      sync.Mutex
	cluster *kfake.Cluster
}

// StartKafka starts a kfake cluster with one broker on a free port of
// 127.0.0.1 and the given topics created up front with KafkaPartitions
// partitions each (relying on auto-creation is racy: consumers may see the
// topic missing). The cluster is closed when the test ends.
//
// The cluster persists its log in a temporary directory, so Stop followed by
// Start simulates a broker outage without losing committed data.
func StartKafka(tb testing.TB, topics ...string) *Kafka {
	tb.Helper()
	k := &Kafka{tb: tb, topics: topics, dataDir: tb.TempDir()}
	if err := k.start(0); err != nil {
		tb.Fatalf("testservers: start kafka (kfake): %v", err)
	}
	tb.Cleanup(k.Close)
	return k
}

func (k *Kafka) start(port int) error {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(k.dataDir),
	}
	if len(k.topics) > 0 {
		opts = append(opts, kfake.SeedTopics(KafkaPartitions, k.topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return fmt.Errorf("kfake listens on %d addresses, want 1: %v", len(addrs), addrs)
	}
	if k.port == 0 {
		var p int
		if _, err := fmt.Sscanf(addrs[0], "127.0.0.1:%d", &p); err != nil {
			c.Close()
			return fmt.Errorf("parse kfake address %q: %w", addrs[0], err)
		}
		k.port = p
		// Written once, before StartKafka returns: Addr is then read-only,
		// so tests may read it from any goroutine.
		k.Addr = addrs[0]
	} else if addrs[0] != k.Addr {
		c.Close()
		return fmt.Errorf("kfake restarted on %s, want %s", addrs[0], k.Addr)
	}
	k.mu.Lock()
	k.cluster = c
	k.mu.Unlock()
	return nil
}

// Cluster returns the running kfake cluster (for fault injection with
// Control), or nil while stopped.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Close shuts the cluster down. It is safe to call more than once.
func (k *Kafka) Close() {
	k.mu.Lock()
	c := k.cluster
	k.cluster = nil
	k.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Stop shuts the broker down (clients see connection refused) keeping its
// data; Start brings it back on the same address.
func (k *Kafka) Stop() { k.Close() }

// Start restarts a stopped broker on the same address with the same data.
func (k *Kafka) Start() {
	k.tb.Helper()
	if k.Cluster() != nil {
		k.tb.Fatalf("testservers: kafka on %s is already running", k.Addr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := k.start(k.port)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			k.tb.Fatalf("testservers: restart kafka on port %d: %v", k.port, err)
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly after close
	}
}

// NewClient returns a franz-go client seeded with this broker, closed when
// the test ends. Pass kgo options for producing (kgo.DefaultProduceTopic) or
// consuming (kgo.ConsumeTopics, kgo.ConsumerGroup).
func (k *Kafka) NewClient(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Addr)}, opts...)...)
	if err != nil {
		tb.Fatalf("testservers: kafka client: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

func (k *Kafka) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// RecordCountE is the number of records in topic: the partitions' end
// offsets summed (the topic is never truncated in tests, so the start
// offsets are 0).
func (k *Kafka) RecordCountE(ctx context.Context, topic string) (int64, error) {
	adm, closeFn, err := k.admin()
	if err != nil {
		return 0, err
	}
	defer closeFn()
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	if err := offs.Error(); err != nil {
		return 0, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	if _, ok := offs[topic]; !ok {
		return 0, fmt.Errorf("topic %q does not exist", topic)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// RecordCount is RecordCountE failing the test on error.
func (k *Kafka) RecordCount(tb testing.TB, topic string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	n, err := k.RecordCountE(ctx, topic)
	if err != nil {
		tb.Fatalf("testservers: count records: %v", err)
	}
	return n
}

// CommittedCountE is the sum of the offsets consumer group has committed
// for topic: with every partition starting at 0, the number of records the
// group has marked done.
func (k *Kafka) CommittedCountE(ctx context.Context, group, topic string) (int64, error) {
	adm, closeFn, err := k.admin()
	if err != nil {
		return 0, err
	}
	defer closeFn()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	var n int64
	var firstErr error
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic != topic {
			return
		}
		if o.Err != nil && firstErr == nil {
			firstErr = o.Err
		}
		if o.At > 0 {
			n += o.At
		}
	})
	if firstErr != nil {
		return 0, fmt.Errorf("fetch offsets of group %q: %w", group, firstErr)
	}
	return n, nil
}

// CommittedCount is CommittedCountE failing the test on error.
func (k *Kafka) CommittedCount(tb testing.TB, group, topic string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	n, err := k.CommittedCountE(ctx, group, topic)
	if err != nil {
		tb.Fatalf("testservers: committed offsets: %v", err)
	}
	return n
}
