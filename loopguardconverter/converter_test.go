// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package loopguardconverter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

// convertFile loads a YAML file as the collector would hand it to a
// converter (values already expanded) and runs the converter on it; it also
// checks that the converter changed nothing and answers the same twice.
func convertFile(t *testing.T, path string) error {
	t.Helper()
	conf, err := confmaptest.LoadConf(path)
	require.NoError(t, err)
	return convertConf(t, conf)
}

func convertYAML(t *testing.T, doc string) error {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(doc))
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	return convertConf(t, conf)
}

func convertConf(t *testing.T, conf *confmap.Conf) error {
	t.Helper()
	before := conf.ToStringMap()
	c := NewFactory().Create(confmap.ConverterSettings{})
	err := c.Convert(t.Context(), conf)
	assert.Equal(t, before, conf.ToStringMap(), "the converter must not change the config")
	again := c.Convert(t.Context(), conf)
	assert.Equal(t, errString(err), errString(again), "the answer must be stable")
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// assertLines checks that err has one line per want entry, in order, and
// that each line holds every listed substring.
func assertLines(t *testing.T, err error, want [][]string) {
	t.Helper()
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(want), "error:\n%s", err)
	for i, subs := range want {
		for _, s := range subs {
			assert.Contains(t, lines[i], s, "line %d", i)
		}
	}
}

func TestReferenceConfigPasses(t *testing.T) {
	// The repository's reference config, as it stands (shared, edited by
	// others), and this package's own copies of its two poison variants.
	for _, path := range []string{
		filepath.Join("..", "testdata", "otelcol-failover.yaml"),
		filepath.Join("testdata", "reference_poison_kafka.yaml"),
		filepath.Join("testdata", "reference_poison_file.yaml"),
	} {
		t.Run(path, func(t *testing.T) {
			assert.NoError(t, convertFile(t, path))
		})
	}
}

