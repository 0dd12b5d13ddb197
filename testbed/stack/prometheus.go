// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Prometheus is Debian's prometheus server (`make deps` installs it) on a
// free loopback port, scraping the given targets and evaluating the given
// rule files, with its data in the caller's directory.
type Prometheus struct {
	*Process
	// Addr is host:port of its web and HTTP API.
	Addr string
	// ConfigPath is the prometheus.yml it was started with.
	ConfigPath string
	client     *http.Client
}

// PrometheusOptions configure NewPrometheus.
type PrometheusOptions struct {
	// Job is the scrape job's name (the `job` label); default
	// "otelcol-failover".
	Job string
	// Targets are host:port addresses scraped at /metrics.
	Targets []string
	// RuleFiles are loaded as they are (absolute paths).
	RuleFiles []string
	// Interval is both scrape_interval and evaluation_interval; default 1s.
	Interval time.Duration
}

// PrometheusBinary finds the prometheus server on PATH; the error says how
// to install it.
func PrometheusBinary() (string, error) {
	return systemTool("prometheus")
}

// PromtoolBinary finds promtool (Debian's prometheus package ships it).
func PromtoolBinary() (string, error) {
	return systemTool("promtool")
}

func systemTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH: run `make deps` (it installs Debian's prometheus package, which has prometheus and promtool): %w", name, err)
	}
	return p, nil
}

// NewPrometheus writes the configuration into dir and prepares (does not
// start) the server.
func NewPrometheus(dir string, opts PrometheusOptions) (*Prometheus, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	if opts.Job == "" {
		opts.Job = "otelcol-failover"
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cfg := promConfig{
		Global: promGlobal{
			ScrapeInterval:     promDuration(opts.Interval),
			ScrapeTimeout:      promDuration(opts.Interval),
			EvaluationInterval: promDuration(opts.Interval),
		},
		RuleFiles: opts.RuleFiles,
		ScrapeConfigs: []promScrapeConfig{{
			JobName:       opts.Job,
			StaticConfigs: []promStaticConfig{{Targets: opts.Targets}},
		}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &Prometheus{
		Process: &Process{
			Name: "prometheus",
			Bin:  bin,
			Args: []string{
				"--config.file=" + cfgPath,
				"--storage.tsdb.path=" + filepath.Join(dir, "prometheus-data"),
				"--web.listen-address=" + addr,
				"--log.level=info",
			},
			LogPath: filepath.Join(dir, "prometheus.log"),
		},
		Addr:       addr,
		ConfigPath: cfgPath,
		client:     &http.Client{Timeout: 10 * time.Second},
	}, nil
}

type promConfig struct {
	Global        promGlobal         `yaml:"global"`
	RuleFiles     []string           `yaml:"rule_files,omitempty"`
	ScrapeConfigs []promScrapeConfig `yaml:"scrape_configs"`
}

type promGlobal struct {
	ScrapeInterval     string `yaml:"scrape_interval"`
	ScrapeTimeout      string `yaml:"scrape_timeout"`
	EvaluationInterval string `yaml:"evaluation_interval"`
}

type promScrapeConfig struct {
	JobName       string             `yaml:"job_name"`
	StaticConfigs []promStaticConfig `yaml:"static_configs"`
}

type promStaticConfig struct {
	Targets []string `yaml:"targets"`
}

// StartAndWait starts the server and waits until /-/ready answers 200.
func (p *Prometheus) StartAndWait(timeout time.Duration) error {
	if _, err := p.Start(timeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("prometheus exited; see %s", p.LogPath)
		}
		resp, err := p.client.Get("http://" + p.Addr + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("prometheus not ready within %v: %w; see %s", timeout, err, p.LogPath)
	}
	return nil
}

// Sample is one element of an instant query's answer: the series' labels
// and its value (a scalar answer is one Sample without labels).
type Sample struct {
	Metric map[string]string
	Value  float64
}

func (s Sample) String() string {
	return fmt.Sprintf("%v %g", s.Metric, s.Value)
}

// apiResponse is the envelope of every /api/v1 answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (p *Prometheus) api(ctx context.Context, path string, q url.Values, into any) error {
	u := "http://" + p.Addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: HTTP %d, not a Prometheus API answer: %w: %.200q", path, resp.StatusCode, err, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s %v: %s: %s", path, q, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, into)
}

// Query evaluates expr now (GET /api/v1/query) and returns its samples: a
// vector's elements, or a scalar as one sample. A range vector is an error
// (no panel or alert returns one).
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := sampleValue(v.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Metric: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		f, err := sampleValue(v)
		if err != nil {
			return nil, err
		}
		return []Sample{{Metric: map[string]string{}, Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q, want vector or scalar", expr, data.ResultType)
	}
}

// sampleValue decodes [timestamp, "value"].
func sampleValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// Alert is one alert of an alerting rule (pending or firing).
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// Rule is a rule as the server evaluates it (GET /api/v1/rules). State is
// "inactive", "pending" or "firing" for alerting rules; Health is "ok",
// "err" (LastError says why) or "unknown" (not evaluated yet).
type Rule struct {
	Name      string  `json:"name"`
	Query     string  `json:"query"`
	Duration  float64 `json:"duration"`
	Type      string  `json:"type"`
	State     string  `json:"state"`
	Health    string  `json:"health"`
	LastError string  `json:"lastError"`
	Alerts    []Alert `json:"alerts"`
}

// Rules lists every loaded rule, across groups.
func (p *Prometheus) Rules(ctx context.Context) ([]Rule, error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api(ctx, "/api/v1/rules", nil, &data); err != nil {
		return nil, err
	}
	var out []Rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// AlertState is the state of the alerting rule name: "inactive", "pending"
// or "firing" (the most advanced of its alerts).
func (p *Prometheus) AlertState(ctx context.Context, name string) (string, error) {
	rules, err := p.Rules(ctx)
	if err != nil {
		return "", err
	}
	for i := range rules {
		r := &rules[i]
		if r.Type == "alerting" && r.Name == name {
			if r.Health == "err" {
				return "", fmt.Errorf("alert %s: evaluation failed: %s", name, r.LastError)
			}
			return r.State, nil
		}
	}
	return "", fmt.Errorf("no alerting rule %s loaded", name)
}

// TargetsUp reports whether every scrape target was scraped successfully
// at its last scrape (`up` is 1 for each of want targets).
func (p *Prometheus) TargetsUp(ctx context.Context, want int) (bool, error) {
	s, err := p.Query(ctx, "up")
	if err != nil {
		return false, err
	}
	up := 0
	for _, x := range s {
		if x.Value == 1 {
			up++
		}
	}
	return up == want, nil
}

// promDuration formats d as a Prometheus duration ("1s", "250ms", "5m").
func promDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
}

var promDurationPart = regexp.MustCompile(`(\d+)(ms|s|m|h|d|w|y)`)

// ParsePromDuration parses a Prometheus duration such as "5m", "1h30m" or
// "250ms" (units ms, s, m, h, d, w, y; a year is 365 days).
func ParsePromDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
	}
	var d time.Duration
	rest := s
	for rest != "" {
		m := promDurationPart.FindStringSubmatchIndex(rest)
		if len(m) < 6 || m[0] != 0 {
			return 0, fmt.Errorf("not a Prometheus duration: %q", s)
		}
		n, err := strconv.ParseInt(rest[m[2]:m[3]], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a Prometheus duration: %q: %w", s, err)
		}
		d += time.Duration(n) * units[rest[m[4]:m[5]]]
		rest = rest[m[1]:]
	}
	return d, nil
}

