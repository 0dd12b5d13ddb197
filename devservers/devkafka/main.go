// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Command devkafka is a local Kafka for development and tests: one broker
// speaking the Kafka protocol, from franz-go's kfake.
//
//	devkafka --listen 127.0.0.1:9092 --topics otlp_spans,otlp_spans_dlq --partitions 4
//
// It prints one line, "devkafka ready on ADDR topics=... partitions=N", when
// it accepts connections, and exits 0 on SIGTERM or SIGINT. Topics, records,
// consumer groups and committed offsets live in memory and are lost on exit,
// unless --data names a directory to keep them in.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run())
}

func run() int {
	listen := flag.String("listen", "127.0.0.1:9092", "address of the broker (port 0 picks a free port); clients are told this address")
	advertise := flag.String("advertise", "", "host:port to tell clients instead of the listen address (for --listen 0.0.0.0:PORT)")
	topics := flag.String("topics", "", "comma-separated topics to create at start")
	partitions := flag.Int("partitions", 4, "partitions of each topic created at start or automatically")
	autoCreate := flag.Bool("auto-create-topics", true, "create unknown topics when a client asks for them")
	dataDir := flag.String("data", "", "keep the cluster's state in this directory across restarts (kfake persistence); empty keeps everything in memory")
	verbose := flag.Bool("verbose", false, "log broker warnings and errors to stderr")
	maxMessageBytes := flag.Int("message-max-bytes", 1048588, "largest record batch the broker accepts, after compression (Kafka's message.max.bytes, the default of every topic's max.message.bytes)")
	flag.Parse()
	logger := log.New(os.Stderr, "devkafka: ", log.LstdFlags)

	if *partitions < 1 {
		logger.Print("--partitions must be at least 1")
		return 2
	}
	if *maxMessageBytes < 1024 {
		logger.Print("--message-max-bytes must be at least 1024")
		return 2
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		logger.Printf("--listen %q: %v", *listen, err)
		return 2
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		logger.Printf("--listen %q: bad port", *listen)
		return 2
	}
	var seed []string
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			seed = append(seed, t)
		}
	}

	// Listen before the cluster starts so a busy port fails fast, and bind
	// the host asked for (kfake itself binds 127.0.0.1).
	ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
	if err != nil {
		logger.Print(err)
		return 1
	}
	var bl net.Listener = ln
	if *advertise != "" {
		if _, _, err := net.SplitHostPort(*advertise); err != nil {
			ln.Close()
			logger.Printf("--advertise %q: %v", *advertise, err)
			return 2
		}
		bl = advertisedListener{Listener: ln, addr: advertisedAddr(*advertise)}
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		logger.Printf("warning: listening on %s; clients will be told that address, set --advertise", ln.Addr())
	}
	handed := false
	listenFn := func(network, _ string) (net.Listener, error) {
		if handed {
			return nil, errors.New("devkafka serves a single broker")
		}
		handed = true
		return bl, nil
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(listenFn),
		kfake.ClusterID("devkafka"),
		kfake.DefaultNumPartitions(*partitions),
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(*maxMessageBytes)}),
	}
	if len(seed) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), seed...))
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *verbose {
		opts = append(opts, kfake.WithLogger(kfake.BasicLogger(os.Stderr, kfake.LogLevelWarn)))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		logger.Print(err)
		return 1
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) != 1 {
		cluster.Close()
		logger.Printf("expected one broker, got %v", addrs)
		return 1
	}
	data := "memory"
	if *dataDir != "" {
		data = *dataDir
	}
	fmt.Printf("devkafka ready on %s topics=%s partitions=%d data=%s\n", addrs[0], strings.Join(seed, ","), *partitions, data)

	sig := <-sigs
	logger.Printf("%v: shutting down", sig)
	cluster.Close()
	return 0
}

// advertisedListener reports another address than the one it listens on:
// kfake tells clients its listener's address.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
