package main

import (
	"fmt"
	"os"
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
