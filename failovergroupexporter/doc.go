// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

// Package failovergroupexporter implements the failover_group exporter: an
// ordered group of member exporters, built from their own factories, each
// behind a circuit breaker. A batch goes to the first member that admits it;
// what a member does not accept moves on to the next one, stamped with
// dead-letter metadata.
//
//go:generate mdatagen metadata.yaml
package failovergroupexporter
