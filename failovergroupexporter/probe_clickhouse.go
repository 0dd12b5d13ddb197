// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
)

// clickHouseProbe pings a clickhouse member's server (`SELECT 1` over HTTP,
// a ping packet over the native protocol) with the member's own endpoint,
// connection parameters, credentials and TLS: what the member needs to write,
// short of its tables. The database is left out: the member creates it when
// it starts, so a server without it yet is still one that answers.
type clickHouseProbe struct {
	conn driver.Conn
}

func newClickHouseProbe(cfg *clickhouseexporter.Config) (destinationProbe, error) {
	opt, err := clickHouseProbeOptions(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opt) // no I/O: connections are opened on use
	if err != nil {
		return nil, fmt.Errorf("clickhouse probe: %w", err)
	}
	return &clickHouseProbe{conn: conn}, nil
}

// clickHouseProbeOptions are clickHouseOptions without the database, on one
// connection.
func clickHouseProbeOptions(cfg *clickhouseexporter.Config) (*clickhouse.Options, error) {
	opt, err := clickHouseOptions(cfg)
	if err != nil {
		return nil, err
	}
	opt.Auth.Database = ""
	return opt, nil
}

// clickHouseOptions reads the connection settings as the exporter does:
// endpoint URL, connection_params, https meaning TLS, username and
// password, tls; one connection.
func clickHouseOptions(cfg *clickhouseexporter.Config) (*clickhouse.Options, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		// url.Parse's error quotes the endpoint, credentials included.
		return nil, errors.New("clickhouse member: endpoint is not a URL")
	}
	q := u.Query()
	for k, v := range cfg.ConnectionParams {
		q.Set(k, v)
	}
	if u.Scheme == "https" {
		q.Set("secure", "true")
	}
	if cfg.Username != "" {
		u.User = url.UserPassword(cfg.Username, string(cfg.Password))
	}
	u.RawQuery = q.Encode()
	opt, err := clickhouse.ParseDSN(u.String())
	if err != nil {
		// ParseDSN's error may quote the DSN, credentials included.
		return nil, errors.New("clickhouse member: endpoint or connection_params cannot be parsed")
	}
	opt.MaxOpenConns, opt.MaxIdleConns = 1, 1
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" || cfg.TLS.CAFile != "" || cfg.TLS.ServerName != "" || cfg.TLS.InsecureSkipVerify {
		if opt.TLS, err = cfg.TLS.LoadTLSConfig(context.Background()); err != nil {
			return nil, fmt.Errorf("clickhouse member: tls: %w", err)
		}
	}
	return opt, nil
}

func (p *clickHouseProbe) check(ctx context.Context) error {
	return p.conn.Ping(ctx)
}

func (p *clickHouseProbe) close() { _ = p.conn.Close() }
