// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
)

// The clickhouse probe does no I/O until its first check, leaves the
// member's database out (the member creates it when it starts), and its
// errors, which are logged, never carry the password. Its success against
// a real engine is shown end to end: failback in testbed/e2e rests on it.
func TestClickHouseProbe(t *testing.T) {
	cfg := clickhouseexporter.NewFactory().CreateDefaultConfig().(*clickhouseexporter.Config)
	cfg.Endpoint = "http://" + closedPort(t) + "?dial_timeout=1s"
	cfg.Database = "otel"
	cfg.Username, cfg.Password = "writer", configopaque.String("s3cret-pass")

	opt, err := clickHouseProbeOptions(cfg)
	require.NoError(t, err)
	assert.Empty(t, opt.Auth.Database, "the database is not the probe's business")
	assert.Equal(t, "writer", opt.Auth.Username)

	p, err := newClickHouseProbe(cfg)
	require.NoError(t, err)
	defer p.close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err = p.check(ctx)
	require.Error(t, err, "nothing listens")
	assert.NotContains(t, err.Error(), "s3cret-pass")

	cfg.Endpoint = "http://writer:s3cret-pass@%zz"
	_, err = newClickHouseProbe(cfg)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret-pass")
}
