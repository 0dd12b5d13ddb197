// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package loopguardconverter provides a confmap.Converter that refuses
// collector configurations in which telemetry read from Kafka (typically a
// dead-letter queue being replayed) could be written back into a topic that
// the same pipelines consume.
//
// The collector detects cycles in its own pipeline graph, but a round trip
// through Kafka (kafka exporter → topic → kafka receiver) is invisible to it:
// such a config starts, and every replayed record is produced again, forever.
// This converter reads the resolved configuration (after ${env:...}
// expansion), follows every kafka receiver through the pipelines it feeds,
// directly or through connectors, and reports each exporter, or failover_group
// member, that would write to a topic those receivers consume. It also refuses
// a failover_group with a dead-letter member in such a pipeline unless the
// group opts in with allow_in_replay_pipelines: true.
//
// It never changes the configuration. Shapes it does not understand are left
// to the collector's own validation.
package loopguardconverter
