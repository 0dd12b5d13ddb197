// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package distribution

// Checks of the compose example (examples/compose): it cannot run here (no
// registry for the ClickHouse and Kafka images), so the test checks what can
// be checked without it: every collector configuration passes
// `otelcol-failover validate` with exactly the environment compose gives the
// service, and the pieces agree with each other (topics created, consumer
// groups shared, addresses naming compose services, replicas behind the load
// balancer).

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     yaml.Node         `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
}

// composeVar matches compose interpolation: $$, ${NAME}, ${NAME:-default},
// ${NAME-default}, $NAME.
var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate resolves compose variables as compose does for a user with no
// such variable in the shell or an .env file: every variable needs a default.
func interpolate(s string) (string, error) {
	var errs []string
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[3]
		}
		name := sub[1] + sub[4]
		errs = append(errs, name)
		return ""
	})
	if len(errs) > 0 {
		return out, fmt.Errorf("variables without a default: %v", errs)
	}
	return out, nil
}

// commandList returns a service's command as a list (compose accepts a list
// or a string).
func commandList(n yaml.Node) []string {
	var list []string
	if n.Kind == yaml.SequenceNode && n.Decode(&list) == nil {
		return list
	}
	if n.Kind == yaml.ScalarNode {
		return strings.Fields(n.Value)
	}
	return nil
}

// dependsOn returns a service's dependencies and their conditions.
func dependsOn(n yaml.Node) map[string]string {
	deps := map[string]string{}
	var list []string
	if n.Kind == yaml.SequenceNode && n.Decode(&list) == nil {
		for _, d := range list {
			deps[d] = "service_started"
		}
		return deps
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if n.Kind == yaml.MappingNode && n.Decode(&m) == nil {
		for d, c := range m {
			deps[d] = c.Condition
		}
	}
	return deps
}

// collectorConfig is what the cross-checks read from a collector config.
type collectorConfig struct {
	Receivers map[string]struct {
		GroupID string `yaml:"group_id"`
		Traces  struct {
			Topics []string `yaml:"topics"`
		} `yaml:"traces"`
		Metrics struct {
			Topics []string `yaml:"topics"`
		} `yaml:"metrics"`
		Logs struct {
			Topics []string `yaml:"topics"`
		} `yaml:"logs"`
	} `yaml:"receivers"`
	Exporters map[string]struct {
		// Each member is its `type[/name]` key (a kafka member's topics),
		// plus member options (dead_letter) beside it.
		Members []map[string]any `yaml:"members"`
	} `yaml:"exporters"`
}

// memberTopics is a kafka member's topic per signal.
func memberTopics(m any) []string {
	cfg, _ := m.(map[string]any)
	var topics []string
	for _, sig := range []string{"traces", "metrics", "logs"} {
		if s, ok := cfg[sig].(map[string]any); ok {
			if t, ok := s["topic"].(string); ok {
				topics = append(topics, t)
			}
		}
	}
	return topics
}

func isKafka(id string) bool { return id == "kafka" || strings.HasPrefix(id, "kafka/") }

// kafkaTopics returns the topics the config's kafka receivers read and its
// kafka members write, and the receivers' consumer groups.
func (c collectorConfig) kafkaTopics() (topics, groups []string) {
	add := func(list *[]string, vs ...string) {
		for _, v := range vs {
			if v != "" && !slices.Contains(*list, v) {
				*list = append(*list, v)
			}
		}
	}
	for id, r := range c.Receivers {
		if isKafka(id) {
			add(&topics, r.Traces.Topics...)
			add(&topics, r.Metrics.Topics...)
			add(&topics, r.Logs.Topics...)
			add(&groups, id+"="+r.GroupID)
		}
	}
	for _, e := range c.Exporters {
		for _, m := range e.Members {
			for id, cfg := range m {
				if isKafka(id) {
					add(&topics, memberTopics(cfg)...)
				}
			}
		}
	}
	sort.Strings(topics)
	sort.Strings(groups)
	return topics, groups
}

// configEnvVar matches the collector's ${env:NAME}, ${NAME} and their
// `:-default` forms.
var configEnvVar = regexp.MustCompile(`\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