func TestAccepted(t *testing.T) {
	for _, name := range []string{
		"accepted_replay_clickhouse.yaml",
		"accepted_allowed_other_topic.yaml",
		"accepted_kafka_buffer.yaml",
		"accepted_other_cluster.yaml",
		"accepted_ingest_allowed.yaml",
		"accepted_one_pipeline_allowed.yaml",
		"accepted_replay_batches_without_tokens.yaml",
	} {
		t.Run(name, func(t *testing.T) {
			assert.NoError(t, convertFile(t, filepath.Join("testdata", name)))
		})
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		file string
		want [][]string
	}{
		{
			file: "refused_ingest_in_replay.yaml",
			want: [][]string{
				{ // rule 1: the DLQ member writes the consumed topic
					`pipeline "traces/replay": `,
					`exporter "failover_group/ingest" member "kafka/dlq" writes to topic "otlp_spans_dlq"`,
					`receiver "kafka/dlq_traces" feeding this pipeline consumes`,
					`replayed back into itself`,
					`write to another topic or use a group without this member in this pipeline`,
				},
				{ // rule 2: a dead-letter member in a replay pipeline
					`pipeline "traces/replay": `,
					`exporter "failover_group/ingest" has dead-letter member "kafka/dlq"`,
					`writing topic "otlp_spans_dlq"`,
					`dead_letter is unset and defaults to true for kafka members`,
					`never takes replayed data (loop guard)`,
					`kafka receiver "kafka/dlq_traces" (traces topics "otlp_spans_dlq")`,
					`set allow_in_replay_pipelines: true on the group`,
				},
			},
		},
		{
			file: "refused_allowed_not_dead_letter.yaml",
			want: [][]string{{
				`pipeline "traces": `,
				`exporter "failover_group/ingest" member "kafka/requeue" writes to topic "otlp_spans_dlq"`,
				`receiver "kafka/dlq_traces" feeding this pipeline consumes`,
			}},
		},
		{
			file: "refused_group_no_dead_letter.yaml",
			want: [][]string{{
				`pipeline "logs/replay": `,
				`exporter "failover_group/requeue" member "kafka/requeue" writes to topic "otlp_logs_dlq"`,
				`receiver "kafka/dlq_logs" feeding this pipeline consumes`,
			}},
		},
		{
			file: "refused_connector_chain.yaml",
			want: [][]string{{
				`pipeline "metrics/c": `,
				`exporter "kafka/oops" writes to topic "otlp_metrics_dlq"`,
				`receiver "kafka/dlq_metrics" feeding this pipeline consumes`,
				`write to another topic or remove the exporter from this pipeline`,
			}},
		},
		{
			file: "refused_default_topics.yaml",
			want: [][]string{{
				`pipeline "traces": `,
				`exporter "kafka" writes to topic "otlp_spans" (the default: traces::topic is unset)`,
				`receiver "kafka" feeding this pipeline consumes (by default: traces::topics is unset)`,
			}},
		},
		{
			file: "refused_regex_topics.yaml",
			want: [][]string{{
				`pipeline "traces/replay": `,
				`exporter "kafka/oops" writes to topic "otlp_spans_dlq"`,
				`receiver "kafka/dlq" feeding this pipeline consumes (topic pattern "^otlp_.*_dlq$")`,
			}},
		},
		{
			file: "refused_replay_group_batches.yaml",
			want: [][]string{{ // rule 3; the ingest group batches from OTLP only: accepted
				`pipeline "traces/replay": `,
				`exporter "failover_group/replay" batches in its own queue (sending_queue::batch)`,
				`kafka receiver "kafka/dlq_traces" (traces topics "otlp_spans_dlq")`,
				`remove sending_queue::batch from this group`,
				`or set deduplication::tokens: false on it`,
			}},
		},
		{
			file: "refused_metadata_topic.yaml",
			want: [][]string{{
				`pipeline "logs": `,
				`exporter "kafka/mirror" takes its topic from metadata key "kafka.topic" (logs::topic_from_metadata_key)`,
				`receiver "kafka/dlq" feeding this pipeline sets to the topic each record was read from ("otlp_logs_dlq")`,
				`remove topic_from_metadata_key or remove the exporter from this pipeline`,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			err := convertFile(t, filepath.Join("testdata", tt.file))
			assertLines(t, err, tt.want)
		})
	}
}

func TestRegexTopics(t *testing.T) {
	const tmpl = `
receivers:
  kafka/in:
    traces:
      topics: %s
      exclude_topics: %s
exporters:
  kafka/out:
    traces: {topic: %s}
service:
  pipelines:
    traces:
      receivers: [kafka/in]
      exporters: [kafka/out]
`
	tests := []struct {
		name, topics, exclude, topic string
		pattern                      string // "" when accepted
	}{
		{"anchored pattern", `["^otlp_.*_dlq$"]`, `[]`, "otlp_logs_dlq", "^otlp_.*_dlq$"},
		{"pattern misses", `["^otlp_.*_dlq$"]`, `[]`, "otlp_logs_poison", ""},
		{"excluded", `["^otlp_.*"]`, `["_poison$"]`, "otlp_spans_poison", ""},
		{"not excluded", `["^otlp_.*"]`, `["_poison$"]`, "otlp_spans_dlq", "^otlp_.*"},
		// One ^ entry makes every entry of the list a pattern, matched
		// anywhere in the name: "dlq" then matches "otlp_spans_dlq".
		{"list in regex mode", `["^never$", "dlq"]`, `[]`, "otlp_spans_dlq", "dlq"},
		// Without a ^ entry, names are exact, and exclude_topics is ignored.
		{"exact names", `["dlq"]`, `["dlq"]`, "otlp_spans_dlq", ""},
		{"exact name hit", `["otlp_spans_dlq"]`, `["otlp"]`, "otlp_spans_dlq", "-"},
		// A pattern that does not compile: the receiver fails at start; that
		// is reported there, not here.
		{"invalid pattern", `["^otlp_(spans"]`, `[]`, "otlp_spans", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := convertYAML(t, fmt.Sprintf(tmpl, tt.topics, tt.exclude, tt.topic))
			switch tt.pattern {
			case "":
				assert.NoError(t, err)
			case "-":
				assertLines(t, err, [][]string{{`writes to topic "` + tt.topic + `"`}})
				assert.NotContains(t, err.Error(), "pattern")
			default:
				assertLines(t, err, [][]string{{
					`pipeline "traces": exporter "kafka/out" writes to topic "` + tt.topic + `"`,
					`(topic pattern "` + tt.pattern + `")`,
				}})
			}
		})
	}
}

