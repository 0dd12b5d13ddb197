// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	OTLPHTTP string // host:port
	OTLPGRPC string
	// Health is the liveness endpoint (HEALTH_CHECK_ENDPOINT, GET /).
	Health string
	// Ready is the readiness endpoint (READINESS_ENDPOINT, GET /ready);
	// configurations without a readiness instance ignore it.
	Ready       string
	MetricsPort int
	client      *http.Client
}

// NewCollector prepares (does not start) a collector running config, wired
// to ch and kafka (either may be nil: then the address points nowhere). The
// clickhouse endpoint it gets is that of ch.Protocol (HTTP by default).
func NewCollector(root, dir, config string, ch *ClickHouse, kafka *Kafka, extraEnv ...string) (*Collector, error) {
	ports := make([]int, 5)
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
		Ready:       fmt.Sprintf("127.0.0.1:%d", ports[4]),
		client:      &http.Client{Timeout: 5 * time.Second},
	}
	chEndpoint, brokers := "http://127.0.0.1:1", "127.0.0.1:1"
	if ch != nil {
		var err error
		if chEndpoint, err = ch.CollectorEndpoint(); err != nil {
			return nil, err
		}
	}
	if kafka != nil {
		brokers = kafka.Addr
	}
	env := []string{
		"OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
		"OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
		"HEALTH_CHECK_ENDPOINT=" + c.Health,
		"READINESS_ENDPOINT=" + c.Ready,
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

// ReadinessPath is the path of the readiness endpoint in the reference
// configuration (healthcheckv2/readiness).
const ReadinessPath = "/ready"

// HealthStatus is a healthcheckv2 answer: the HTTP status code and the JSON
// body, decoded (Components only with verbose, keyed "exporter:<id>",
// "receiver:<id>", ...; "pipeline:<id>" unscoped).
type HealthStatus struct {
	Code       int                      `json:"-"`
	Body       string                   `json:"-"`
	Healthy    bool                     `json:"healthy"`
	Status     string                   `json:"status"`
	Error      string                   `json:"error,omitempty"`
	Attributes map[string]any           `json:"attributes"`
	Components map[string]*HealthStatus `json:"components,omitempty"`
}

// Component returns the entry of a verbose answer for key (e.g.
// "exporter:failover_group/ingest"), searching nested levels; nil if absent.
func (h *HealthStatus) Component(key string) *HealthStatus {
	if h == nil {
		return nil
	}
	if c, ok := h.Components[key]; ok {
		return c
	}
	for _, c := range h.Components {
		if found := c.Component(key); found != nil {
			return found
		}
	}
	return nil
}

func (h *HealthStatus) String() string {
	if h == nil {
		return "no answer"
	}
	return fmt.Sprintf("HTTP %d %s", h.Code, h.Body)
}

// Liveness asks the liveness endpoint (GET http://Health/).
func (c *Collector) Liveness() (*HealthStatus, error) {
	return c.health("http://" + c.Health + "/")
}

// Readiness asks the readiness endpoint for one pipeline (e.g.
// "traces/ingest"; empty: the whole collector); verbose adds the components.
// A pipeline the collector does not have answers 404 with no body.
func (c *Collector) Readiness(pipeline string, verbose bool) (*HealthStatus, error) {
	q := url.Values{}
	if pipeline != "" {
		q.Set("pipeline", pipeline)
	}
	if verbose {
		q.Set("verbose", "true")
	}
	u := "http://" + c.Ready + ReadinessPath
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.health(u)
}

func (c *Collector) health(u string) (*HealthStatus, error) {
	resp, err := c.client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	h := &HealthStatus{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, h); err != nil {
			return nil, fmt.Errorf("GET %s: HTTP %d, body not healthcheckv2 JSON: %w: %q", u, resp.StatusCode, err, body)
		}
	}
	h.Code, h.Body = resp.StatusCode, string(body)
	return h, nil
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

// WaitIncrease polls the collector's metric every `every` until it rises
// above its value at the call, and returns when the rise was first seen
// (at most `every` after it happened).
func (c *Collector) WaitIncrease(ctx context.Context, every time.Duration, name string, labels ...string) (time.Time, error) {
	base, err := c.Metric(name, labels...)
	if err != nil {
		return time.Time{}, err
	}
	var seen time.Time
	err = WaitFor(ctx, every, func() (bool, error) {
		v, merr := c.Metric(name, labels...)
		if merr == nil && v > base {
			seen = time.Now()
			return true, nil
		}
		return false, merr
	})
	return seen, err
}
