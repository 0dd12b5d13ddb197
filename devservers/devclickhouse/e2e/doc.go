// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2e holds the end-to-end tests of devclickhouse: they start the
// built binary (bin/devclickhouse) as a subprocess and drive it with the
// unmodified contrib clickhouse exporter and clickhouse-go, over HTTP and
// over the native protocol, with plain HTTP, and with raw native packets.
//
// Build the binary first with `make devservers` (or
// `make -C devservers devclickhouse`); DEVCLICKHOUSE_BIN overrides its path.
package e2e