func TestTopicShapes(t *testing.T) {
	const tmpl = `
receivers:
  kafka/in:
    brokers: %s
    metrics: %s
exporters:
  kafka/out:
    brokers: %s
    metrics: %s
service:
  pipelines:
    metrics/x:
      receivers: [kafka/in]
      exporters: [kafka/out]
`
	tests := []struct {
		name                           string
		inBrokers, in, outBrokers, out string
		refused                        bool
	}{
		{"both default", `null`, `null`, `null`, `null`, true},
		{"localhost is 127.0.0.1", `[localhost:9092]`, `{}`, `[127.0.0.1:9092]`, `{}`, true},
		{"brokers as a comma string", `"a:9092,b:9092"`, `{}`, `[b:9092]`, `{}`, true},
		{"disjoint clusters", `[a:9092]`, `{}`, `[b:9092]`, `{}`, false},
		{"topics as a comma string", `null`, `{topics: "x,otlp_metrics"}`, `null`, `{}`, true},
		{"topics null is the default", `null`, `{topics: null}`, `null`, `{}`, true},
		{"empty topics consume nothing", `null`, `{topics: []}`, `null`, `{}`, false},
		{"topic null is empty", `null`, `{}`, `null`, `{topic: null}`, false},
		{"topic not a string", `null`, `{}`, `null`, `{topic: 12}`, false},
		{"topics not strings", `null`, `{topics: [1, 2]}`, `null`, `{}`, false},
		{"other topic", `null`, `{}`, `null`, `{topic: elsewhere}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := convertYAML(t, fmt.Sprintf(tmpl, tt.inBrokers, tt.in, tt.outBrokers, tt.out))
			if !tt.refused {
				assert.NoError(t, err)
				return
			}
			assertLines(t, err, [][]string{{`pipeline "metrics/x": exporter "kafka/out" writes to topic "otlp_metrics"`}})
		})
	}
}

func TestGroupMembers(t *testing.T) {
	const tmpl = `
receivers:
  kafka/dlq: {traces: {topics: [dlq]}}
exporters:
  failover_group/g:
%s
service:
  pipelines:
    traces/replay:
      receivers: [kafka/dlq]
      exporters: [failover_group/g]
`
	tests := []struct {
		name  string
		group string
		want  [][]string
	}{
		{
			name: "dead-letter file member, explicit",
			group: `    members:
      - clickhouse: {}
      - file/park: {path: /tmp/x}
        dead_letter: true`,
			want: [][]string{{
				`pipeline "traces/replay": exporter "failover_group/g" has dead-letter member "file/park", which never takes replayed data (loop guard)`,
			}},
		},
		{
			name: "kafka member not a dead letter, other topic",
			group: `    members:
      - kafka/out: {traces: {topic: elsewhere}}
        dead_letter: false`,
		},
		{
			name: "null member config takes the defaults",
			group: `    members:
      - kafka/park:
        dead_letter: false`,
		},
		{
			name: "allowed dead-letter member writing the consumed topic",
			group: `    members:
      - kafka: {traces: {topic: dlq}}
    allow_in_replay_pipelines: true`,
		},
		{
			name: "allowed explicit dead-letter member writing the consumed topic",
			group: `    members:
      - kafka: {traces: {topic: dlq}}
        dead_letter: true
    allow_in_replay_pipelines: true`,
		},
		{
			name: "two problems, member order",
			group: `    members:
      - kafka/a: {traces: {topic: dlq}}
        dead_letter: false
      - kafka/b: {traces: {topic: other}}`,
			want: [][]string{
				{`member "kafka/a" writes to topic "dlq"`},
				{`has dead-letter member "kafka/b" (writing topic "other"; dead_letter is unset`},
			},
		},
		{
			name: "allow waives rule 2, not rule 1 for a member that is not a dead letter",
			group: `    allow_in_replay_pipelines: true
    members:
      - kafka/a: {traces: {topic: dlq}}
        dead_letter: false
      - kafka/b: {traces: {topic: dlq}}`,
			want: [][]string{{`member "kafka/a" writes to topic "dlq"`}},
		},
		{
			name: "allow not a bool: rule 1 for every kafka member",
			group: `    allow_in_replay_pipelines: "yes"
    members:
      - kafka/b: {traces: {topic: dlq}}`,
			want: [][]string{{`member "kafka/b" writes to topic "dlq"`}},
		},
		{
			name: "allow false is the default",
			group: `    allow_in_replay_pipelines: false
    members:
      - kafka/b: {traces: {topic: other}}`,
			want: [][]string{{`has dead-letter member "kafka/b"`}},
		},
		// Malformed shapes: the group's own decoding reports them.
		{name: "members not a list", group: `    members: {kafka/a: {traces: {topic: dlq}}}`},
		{name: "member with two keys", group: `    members: [{kafka/a: {traces: {topic: dlq}}, kafka/b: {}}]`},
		{name: "member not a map", group: `    members: [kafka/a]`},
		{name: "member config not a map", group: `    members: [{kafka/a: [dlq]}]`},
		{name: "allow not a bool", group: `    allow_in_replay_pipelines: maybe
    members: [{kafka/a: {traces: {topic: other}}}]`},
		{name: "dead_letter not a bool", group: `    members: [{kafka/a: {traces: {topic: other}}, dead_letter: 1}]`},
		{name: "group config not a map", group: `    - kafka/a`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := convertYAML(t, fmt.Sprintf(tmpl, tt.group))
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assertLines(t, err, tt.want)
		})
	}
}

func TestStableOrder(t *testing.T) {
	// Problems come sorted by pipeline, then component, whatever the order
	// of the YAML or of Go's maps.
	const doc = `
receivers:
  kafka/t: {traces: {topics: [t]}}
  kafka/l: {logs: {topics: [l]}}
exporters:
  kafka/z: {traces: {topic: t}, logs: {topic: l}}
  kafka/a: {traces: {topic: t}, logs: {topic: l}}
  failover_group/m:
    members: [{kafka/dlq: {traces: {topic: t}, logs: {topic: l}}}]
service:
  pipelines:
    traces:
      receivers: [kafka/t]
      exporters: [kafka/z, failover_group/m, kafka/a]
    logs/b:
      receivers: [kafka/l]
      exporters: [kafka/z, kafka/a]
    logs/a:
      receivers: [kafka/l]
      exporters: [kafka/z, kafka/z]
`
	err := convertYAML(t, doc)
	assertLines(t, err, [][]string{
		{`pipeline "logs/a": exporter "kafka/z" writes`},
		{`pipeline "logs/b": exporter "kafka/a" writes`},
		{`pipeline "logs/b": exporter "kafka/z" writes`},
		{`pipeline "traces": exporter "failover_group/m" member "kafka/dlq" writes`},
		{`pipeline "traces": exporter "failover_group/m" has dead-letter member "kafka/dlq"`},
		{`pipeline "traces": exporter "kafka/a" writes`},
		{`pipeline "traces": exporter "kafka/z" writes`},
	})
}

func TestSignalOfTheReceiverPipeline(t *testing.T) {
	// A receiver listed in a traces pipeline consumes its traces topics only;
	// a connector may turn its data into metrics downstream, where the
	// metrics exporter is checked against those traces topics.
	const doc = `
receivers:
  kafka: {traces: {topics: [shared]}, metrics: {topics: [m]}}
exporters:
  kafka/m: {metrics: {topic: m}}
  kafka/shared: {metrics: {topic: shared}}
connectors:
  spanmetrics: {}
service:
  pipelines:
    traces:
      receivers: [kafka]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [kafka/m, kafka/shared]
`
	err := convertYAML(t, doc)
	assertLines(t, err, [][]string{{
		`pipeline "metrics": exporter "kafka/shared" writes to topic "shared", which receiver "kafka" feeding this pipeline consumes`,
	}})
}

func TestNotAConnector(t *testing.T) {
	// otlp is both a receiver and an (alias) exporter id here, not a
	// connector: the OTLP pipeline is not fed by the Kafka one.
	const doc = `
receivers:
  otlp: {}
  kafka: {}
exporters:
  otlp: {}
  kafka: {}
service:
  pipelines:
    traces/in:
      receivers: [kafka]
      exporters: [otlp]
    traces/out:
      receivers: [otlp]
      exporters: [kafka]
`
	assert.NoError(t, convertYAML(t, doc))
}

func TestNothingToCheck(t *testing.T) {
	c := NewFactory().Create(confmap.ConverterSettings{})
	assert.NoError(t, c.Convert(t.Context(), nil))
	assert.NoError(t, c.Convert(t.Context(), confmap.New()))
	for _, doc := range []string{
		`receivers: {kafka: {}}`,
		`service: {}`,
		`service: {pipelines: []}`,
		`service: {pipelines: {traces: [kafka]}}`,
		`service: {pipelines: {traces: {receivers: kafka, exporters: kafka}}}`,
		`{service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`, // not declared
		`{receivers: [kafka], exporters: {kafka: {}}, service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: []}, exporters: {kafka: {}}, service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: {traces: []}}, exporters: {kafka: {}}, service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: {}}, exporters: {kafka: 3}, service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: {}}, exporters: {kafka: {traces: x}}, service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: {}}, exporters: {kafka: {}}, service: {pipelines: {unknown: {receivers: [kafka], exporters: [kafka]}}}}`,
		`{receivers: {kafka: {}}, exporters: {kafka: {}}, service: {pipelines: {traces: {receivers: [kafka, 1], exporters: [{kafka: {}}]}}}}`,
	} {
		t.Run(doc, func(t *testing.T) {
			assert.NoError(t, convertYAML(t, doc))
		})
	}
}

func TestThroughResolver(t *testing.T) {
	// The converter sees values after ${env:...} expansion, and the
	// resolver wraps its error.
	t.Setenv("LOOPGUARD_TEST_TOPIC", "otlp_spans_dlq")
	doc := `
