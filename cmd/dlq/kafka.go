// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafka.go is the Kafka side of every command: clients built from the
// collector's settings, a reachability check that fails within the timeout
// instead of retrying forever (kgo's default), partition offsets, and
// reading a range of records.

// partRange is the records a partition holds: offsets [start, end).
type partRange struct {
	partition  int32
	start, end int64
}

// session holds one client per cluster for the length of a command.
type session struct {
	timeout time.Duration
	clients map[*kafkaConn]*kgo.Client
}

func newSession(timeout time.Duration) *session {
	return &session{timeout: timeout, clients: map[*kafkaConn]*kgo.Client{}}
}

func (s *session) close() {
	for _, cl := range s.clients {
		cl.Close()
	}
}

// opts are the client options for c: its brokers, client id, TLS and SASL,
// and bounds that make a dead cluster an error, not a hang.
func (s *session) opts(ctx context.Context, c *kafkaConn) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.clientID),
		kgo.DialTimeout(s.timeout),
		kgo.RetryTimeout(s.timeout),
		kgo.RequestRetries(3),
		// Copies of poison records may be as large as the exporter's
		// records; the broker's own limit still applies.
		kgo.ProducerBatchMaxBytes(64 << 20),
		kgo.DisableClientMetrics(),
	}
	if c.tls != nil {
		tlsCfg, err := c.tls.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s::tls: %w: fix the member's tls settings", c.origin, err)
		}
		if tlsCfg != nil {
			opts = append(opts, kgo.DialTLSConfig(tlsCfg))
		}
	}
	switch c.mechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.username, Pass: c.password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.username, Pass: c.password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.username, Pass: c.password}.AsSha512Mechanism()))
	}
	return opts, nil
}

// client returns the session's client for c, checking on first use that the
// brokers answer.
func (s *session) client(ctx context.Context, c *kafkaConn) (*kgo.Client, error) {
	if cl, ok := s.clients[c]; ok {
		return cl, nil
	}
	if err := s.reachable(ctx, c); err != nil {
		return nil, err
	}
	opts, err := s.opts(ctx, c)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka brokers %v (%s): %w: fix the brokers", c.brokers, c.origin, err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, s.pingError(c, err)
	}
	s.clients[c] = cl
	return cl, nil
}

// reachable dials every broker over TCP: kgo retries a refused connection
// until its deadline and then reports only the deadline, so the dial error
// itself (connection refused, no such host) comes from here.
func (s *session) reachable(ctx context.Context, c *kafkaConn) error {
	var errs []string
	for _, b := range c.brokers {
		dctx, cancel := context.WithTimeout(ctx, s.timeout)
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", b)
		cancel()
		if err == nil {
			_ = conn.Close()
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("kafka brokers %v unreachable (%s): %s: start Kafka or point the config at it%s",
		c.brokers, c.origin, strings.Join(errs, "; "), c.hint())
}

// hint names where the brokers come from when the config reads them from
// the environment.
func (c *kafkaConn) hint() string {
	if strings.Contains(c.brokersAsWritten, "${") {
		return " (brokers are written " + c.brokersAsWritten + ": set that environment variable)"
	}
	return " (" + c.origin + "::brokers)"
}

func (s *session) pingError(c *kafkaConn, err error) error {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("kafka brokers %v rejected the SASL %s login (%s): %w: check auth::sasl mechanism, username and password",
			c.brokers, c.mechanism, c.origin, err)
	case c.mechanism != "" && errors.Is(err, io.EOF):
		// Brokers that refuse a login may just close the connection.
		return fmt.Errorf("kafka brokers %v closed the connection (%s): %w: if the SASL %s login failed, check auth::sasl username and password",
			c.brokers, c.origin, err, c.mechanism)
	case c.tls == nil && errors.Is(err, io.EOF):
		return fmt.Errorf("kafka brokers %v closed the connection (%s): %w: if they expect TLS or SASL, configure tls or auth in the member", c.brokers, c.origin, err)
	}
	return fmt.Errorf("kafka brokers %v did not answer within %v (%s): %w: check that Kafka runs there%s", c.brokers, s.timeout, c.origin, err, c.hint())
}

// errNoTopic marks a topic the brokers do not have.
var errNoTopic = errors.New("no such topic")

// partitions returns the offsets of every partition of t, in partition
// order.
func (s *session) partitions(ctx context.Context, t *topicInfo) ([]partRange, error) {
	cl, err := s.client(ctx, t.conn)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(actx, t.name)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListEndOffsets(actx, t.name)
	}
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) || (err == nil && len(ends[t.name]) == 0) {
		return nil, fmt.Errorf("topic %q (%s of %s) does not exist on brokers %v: %w: create it, or fix the member's %s::topic",
			t.name, t.role, strings.Join(t.writers, ", "), t.conn.brokers, errNoTopic, t.signal)
	}
	if err != nil {
		return nil, fmt.Errorf("offsets of topic %q on brokers %v: %w", t.name, t.conn.brokers, err)
	}
	var out []partRange
	for p, end := range ends[t.name] {
		r := partRange{partition: p, end: end.Offset}
		if st, ok := starts.Lookup(t.name, p); ok {
			r.start = st.Offset
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b partRange) int { return int(a.partition - b.partition) })
	return out, nil
}

// committed returns the offsets group committed on t's partitions.
func (s *session) committed(ctx context.Context, t *topicInfo, group string) (map[int32]int64, error) {
	cl, err := s.client(ctx, t.conn)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(actx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// The replay never ran: it has committed nothing.
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of consumer group %q: %w", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == t.name && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// read calls fn with each record of t in ranges, partition by partition
// in offset order, until fn returns false. It fails when the brokers send
// nothing for the session's timeout while records are still due.
func (s *session) read(ctx context.Context, t *topicInfo, ranges []partRange, fn func(*kgo.Record) bool) error {
	opts, err := s.opts(ctx, t.conn)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		if r.end <= r.start {
			continue
		}
		more, err := s.readPartition(ctx, t, r, opts, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *session) readPartition(ctx context.Context, t *topicInfo, r partRange, opts []kgo.Opt, fn func(*kgo.Record) bool) (bool, error) {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		t.name: {r.partition: kgo.NewOffset().At(r.start)},
	}))...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	next := r.start
	for next < r.end {
		pctx, cancel := context.WithTimeout(ctx, s.timeout)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var fetchErr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && fetchErr == nil {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			return false, fmt.Errorf("read topic %q partition %d: %w", t.name, r.partition, fetchErr)
		}
		progress := false
		stop := false
		fetches.EachRecord(func(rec *kgo.Record) {
			if stop || rec.Offset < next || rec.Offset >= r.end {
				return
			}
			progress = true
			next = rec.Offset + 1
			stop = !fn(rec)
		})
		if stop {
			return false, nil
		}
		if !progress {
			return false, fmt.Errorf("read topic %q partition %d: no record at offsets %d to %d within %v (records removed by retention or compaction?): try again, or raise --timeout",
				t.name, r.partition, next, r.end-1, s.timeout)
		}
	}
	return true, nil
}

// header returns the value of the first header key of rec, "" if none.
func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// recordBytes is the size of a record as Kafka counts it for limits: key,
// value and headers.
func recordBytes(rec *kgo.Record) int64 {
	n := len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

func isNoTopic(err error) bool { return errors.Is(err, errNoTopic) }

// joinMissing is the error for topics that do not exist, reported after
// the output of the topics that do.
func joinMissing(missing []error) error {
	return errors.Join(missing...)
}
