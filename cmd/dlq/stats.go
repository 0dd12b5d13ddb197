// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/otelfailover/otelcol-failover/internal/dlqmeta"
)

// stats.go answers "how much is parked, since when, why, and is the replay
// catching up": per topic and partition the records and bytes, the replay
// consumer groups' lag, the oldest and newest stamp time, and counts by
// reason and failed member read from the stamp headers. Offsets alone
// cannot say why or since when, so stats reads every record of the topics
// (values included: Kafka has no headers-only fetch).

type partitionStats struct {
	Partition int32 `json:"partition"`
	// StartOffset and EndOffset bound the records the partition holds.
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	Records     int64 `json:"records"`
	Bytes       int64 `json:"bytes"`
	// Lag is, per replay consumer group, the records it has not committed.
	Lag    map[string]int64 `json:"lag,omitempty"`
	Oldest *time.Time       `json:"oldest_stamp,omitempty"`
	Newest *time.Time       `json:"newest_stamp,omitempty"`
}

type reasonCount struct {
	Reason       string `json:"reason"`
	FailedMember string `json:"failed_member"`
	PoisonReason string `json:"poison_reason,omitempty"`
	Records      int64  `json:"records"`
}

type topicStats struct {
	Topic   string   `json:"topic"`
	Role    string   `json:"role"`
	Signal  string   `json:"signal"`
	Writers []string `json:"writers"`
	// Groups are the replay consumer groups (DLQ topics only).
	Groups     []string         `json:"replay_groups,omitempty"`
	Partitions []partitionStats `json:"partitions"`
	Records    int64            `json:"records"`
	Bytes      int64            `json:"bytes"`
	Lag        map[string]int64 `json:"lag,omitempty"`
	Oldest     *time.Time       `json:"oldest_stamp,omitempty"`
	Newest     *time.Time       `json:"newest_stamp,omitempty"`
	Reasons    []reasonCount    `json:"reasons"`
}

// unstamped stands for a missing header in reason counts.
const unstamped = "(none)"

func runStats(ctx context.Context, s *setup, sess *session, topicName string, asJSON bool, stdout io.Writer) error {
	topics, err := selectTopics(s, topicName)
	if err != nil {
		return err
	}
	var all []topicStats
	var missing []error
	for _, t := range topics {
		ts, err := statsOf(ctx, sess, t)
		if err != nil {
			if isNoTopic(err) {
				missing = append(missing, err)
				continue
			}
			return err
		}
		all = append(all, ts)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if all == nil {
			all = []topicStats{}
		}
		if err := enc.Encode(all); err != nil {
			return err
		}
	} else if err := printStats(stdout, all); err != nil {
		return err
	}
	return joinMissing(missing)
}

