// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.uber.org/zap"
)

// The schema step of deduplication tokens. ClickHouse honors
// insert_deduplication_token only on tables that remember their latest
// inserts: replicated tables do by default (replicated_deduplication_window),
// plain MergeTree tables only with non_replicated_deduplication_window > 0,
// which is 0 by default, and the clickhouse exporter creates plain MergeTree
// tables. So when a clickhouse member has started (its schema created), the
// group looks at the tables it writes for its signal:
//   - a plain MergeTree table without a window, of a member that creates its
//     schema (create_schema: true, the default), gets
//     deduplication::table_window, logged table by table at INFO;
//   - the same table of a member with create_schema: false is left alone,
//     with a WARN giving the statement to run;
//   - replicated and shared tables, and tables with a window, are left as
//     they are.

// msgTablesNotChecked is logged when the step cannot read the tables.
const msgTablesNotChecked = "Could not check whether the member's tables honor deduplication tokens"

// tableSetupTimeout bounds the schema step of one member start.
const tableSetupTimeout = 10 * time.Second

// dedupWindowSetting is the MergeTree setting that makes a plain (not
// replicated) table remember its latest inserts' tokens.
const dedupWindowSetting = "non_replicated_deduplication_window"

// tableSetup is the schema step of one clickhouse member for one signal.
type tableSetup struct {
	opt     *clickhouse.Options
	db      string
	tables  []string
	cluster string
	alter   bool // create_schema: true; else only warn
	window  int
}

// newTableSetup returns the schema step of a clickhouse member, or nil when
// there is nothing to do (tokens or the window off, a config that cannot
// be read: the member itself reports that).
func newTableSetup(cfg *clickhouseexporter.Config, signal string, d DeduplicationConfig) *tableSetup {
	if !d.Tokens || d.TableWindow == 0 {
		return nil
	}
	opt, err := clickHouseOptions(cfg)
	if err != nil {
		return nil
	}
	s := &tableSetup{
		opt: opt, db: memberDatabase(cfg, opt), tables: signalTables(cfg, signal),
		cluster: cfg.ClusterName, alter: cfg.CreateSchema, window: d.TableWindow,
	}
	s.opt.Auth.Database = ""
	if len(s.tables) == 0 {
		return nil
	}
	return s
}

// memberDatabase is the database the exporter writes, as it picks it: the
// database key unless it is "default", else the endpoint's path.
func memberDatabase(cfg *clickhouseexporter.Config, opt *clickhouse.Options) string {
	if cfg.Database != "" && cfg.Database != "default" {
		return cfg.Database
	}
	if opt.Auth.Database != "" {
		return opt.Auth.Database
	}
	return "default"
}

// signalTables are the tables the exporter inserts a signal's data into.
// Rows its materialized views derive (otel_traces_trace_id_ts) follow the
// insert: a dropped insert never reaches them.
func signalTables(cfg *clickhouseexporter.Config, signal string) []string {
	switch signal {
	case "traces":
		return []string{cfg.TracesTableName}
	case "logs":
		return []string{cfg.LogsTableName}
	case "metrics":
		t := cfg.MetricsTables
		return []string{t.Gauge.Name, t.Sum.Name, t.Summary.Name, t.Histogram.Name, t.ExponentialHistogram.Name}
	}
	return nil
}

// tableInfo is what system.tables says of one table.
type tableInfo struct {
	name, engine, engineFull string
}

// plainMergeTree: a MergeTree engine of the family, not replicated or
// shared (those remember their inserts by default).
var plainMergeTree = regexp.MustCompile(`^(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite|Coalescing)?MergeTree$`)

// dedupsByDefault: replicated and shared MergeTree engines remember their
// inserts by default (replicated_deduplication_window).
var dedupsByDefault = regexp.MustCompile(`^(Replicated|Shared)[A-Za-z]*MergeTree$`)

var windowInEngine = regexp.MustCompile(`\b` + dedupWindowSetting + `\s*=\s*(\d+)`)

// windowOf is the table's own window, else the server's default.
func (t tableInfo) windowOf(serverDefault int) int {
	if m := windowInEngine.FindStringSubmatch(t.engineFull); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return serverDefault
}

func quoteIdentifier(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "`", "\\`") + "`"
}

// alterStatement is the statement that gives a table the window.
func (s *tableSetup) alterStatement(table string) string {
	on := ""
	if s.cluster != "" {
		on = " ON CLUSTER " + quoteIdentifier(s.cluster)
	}
	return fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY SETTING %s = %d",
		quoteIdentifier(s.db), quoteIdentifier(table), on, dedupWindowSetting, s.window)
}

// run looks at the member's tables and gives the window where it is
// missing (or warns). A failure is logged: the member still works, only
// without deduplication on the tables concerned.
func (s *tableSetup) run(ctx context.Context, logger *zap.Logger) {
	conn, err := clickhouse.Open(s.opt)
	if err != nil {
		logger.Warn(msgTablesNotChecked, zap.Error(err))
		return
	}
	defer conn.Close()
	var serverDefault int
	row := conn.QueryRow(ctx, "SELECT toInt64(value) FROM system.merge_tree_settings WHERE name = ?", dedupWindowSetting)
	var v int64
	if row.Scan(&v) == nil {
		serverDefault = int(v)
	}
	rows, err := conn.Query(ctx, "SELECT name, engine, engine_full FROM system.tables WHERE database = ? AND name IN ?", s.db, s.tables)
	if err != nil {
		logger.Warn(msgTablesNotChecked, zap.Error(err))
		return
	}
	var tables []tableInfo
	for rows.Next() {
		var t tableInfo
		if err := rows.Scan(&t.name, &t.engine, &t.engineFull); err != nil {
			logger.Warn(msgTablesNotChecked, zap.Error(err))
			rows.Close()
			return
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		logger.Warn(msgTablesNotChecked, zap.Error(err))
		return
	}
	for _, t := range tables {
		if dedupsByDefault.MatchString(t.engine) {
			continue
		}
		if !plainMergeTree.MatchString(t.engine) {
			logger.Warn("A table of the member has an engine whose deduplication the group cannot check (a Distributed table deduplicates in the tables it writes to): "+
				"give those tables a deduplication window, or replays after a crash or a timed-out insert can be written twice",
				zap.String("table", s.db+"."+t.name), zap.String("engine", t.engine))
			continue
		}
		was := t.windowOf(serverDefault)
		if was > 0 {
			continue
		}
		stmt := s.alterStatement(t.name)
		if !s.alter {
			logger.Warn("A table of the member ignores deduplication tokens (create_schema is false, so the group leaves it as it is): "+
				"a batch replayed after a crash or after an insert that timed out but committed can be written twice. To fix, run the statement given",
				zap.String("table", s.db+"."+t.name), zap.String("statement", stmt))
			continue
		}
		if err := conn.Exec(ctx, stmt); err != nil {
			logger.Warn("Could not set the table's deduplication window; replays into it may be written twice. Run the statement given",
				zap.String("table", s.db+"."+t.name), zap.String("statement", stmt), zap.Error(err))
			continue
		}
		logger.Info("Set the table's deduplication window, so that ClickHouse drops a replayed insert it already took (deduplication::table_window: 0 leaves tables alone)",
			zap.String("table", s.db+"."+t.name), zap.String("setting", dedupWindowSetting),
			zap.Int("was", was), zap.Int("now", s.window))
	}
}
