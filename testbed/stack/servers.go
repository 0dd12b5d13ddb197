// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQTopics and PoisonTopics are the topics of the reference configuration;
// devkafka creates both (the reference configuration does not rely on topic
// auto-creation).
var (
	DLQTopics    = []string{"otlp_spans_dlq", "otlp_metrics_dlq", "otlp_logs_dlq"}
	PoisonTopics = []string{"otlp_spans_poison", "otlp_metrics_poison", "otlp_logs_poison"}
)

// The protocols the collector's clickhouse members can speak to
// devclickhouse (ClickHouse.Protocol).
const (
	// ProtocolHTTP is the HTTP interface: an http://HOST:PORT endpoint
	// (ClickHouse's port 8123).
	ProtocolHTTP = "http"
	// ProtocolNative is ClickHouse's native TCP protocol: a tcp://HOST:PORT
	// endpoint (clickhouse-go's DSN; ClickHouse's port 9000).
	ProtocolNative = "native"
)

// Protocols are the protocols the collector can use, HTTP first.
var Protocols = []string{ProtocolHTTP, ProtocolNative}

// ClickHouse is bin/devclickhouse on fixed loopback ports (HTTP and native
// TCP) with its own data directory, so it can be stopped and started again
// at the same addresses.
type ClickHouse struct {
	*Process
	// Addr is the HTTP interface's host:port.
	Addr string
	// NativeAddr is the native protocol's host:port (--native-listen).
	NativeAddr string
	// Protocol is what the collector's clickhouse members use
	// (CollectorEndpoint): ProtocolHTTP (also when empty) or
	// ProtocolNative. Set it before NewCollector. The tests' own queries
	// (Query) always go over HTTP.
	Protocol string
	client   *http.Client
}

// NewClickHouse prepares (does not start) a devclickhouse in dir, serving
// the HTTP interface and the native protocol. Both ports are chosen here,
// once, as free ones, and passed explicitly (not as port 0): every start of
// this ClickHouse (an outage scenario stops and starts it) listens on the
// same two addresses, which the collector was given before the first one.
func NewClickHouse(root, dir string) (*ClickHouse, error) {
	var ports [2]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	native := fmt.Sprintf("127.0.0.1:%d", ports[1])
	return &ClickHouse{
		Process: &Process{
			Name: "devclickhouse",
			Bin:  filepath.Join(root, "bin", "devclickhouse"),
			Args: []string{
				"--listen", addr, "--native-listen", native,
				"--data", filepath.Join(dir, "clickhouse-data"),
			},
			ReadyPrefix: "devclickhouse ready on ",
			LogPath:     filepath.Join(dir, "devclickhouse.log"),
		},
		Addr:       addr,
		NativeAddr: native,
		client:     &http.Client{Timeout: 30 * time.Second},
	}, nil
}

// readyLine is devclickhouse's ready line (devservers/README.md).
var readyLine = regexp.MustCompile(`^devclickhouse ready on http://(\S+) data=(.+?)(?: native=tcp://(\S+))?$`)

// Start starts devclickhouse and checks, from its ready line, that it
// serves both protocols at the addresses chosen in NewClickHouse (a
// devclickhouse built before --native-listen exits at the unknown flag).
func (c *ClickHouse) Start(timeout time.Duration) (string, error) {
	line, err := c.Process.Start(timeout)
	if err != nil {
		return line, err
	}
	m := readyLine.FindStringSubmatch(line)
	switch {
	case m == nil:
		err = fmt.Errorf("devclickhouse: unexpected ready line %q", line)
	case m[3] == "":
		err = fmt.Errorf("devclickhouse: no native address in its ready line %q: rebuild it with `make devservers`", line)
	case m[1] != c.Addr || m[3] != c.NativeAddr:
		err = fmt.Errorf("devclickhouse: ready on http://%s and tcp://%s, started for %s and %s", m[1], m[3], c.Addr, c.NativeAddr)
	}
	if err != nil {
		_ = c.Stop(20 * time.Second)
		return line, err
	}
	return line, nil
}