receivers:
  kafka/dlq: {traces: {topics: [otlp_spans_dlq]}}
exporters:
  kafka/oops: {traces: {topic: "${env:LOOPGUARD_TEST_TOPIC}"}}
service:
  pipelines:
    traces:
      receivers: [kafka/dlq]
      exporters: [kafka/oops]
`
	resolver, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs: []string{"test:config"},
		ProviderFactories: []confmap.ProviderFactory{
			testProvider("test", func(string) string { return doc }),
			testProvider("env", os.Getenv),
		},
		ConverterFactories: []confmap.ConverterFactory{NewFactory()},
		DefaultScheme:      "env",
	})
	require.NoError(t, err)
	_, err = resolver.Resolve(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot convert the confmap.Conf: ")
	assert.Contains(t, err.Error(), `pipeline "traces": exporter "kafka/oops" writes to topic "otlp_spans_dlq", which receiver "kafka/dlq" feeding this pipeline consumes`)
}

type funcProvider struct {
	scheme string
	get    func(string) string
}

func testProvider(scheme string, get func(string) string) confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider {
		return funcProvider{scheme: scheme, get: get}
	})
}

func (p funcProvider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	return confmap.NewRetrievedFromYAML([]byte(p.get(strings.TrimPrefix(uri, p.scheme+":"))))
}

func (p funcProvider) Scheme() string               { return p.scheme }
func (funcProvider) Shutdown(context.Context) error { return nil }

// FuzzConvert: random YAML documents, through the collector's own YAML path,
// and random configs assembled from the keys this converter reads. The
// converter must never panic, never change the config, answer the same
// twice, and every line of an error must name a pipeline.
//
// Run: go test -fuzz FuzzConvert -fuzztime 60s ./loopguardconverter/
func FuzzConvert(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(f, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`service: {pipelines: {traces: {receivers: [kafka], exporters: [kafka]}}}`))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Fuzz(func(t *testing.T, data []byte) {
		if ret, err := confmap.NewRetrievedFromYAML(data); err == nil {
			if raw, err := ret.AsRaw(); err == nil {
				if m, ok := raw.(map[string]any); ok {
					checkFuzzed(t, confmap.NewFromStringMap(m))
				}
			}
		}
		checkFuzzed(t, confmap.NewFromStringMap(generate(data)))
	})
}

func checkFuzzed(t *testing.T, conf *confmap.Conf) {
	before := conf.ToStringMap()
	c := NewFactory().Create(confmap.ConverterSettings{})
	err := c.Convert(t.Context(), conf)
	if !reflect.DeepEqual(before, conf.ToStringMap()) {
		t.Fatal("the converter changed the config")
	}
	if again := c.Convert(t.Context(), conf); errString(again) != errString(err) {
		t.Fatalf("unstable answer:\n%v\n---\n%v", err, again)
	}
	if err == nil {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if !strings.HasPrefix(line, `pipeline "`) {
			t.Fatalf("line does not name a pipeline: %q", line)
		}
	}
}

