// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

//go:build race

package failovergroupexporter

// raceEnabled: the race detector is on. sync.Pool then drops a quarter of
// what is put back on purpose, so allocation counts are not meaningful.
const raceEnabled = true
