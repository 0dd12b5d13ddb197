// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !race

package failovergroupexporter

// raceEnabled: the race detector is on (see race_on_test.go).
const raceEnabled = false