// generate builds a config from data, drawing each choice from the next
// byte: ids, topics, brokers and shapes (right and wrong) that this
// converter reads, so that random input reaches its every branch.
func generate(data []byte) map[string]any {
	g := &gen{data: data}
	ids := func(kind string) []string {
		switch kind {
		case "receivers":
			return []string{"kafka", "kafka/a", "kafka/b", "otlp", "fwd", "route/x"}
		case "exporters":
			return []string{"kafka", "kafka/a", "failover_group/g", "failover_group/h", "clickhouse", "fwd", "route/x"}
		}
		return []string{"fwd", "route/x", "spanmetrics"}
	}
	section := func(kind string) map[string]any {
		m := map[string]any{}
		for _, id := range ids(kind) {
			if g.next()%3 == 0 {
				continue
			}
			if strings.HasPrefix(id, "failover_group") {
				m[id] = g.group()
			} else {
				m[id] = g.kafkaConfig()
			}
		}
		return m
	}
	pipelines := map[string]any{}
	for _, pid := range []string{"traces", "traces/x", "metrics", "logs/y", "profiles", "bogus"} {
		switch g.next() % 6 {
		case 0:
			continue
		case 1:
			pipelines[pid] = g.any()
		default:
			pipelines[pid] = map[string]any{
				"receivers": g.list(append(ids("receivers"), ids("connectors")...)),
				"exporters": g.list(append(ids("exporters"), ids("connectors")...)),
			}
		}
	}
	return map[string]any{
		"receivers":  section("receivers"),
		"exporters":  section("exporters"),
		"connectors": section("connectors"),
		"service":    map[string]any{"pipelines": pipelines},
	}
}