// Endpoint is the HTTP endpoint, http://HOST:PORT.
func (c *ClickHouse) Endpoint() string { return "http://" + c.Addr }

// NativeEndpoint is the native protocol's endpoint, tcp://HOST:PORT, as the
// clickhouse exporter (clickhouse-go's DSN) takes it.
func (c *ClickHouse) NativeEndpoint() string { return "tcp://" + c.NativeAddr }

// NativeDialTimeout is the dial_timeout the collector's native endpoint
// sets: the reference configuration's attempt_timeout. clickhouse-go
// (v2.46.0) bounds a new native connection's handshake by dial_timeout
// alone (default 30 s), not by the call's context: with ClickHouse hung
// (the kernel still accepts connections), every attempt that opens a new
// connection, such as each trial batch of a half-open breaker, would hold
// its clients up to 30 s instead of attempt_timeout. Queries on pooled
// connections follow the context's deadline, and so does everything over
// HTTP. dial_timeout also bounds the wait for a free pooled connection,
// which the attempt's deadline bounds anyway.
const NativeDialTimeout = 5 * time.Second

// CollectorEndpoint is the endpoint of Protocol: what the collector gets as
// CLICKHOUSE_ENDPOINT.
func (c *ClickHouse) CollectorEndpoint() (string, error) {
	switch c.Protocol {
	case "", ProtocolHTTP:
		return c.Endpoint(), nil
	case ProtocolNative:
		return c.NativeEndpoint() + "?dial_timeout=" + NativeDialTimeout.String(), nil
	}
	return "", fmt.Errorf("clickhouse: unknown protocol %q (want %q or %q)", c.Protocol, ProtocolHTTP, ProtocolNative)
}

