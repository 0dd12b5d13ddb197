// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"

	"go.opentelemetry.io/collector/confmap"
)

func loadConf(path string) (*confmap.Conf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := confmap.NewRetrievedFromYAML(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r.AsConf()
}

// checkSamePipeline refuses to compare a direct-exporter config with the
// reference configuration when anything but the exporter differs in the
// traces pipeline: the OTLP receiver, the processors (list and settings),
// the extensions and the collector's own telemetry. The reference config
// changes as the product does (it lost its batch processor once); a bench
// config left behind would silently measure the difference.
func checkSamePipeline(root, config string) error {
	ref, err := loadConf(filepath.Join(root, referenceConfig))
	if err != nil {
		return err
	}
	c, err := loadConf(filepath.Join(root, config))
	if err != nil {
		return err
	}
	refProcs := ref.Get("service::pipelines::traces/ingest::processors")
	procs := c.Get("service::pipelines::traces::processors")
	if !reflect.DeepEqual(refProcs, procs) {
		return fmt.Errorf("%s: traces pipeline processors %v, the reference configuration's traces/ingest has %v: make them the same", config, procs, refProcs)
	}
	keys := []string{"receivers::otlp", "service::telemetry", "service::extensions", "extensions"}
	if list, ok := refProcs.([]any); ok {
		for _, p := range list {
			keys = append(keys, fmt.Sprintf("processors::%v", p))
		}
	}
	for _, k := range keys {
		if !reflect.DeepEqual(ref.Get(k), c.Get(k)) {
			return fmt.Errorf("%s: %q differs from the reference configuration's: make them the same", config, k)
		}
	}
	return nil
}

// breakerSettings describes the ingest group's effective circuit breaker
// (defaults included) as the collector prints it, so that the report's text
// follows the component's defaults instead of repeating them.
func breakerSettings(root string) (desc, maxOpen string) {
	out, err := exec.Command(filepath.Join(root, "bin", "otelcol-failover"), "print-config",
		"--config", filepath.Join(root, referenceConfig)).Output()
	if err != nil {
		return "see `circuit_breaker` in the failover_group README", "`max_open_duration`"
	}
	r, err := confmap.NewRetrievedFromYAML(out)
	if err != nil {
		return "see `circuit_breaker` in the failover_group README", "`max_open_duration`"
	}
	conf, err := r.AsConf()
	if err != nil {
		return "see `circuit_breaker` in the failover_group README", "`max_open_duration`"
	}
	cb, err := conf.Sub("exporters::failover_group/ingest::circuit_breaker")
	if err != nil || len(cb.AllKeys()) == 0 {
		return "see `circuit_breaker` in the failover_group README", "`max_open_duration`"
	}
	get := func(k string) string { return fmt.Sprint(cb.Get(k)) }
	maxOpen = "`max_open_duration`, " + get("max_open_duration")
	return fmt.Sprintf("open after %s consecutive failures, open %s, ×%s on every failed half-open trial up to %s, %s success(es) close it",
		get("failure_threshold"), get("open_duration"), get("backoff_multiplier"), get("max_open_duration"), get("success_threshold")), maxOpen
}