type gen struct {
	data []byte
	i    int
}

func (g *gen) next() int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[g.i%len(g.data)]
	g.i++
	return int(b) + g.i/len(g.data) // vary once the data wraps around
}

func (g *gen) pick(options ...any) any { return options[g.next()%len(options)] }

func (g *gen) any() any {
	return g.pick(nil, "x", 1, true, []any{"a"}, map[string]any{"k": nil}, []any{map[string]any{}})
}

func (g *gen) topic() any {
	return g.pick("t", "otlp_spans", "otlp_logs", "^t", "^(bad", "", "a,t", 3, nil, []any{"t"})
}

func (g *gen) list(ids []string) any {
	if g.next()%8 == 0 {
		return g.any()
	}
	n := g.next() % 4
	out := make([]any, 0, n)
	for range n {
		out = append(out, g.pick(stringsToAny(ids)...))
	}
	return out
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (g *gen) kafkaConfig() any {
	if g.next()%6 == 0 {
		return g.any()
	}
	m := map[string]any{}
	if g.next()%2 == 0 {
		m["brokers"] = g.pick(nil, []any{"localhost:9092"}, []any{"b:1"}, "a:1,b:1", 7, []any{1})
	}
	for _, s := range []string{"traces", "metrics", "logs", "profiles"} {
		switch g.next() % 5 {
		case 0:
		case 1:
			m[s] = g.any()
		default:
			sig := map[string]any{}
			if g.next()%2 == 0 {
				sig["topics"] = g.pick(nil, []any{g.topic(), g.topic()}, g.topic())
			}
			if g.next()%2 == 0 {
				sig["exclude_topics"] = g.pick(nil, []any{g.topic()}, g.topic())
			}
			if g.next()%2 == 0 {
				sig["topic"] = g.topic()
			}
			if g.next()%4 == 0 {
				sig["topic_from_metadata_key"] = g.pick("kafka.topic", "other", nil, 1)
			}
			m[s] = sig
		}
	}
	return m
}

func (g *gen) group() any {
	if g.next()%8 == 0 {
		return g.any()
	}
	m := map[string]any{}
	if g.next()%2 == 0 {
		m["allow_in_replay_pipelines"] = g.pick(true, false, nil, "yes")
	}
	if g.next()%8 == 0 {
		m["members"] = g.any()
		return m
	}
	var members []any
	for range g.next() % 4 {
		elem := map[string]any{}
		id := g.pick("kafka", "kafka/dlq", "clickhouse", "file/x", "failover_group/g").(string)
		elem[id] = g.kafkaConfig()
		if g.next()%2 == 0 {
			elem["dead_letter"] = g.pick(true, false, nil, "true")
		}
		if g.next()%6 == 0 {
			elem["kafka/other"] = nil
		}
		members = append(members, g.pick(elem, elem, elem, "x", nil))
	}
	m["members"] = members
	return m
}
