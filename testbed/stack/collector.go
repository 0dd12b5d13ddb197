// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Collector is bin/otelcol-failover running a config file, with every
// address it listens on chosen free and passed through the environment
// variables of the reference configuration.
type Collector struct {
	*Process
	OTLPHTTP    string // host:port
	OTLPGRPC    string
	Health      string
	MetricsPort int
	client      *http.Client
}

// NewCollector prepares (does not start) a collector running config, wired
// to ch and kafka (either may be nil: then the address points nowhere).
func NewCollector(root, dir, config string, ch *ClickHouse, kafka *Kafka, extraEnv ...string) (*Collector, error) {
	ports := make([]int, 4)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	c := &Collector{
		OTLPHTTP:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		OTLPGRPC:    fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Health:      fmt.Sprintf("127.0.0.1:%d", ports[2]),
		MetricsPort: ports[3],
		client:      &http.Client{Timeout: 5 * time.Second},
	}
	chEndpoint, brokers := "http://127.0.0.1:1", "127.0.0.1:1"
	if ch != nil {
		chEndpoint = ch.Endpoint()
	}
	if kafka != nil {
		brokers = kafka.Addr
	}
	env := []string{
		"OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
		"OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
		"HEALTH_CHECK_ENDPOINT=" + c.Health,
		"METRICS_PORT=" + strconv.Itoa(c.MetricsPort),
		"CLICKHOUSE_ENDPOINT=" + chEndpoint,
		"KAFKA_BROKERS=" + brokers,
	}
	c.Process = &Process{
		Name:    "otelcol-failover",
		Bin:     filepath.Join(root, "bin", "otelcol-failover"),
		Args:    []string{"--config", config},
		Env:     append(env, extraEnv...),
		LogPath: filepath.Join(dir, "otelcol-failover.log"),
	}
	return c, nil
}

// StartAndWait starts the collector and waits for its health endpoint.
func (c *Collector) StartAndWait(timeout time.Duration) error {
	if _, err := c.Start(timeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		if !c.Running() {
			return false, fmt.Errorf("otelcol-failover exited; see %s", c.LogPath)
		}
		resp, err := c.client.Get("http://" + c.Health + "/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("otelcol-failover not healthy within %v: %w; see %s", timeout, err, c.LogPath)
	}
	return nil
}

// Metric sums the values of the collector's own Prometheus metric name whose
// labels contain every given label=value pair.
func (c *Collector) Metric(name string, labels ...string) (float64, error) {
	sum, _, err := c.MetricSeries(name, labels...)
	return sum, err
}

// MetricSeries is Metric that also counts the matching series, to tell a
// value of 0 from a series not yet published.
func (c *Collector) MetricSeries(name string, labels ...string) (sum float64, series int, err error) {
	resp, err := c.client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.MetricsPort))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(line, k+`="`+v+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		sum += v
		series++
	}
	return sum, series, sc.Err()
}