// Query runs sql (in the request body, so inserts of any size fit) and
// returns the TabSeparated answer, trimmed. A ClickHouse error names its
// exception code, as the server's X-ClickHouse-Exception-Code header does.
func (c *ClickHouse) Query(ctx context.Context, sql string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint()+"/", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: query %q: %s (exception code %s): %s", sql, resp.Status,
			resp.Header.Get("X-ClickHouse-Exception-Code"), strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// QueryInts runs sql returning one row of integers.
func (c *ClickHouse) QueryInts(ctx context.Context, sql string) ([]int64, error) {
	out, err := c.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	var vals []int64
	for f := range strings.FieldsSeq(out) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: %q is not a row of integers", out)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// MessageMaxBytes is devkafka's message.max.bytes: what the reference
// configuration asks of the DLQ topics (max.message.bytes of 8 MiB, as large
// as the kafka/dlq member's producer::max_message_bytes).
const MessageMaxBytes = 8 << 20

// Kafka is bin/devkafka on a fixed loopback port with the DLQ topics.
type Kafka struct {
	*Process
	Addr string
}

// NewKafka prepares (does not start) a devkafka. Its state is kept in dir so
// that it survives a restart.
func NewKafka(root, dir string, partitions int) (*Kafka, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &Kafka{
		Process: &Process{
			Name: "devkafka",
			Bin:  filepath.Join(root, "bin", "devkafka"),
			Args: []string{
				"--listen", addr, "--topics", strings.Join(append(slices.Clone(DLQTopics), PoisonTopics...), ","),
				"--partitions", strconv.Itoa(partitions), "--data", filepath.Join(dir, "kafka-data"),
				"--message-max-bytes", strconv.Itoa(MessageMaxBytes),
			},
			ReadyPrefix: "devkafka ready on ",
			LogPath:     filepath.Join(dir, "devkafka.log"),
		},
		Addr: addr,
	}, nil
}

// Without leaves topics out of those created at start and turns
// auto-creation off, so that they do not exist until created (CreateTopics).
func (k *Kafka) Without(topics ...string) {
	for i := 0; i+1 < len(k.Args); i++ {
		if k.Args[i] == "--topics" {
			keep := slices.DeleteFunc(strings.Split(k.Args[i+1], ","), func(t string) bool { return slices.Contains(topics, t) })
			k.Args[i+1] = strings.Join(keep, ",")
		}
	}
	k.Args = append(k.Args, "--auto-create-topics=false")
}

// EndOffsets sums the end offsets of every partition of topic: the number
// of records ever written to it.
func (k *Kafka) EndOffsets(ctx context.Context, topic string) (int64, error) {
	var n int64
	err := k.withAdmin(func(adm *kadm.Client) (err error) { n, err = EndOffsets(ctx, adm, topic); return err })
	return n, err
}

// Committed sums the offsets a consumer group committed on topic.
func (k *Kafka) Committed(ctx context.Context, group, topic string) (int64, error) {
	var n int64
	err := k.withAdmin(func(adm *kadm.Client) (err error) { n, err = Committed(ctx, adm, group, topic); return err })
	return n, err
}

func (k *Kafka) withAdmin(fn func(*kadm.Client) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(kadm.NewClient(cl))
}

// EndOffsets sums the end offsets of topic with an existing admin client
// (for callers that poll and keep one open).
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	if err := ends.Error(); err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// Committed sums the offsets group committed on topic with an existing
// admin client.
func Committed(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n, nil
}

// CommittedPartition is the offset group committed on one partition of
// topic (0 when none).
func (k *Kafka) CommittedPartition(ctx context.Context, group, topic string, partition int32) (int64, error) {
	var n int64
	err := k.withAdmin(func(adm *kadm.Client) error {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup(topic, partition); ok && o.Err == nil && o.At > 0 {
			n = o.At
		}
		return nil
	})
	return n, err
}

// CreateTopics creates topics with the broker's default partition count.
func (k *Kafka) CreateTopics(ctx context.Context, topics ...string) error {
	return k.withAdmin(func(adm *kadm.Client) error {
		resp, err := adm.CreateTopics(ctx, -1, -1, nil, topics...)
		if err != nil {
			return err
		}
		return resp.Error()
	})
}

// Produce writes raw records to topic (poison tests).
func (k *Kafka) Produce(ctx context.Context, topic string, values ...[]byte) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v}).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// ProduceRecords writes records as given (topic, partition, headers), with
// the manual partitioner: the poison tests put records on one partition,
// one behind the other.
func (k *Kafka) ProduceRecords(ctx context.Context, recs ...*kgo.Record) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// ReadAll reads every record of topic written so far (up to the end offsets
// when it is called), in partition order.
func (k *Kafka) ReadAll(ctx context.Context, topic string) ([]*kgo.Record, error) {
	want, err := k.EndOffsets(ctx, topic)
	if err != nil || want == 0 {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return recs, fmt.Errorf("%s: read %d of %d records: %w", topic, len(recs), want, err)
		}
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs, nil
}

// GroupAssigned reports whether consumer group is stable with every
// partition of topic assigned to a member: its consumers have joined.
func (k *Kafka) GroupAssigned(ctx context.Context, group, topic string) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, err
	}
	g, ok := described[group]
	if !ok || g.Err != nil || g.State != "Stable" {
		return false, nil
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false, err
	}
	assigned := g.AssignedPartitions()[topic]
	for p := range ends[topic] {
		if _, ok := assigned[p]; !ok {
			return false, nil
		}
	}
	return len(ends[topic]) > 0, nil
}

// GroupMembers is how many members of a Stable consumer group have
// partitions of topic assigned (0 while the group rebalances).
func (k *Kafka) GroupMembers(ctx context.Context, group, topic string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return 0, err
	}
	g, ok := described[group]
	if !ok || g.Err != nil || g.State != "Stable" {
		return 0, nil
	}
	n := 0
	for _, m := range g.Members {
		assigned, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range assigned.Topics {
			if t.Topic == topic && len(t.Partitions) > 0 {
				n++
				break
			}
		}
	}
	return n, nil
}