func TestComposeExample(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "examples", "compose")
	raw, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose composeFile
	if err = yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, want := range []string{"clickhouse", "kafka", "kafka-init", "lb"} {
		if _, ok := compose.Services[want]; !ok {
			t.Errorf("compose.yaml has no %q service", want)
		}
	}
	for _, s := range []struct{ name, image string }{{"clickhouse", "clickhouse/clickhouse-server:"}, {"kafka", "apache/kafka:"}} {
		if img := compose.Services[s.name].Image; !strings.HasPrefix(img, s.image) {
			t.Errorf("service %s runs %q, want the real %s* image", s.name, img, s.image)
		}
	}

	// The collectors: services running the image `make image` builds.
	var collectors []string
	for name, svc := range compose.Services {
		img, ierr := interpolate(svc.Image)
		if ierr != nil {
			t.Errorf("service %s: image: %v", name, ierr)
		}
		repo, _, _ := strings.Cut(img, ":")
		if repo == imageName || strings.HasSuffix(repo, "/"+imageName) {
			collectors = append(collectors, name)
		}
	}
	sort.Strings(collectors)
	if len(collectors) < 2 {
		t.Fatalf("compose.yaml runs %d collector services (%v), want at least two replicas", len(collectors), collectors)
	}

	initCmd := strings.Join(commandList(compose.Services["kafka-init"].Command), " ")
	partitions := 0
	if m := regexp.MustCompile(`--partitions\s+(\d+)`).FindStringSubmatch(initCmd); m != nil {
		partitions, _ = strconv.Atoi(m[1])
	}
	if partitions < len(collectors) {
		t.Errorf("kafka-init creates topics with %d partitions for %d collector replicas: replay cannot spread over every replica", partitions, len(collectors))
	}
	lbConf, err := os.ReadFile(filepath.Join(dir, "lb", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}

	var groupsSeen []string
	for _, name := range collectors {
		t.Run(name, func(t *testing.T) {
			svc := compose.Services[name]
			env := map[string]string{}
			for k, v := range svc.Environment {
				resolved, err := interpolate(v)
				if err != nil {
					t.Errorf("environment %s: %v", k, err)
				}
				env[k] = resolved
			}

			// The config file: --config <path in the container>, mounted
			// from a file of the example.
			cfgPath := imageConfig
			if args := commandList(svc.Command); len(args) > 0 {
				i := slices.Index(args, "--config")
				if i < 0 || i+1 >= len(args) {
					t.Fatalf("command %q has no --config <file>", args)
				}
				cfgPath = args[i+1]
			}
			local := ""
			for _, v := range svc.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 && parts[1] == cfgPath && strings.HasPrefix(parts[0], ".") {
					local = filepath.Join(dir, parts[0])
				}
			}
			if local == "" {
				t.Fatalf("no volume mounts a file of the example at %s (volumes: %v)", cfgPath, svc.Volumes)
			}
			cfgRaw, err := os.ReadFile(local)
			if err != nil {
				t.Fatal(err)
			}

			// Every variable the config reads is set by compose or has a default.
			for _, m := range configEnvVar.FindAllStringSubmatch(string(cfgRaw), -1) {
				if _, set := env[m[1]]; !set && m[2] == "" {
					t.Errorf("%s reads ${env:%s}, which the service's environment does not set", local, m[1])
				}
			}

			// validate, with the service's environment and nothing else.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, collector(t), "validate", "--config", local)
			cmd.Env = []string{}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("otelcol-failover validate --config %s (environment %v): %v\n%s", local, cmd.Env, err, out)
			}

			// Addresses in the environment name compose services.
			for k, v := range env {
				for hostport := range strings.SplitSeq(v, ",") {
					host := ""
					if u, err := url.Parse(hostport); err == nil && u.Host != "" {
						host = u.Hostname()
					} else if h, _, err := net.SplitHostPort(hostport); err == nil {
						host = h
					}
					if host == "" || host == "localhost" || net.ParseIP(host) != nil {
						continue
					}
					if _, ok := compose.Services[host]; !ok {
						t.Errorf("environment %s=%s: %q is not a service of compose.yaml", k, v, host)
					}
				}
			}

			// Kafka topics exist (kafka-init creates them), consumer groups.
			var cfg collectorConfig
			if err := yaml.Unmarshal(cfgRaw, &cfg); err != nil {
				t.Fatal(err)
			}
			topics, groups := cfg.kafkaTopics()
			if len(topics) == 0 || len(groups) == 0 {
				t.Errorf("%s has no kafka DLQ receivers or members (topics %v, groups %v)", local, topics, groups)
			}
			for _, topic := range topics {
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(topic) + `\b`).MatchString(initCmd) {
					t.Errorf("topic %s is used by %s but not created by kafka-init", topic, local)
				}
			}
			groupsSeen = append(groupsSeen, strings.Join(groups, " "))

			if cond := dependsOn(svc.DependsOn)["kafka-init"]; cond != "service_completed_successfully" {
				t.Errorf("depends_on kafka-init: condition %q, want service_completed_successfully (topics must exist first)", cond)
			}
			for _, port := range []string{"4317", "4318"} {
				if !regexp.MustCompile(`server\s+` + regexp.QuoteMeta(name+":"+port) + `\b`).Match(lbConf) {
					t.Errorf("lb/nginx.conf does not balance to %s:%s", name, port)
				}
			}
		})
	}
	// One consumer group per DLQ receiver, the same in every replica: replay
	// is spread over the replicas instead of done once per replica.
	for i := 1; i < len(groupsSeen); i++ {
		if groupsSeen[i] != groupsSeen[0] {
			t.Errorf("collector replicas use different DLQ consumer groups: %q vs %q", groupsSeen[0], groupsSeen[i])
		}
	}
}

func TestComposeInterpolation(t *testing.T) {
	for in, want := range map[string]string{
		"${A:-x}":          "x",
		"${A-y}":           "y",
		"a$$b":             "a$b",
		"http://${H:-h}:1": "http://h:1",
		"${A:-}":           "",
	} {
		if got, err := interpolate(in); err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${A}", "$A", "x${B}y"} {
		if _, err := interpolate(in); err == nil {
			t.Errorf("interpolate(%q): no error for a variable without default", in)
		}
	}
}
