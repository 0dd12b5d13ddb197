// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// dialProbe opens (and closes) a TCP connection to a member's address: the
// check for OTLP members and the fallback for member types with no probe of
// their own. It shows the destination accepts connections, not that it
// would take data.
type dialProbe struct {
	addrs []string // host:port; healthy when any one accepts
}

func (p *dialProbe) check(ctx context.Context) error {
	var d net.Dialer
	var errs []error
	for _, addr := range p.addrs {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no connection to %s: %w", strings.Join(p.addrs, ", "), errors.Join(errs...))
}

func (*dialProbe) close() {}

// dialAddress turns an endpoint as exporters write it (`host:port`,
// `scheme://host[:port]/path`, gRPC's `dns:///host:port`) into host:port.
func dialAddress(endpoint string) (string, bool) {
	if endpoint == "" {
		return "", false
	}
	if !strings.Contains(endpoint, "://") {
		if _, _, err := net.SplitHostPort(endpoint); err == nil {
			return endpoint, true
		}
		return "", false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false
	}
	if u.Scheme == "dns" || u.Scheme == "passthrough" {
		// gRPC target syntax (dns:///host:port): the target is the path;
		// the authority, if any, names a DNS server.
		target := strings.TrimPrefix(u.Path, "/")
		if _, _, err := net.SplitHostPort(target); err == nil {
			return target, true
		}
		return "", false
	}
	if u.Hostname() == "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return "", false
		}
	}
	return net.JoinHostPort(u.Hostname(), port), true
}
