// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package dlqroutingconnector implements the dlq_routing connector: it sits
// after a kafka receiver and sends data replayed from the dead-letter queue
// only to the replay pipelines, everything else to the default pipelines, and
// replayed data that the replay pipelines reject permanently to optional
// poison pipelines. See README.md.
package dlqroutingconnector