// rangeSelector matches a range or subquery selector, `[5m]` or `[30m:1m]`;
// offsetModifier an offset, `offset 10m`.
var (
	rangeSelector  = regexp.MustCompile(`\[([0-9a-z]+)(:([0-9a-z]*))?\]`)
	offsetModifier = regexp.MustCompile(`\boffset(\s+)(-?)([0-9a-z]+)`)
)

// RuleFile is the part of a Prometheus rule file that ScaleRuleDurations
// reads and writes.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of a rule file.
type RuleGroup struct {
	Name     string     `yaml:"name"`
	Interval string     `yaml:"interval,omitempty"`
	Rules    []RuleSpec `yaml:"rules"`
}

// RuleSpec is one recording or alerting rule as written in a rule file.
type RuleSpec struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// ReadRuleFile parses a rule file, refusing fields this package does not
// know (so that ScaleRuleDurations never drops one silently).
func ReadRuleFile(path string) (*RuleFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	var f RuleFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// ScaleRuleDurations returns a copy of the rules with time compressed by
// factor: every `for:` and every range or subquery window in an expression
// and every offset in an expression is divided by factor, so that an
// end-to-end test sees in seconds what production sees in minutes (factor
// 60: `for: 5m` becomes 5s, `[10m]` becomes `[10s]`, `offset 10m` becomes
// `offset 10s`). A window is never made shorter than minWindow, so that
// rate() still finds two scrapes in it. The expressions are otherwise the
// shipped ones.
func ScaleRuleDurations(f *RuleFile, factor float64, minWindow time.Duration) (*RuleFile, error) {
	if factor < 1 {
		return nil, fmt.Errorf("factor %v: want at least 1", factor)
	}
	scale := func(s string, floor time.Duration) (string, error) {
		d, err := ParsePromDuration(s)
		if err != nil {
			return "", err
		}
		scaled := max(time.Duration(float64(d)/factor).Round(time.Millisecond), floor)
		return promDuration(scaled), nil
	}
	out := &RuleFile{Groups: make([]RuleGroup, len(f.Groups))}
	for gi, g := range f.Groups {
		g.Rules = append([]RuleSpec(nil), g.Rules...)
		for ri := range g.Rules {
			r := &g.Rules[ri]
			if r.For != "" {
				s, err := scale(r.For, 0)
				if err != nil {
					return nil, fmt.Errorf("rule %s%s: for: %w", r.Alert, r.Record, err)
				}
				r.For = s
			}
			var exprErr error
			r.Expr = rangeSelector.ReplaceAllStringFunc(r.Expr, func(sel string) string {
				m := rangeSelector.FindStringSubmatch(sel)
				window, err := scale(m[1], minWindow)
				if err != nil {
					exprErr = err
					return sel
				}
				if m[2] == "" {
					return "[" + window + "]"
				}
				step := ""
				if m[3] != "" {
					if step, err = scale(m[3], 0); err != nil {
						exprErr = err
						return sel
					}
				}
				return "[" + window + ":" + step + "]"
			})
			r.Expr = offsetModifier.ReplaceAllStringFunc(r.Expr, func(mod string) string {
				m := offsetModifier.FindStringSubmatch(mod)
				d, err := scale(m[3], 0)
				if err != nil {
					exprErr = err
					return mod
				}
				return "offset" + m[1] + m[2] + d
			})
			if exprErr != nil {
				return nil, fmt.Errorf("rule %s%s: expr: %w", r.Alert, r.Record, exprErr)
			}
		}
		out.Groups[gi] = g
	}
	return out, nil
}

// WriteRuleFile writes f as YAML to path.
func WriteRuleFile(path string, f *RuleFile) error {
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