func statsOf(ctx context.Context, sess *session, t *topicInfo) (topicStats, error) {
	ts := topicStats{Topic: t.name, Role: t.role, Signal: t.signal, Writers: t.writers, Groups: t.groups, Reasons: []reasonCount{}}
	parts, err := sess.partitions(ctx, t)
	if err != nil {
		return ts, err
	}
	committed := map[string]map[int32]int64{}
	for _, g := range t.groups {
		if committed[g], err = sess.committed(ctx, t, g); err != nil {
			return ts, err
		}
	}
	byPart := map[int32]*partitionStats{}
	for _, p := range parts {
		ps := partitionStats{Partition: p.partition, StartOffset: p.start, EndOffset: p.end}
		if len(t.groups) > 0 {
			ps.Lag = map[string]int64{}
			if ts.Lag == nil {
				ts.Lag = map[string]int64{}
			}
		}
		for _, g := range t.groups {
			// Without a commit, the replay starts at the earliest record
			// (the reference receivers' initial_offset): all of it is due.
			from, ok := committed[g][p.partition]
			if !ok || from < p.start {
				from = p.start
			}
			ps.Lag[g] = max(0, p.end-from)
			ts.Lag[g] += ps.Lag[g]
		}
		ts.Partitions = append(ts.Partitions, ps)
	}
	for i := range ts.Partitions {
		byPart[ts.Partitions[i].Partition] = &ts.Partitions[i]
	}
	counts := map[reasonCount]int64{}
	err = sess.read(ctx, t, parts, func(rec *kgo.Record) bool {
		ps := byPart[rec.Partition]
		ps.Records++
		ps.Bytes += recordBytes(rec)
		if at, perr := time.Parse(time.RFC3339Nano, header(rec, dlqmeta.KeyTime)); perr == nil {
			ps.Oldest, ps.Newest = widen(ps.Oldest, ps.Newest, at.UTC())
		}
		key := reasonCount{
			Reason:       orNone(header(rec, dlqmeta.KeyReason)),
			FailedMember: orNone(header(rec, dlqmeta.KeyFailedMember)),
		}
		if t.role == rolePoison {
			key.PoisonReason = orNone(header(rec, dlqmeta.KeyPoisonReason))
		}
		counts[key]++
		return true
	})
	if err != nil {
		return ts, err
	}
	for i := range ts.Partitions {
		ps := &ts.Partitions[i]
		ts.Records += ps.Records
		ts.Bytes += ps.Bytes
		if ps.Oldest != nil {
			ts.Oldest, ts.Newest = widen(ts.Oldest, ts.Newest, *ps.Oldest)
			ts.Oldest, ts.Newest = widen(ts.Oldest, ts.Newest, *ps.Newest)
		}
	}
	for k, n := range counts {
		k.Records = n
		ts.Reasons = append(ts.Reasons, k)
	}
	// Most frequent first, then by name: stable output.
	slices.SortFunc(ts.Reasons, func(a, b reasonCount) int {
		return cmp.Or(cmp.Compare(b.Records, a.Records), cmp.Compare(a.Reason, b.Reason),
			cmp.Compare(a.FailedMember, b.FailedMember), cmp.Compare(a.PoisonReason, b.PoisonReason))
	})
	return ts, nil
}

// widen returns [oldest, newest] extended to hold at.
func widen(oldest, newest *time.Time, at time.Time) (o, n *time.Time) {
	o, n = oldest, newest
	if o == nil || at.Before(*o) {
		o = &at
	}
	if n == nil || at.After(*n) {
		n = &at
	}
	return o, n
}

func orNone(s string) string {
	if s == "" {
		return unstamped
	}
	return s
}

const tableTime = "2006-01-02T15:04:05.000Z07:00"

func printStats(w io.Writer, all []topicStats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tROLE\tPARTITION\tRECORDS\tBYTES\tREPLAY GROUP\tLAG\tOLDEST STAMP\tNEWEST STAMP")
	for i := range all {
		ts := &all[i]
		for j := range ts.Partitions {
			p := &ts.Partitions[j]
			if p.Records == 0 && p.EndOffset == p.StartOffset {
				continue // nothing to say; the JSON lists every partition
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", ts.Topic, ts.Role, p.Partition, p.Records, p.Bytes,
				groupsCol(ts.Groups), lagCol(ts.Groups, p.Lag), timeCol(p.Oldest), timeCol(p.Newest))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", ts.Topic, ts.Role, "all", ts.Records, ts.Bytes,
			groupsCol(ts.Groups), lagCol(ts.Groups, ts.Lag), timeCol(ts.Oldest), timeCol(ts.Newest))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tREASON\tFAILED MEMBER\tPOISON REASON\tRECORDS")
	rows := 0
	for i := range all {
		for _, r := range all[i].Reasons {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", all[i].Topic, r.Reason, r.FailedMember, cmp.Or(r.PoisonReason, "-"), r.Records)
			rows++
		}
	}
	if rows == 0 {
		fmt.Fprintln(tw, "(no records)\t\t\t\t")
	}
	return tw.Flush()
}

func groupsCol(groups []string) string {
	if len(groups) == 0 {
		return "-"
	}
	return strings.Join(groups, ",")
}

func lagCol(groups []string, lag map[string]int64) string {
	if len(groups) == 0 {
		return "-"
	}
	vals := make([]string, len(groups))
	for i, g := range groups {
		vals[i] = strconv.FormatInt(lag[g], 10)
	}
	return strings.Join(vals, ",")
}

func timeCol(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(tableTime)
}
