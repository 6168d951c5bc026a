package failover

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"strait/checkpoint"
)

// groups lists the groups to move: on the source when it answers, else on
// the destination (where the mirror's group sync committed them).
func (f *run) groups(ctx context.Context, opts Options, srcUp bool, st *checkpoint.State) ([]string, error) {
	adm, where := f.sadm, f.p.Source
	if !srcUp {
		adm, where = f.dadm, f.p.Destination
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: listing groups on %s: %w", ErrCluster, where, err)
	}
	var out []string
	for _, g := range listed.Sorted() {
		if g.ProtocolType != "consumer" && g.ProtocolType != "" {
			continue // not a consumer group (a fleet of strait daemons, Connect)
		}
		if opts.Groups != nil {
			if loc := opts.Groups.FindStringIndex(g.Group); loc == nil || loc[0] != 0 || loc[1] != len(g.Group) {
				continue
			}
			out = append(out, g.Group)
			continue
		}
		offs, err := adm.FetchOffsets(ctx, g.Group)
		if err != nil {
			continue
		}
		mine := false
		offs.Each(func(o kadm.OffsetResponse) {
			if srcUp && f.p.Matches(o.Topic) || !srcUp && f.destSource(st, o.Topic) != "" {
				mine = true
			}
		})
		if mine {
			out = append(out, g.Group)
		}
	}
	return out, nil
}

// destSource is the source topic mirrored into destination topic t ("" if
// none of the checkpointed partitions lands there).
func (f *run) destSource(st *checkpoint.State, t string) string {
	for tp, p := range st.Partitions {
		if p.DestTopic == t {
			return tp.Topic
		}
	}
	return ""
}

// emptyStates are the group states in which no member can commit.
func idle(state string) bool { return state == "Empty" || state == "Dead" || state == "" }

// waitEmpty waits until the group has no member on the source, removing
// static members (KIP-345) by their group.instance.id: a stopped static
// member would otherwise hold its place until its session times out.
func (f *run) waitEmpty(ctx context.Context, opts Options, gm *GroupMove) error {
	began := time.Now()
	defer func() { gm.WaitedMS = time.Since(began).Milliseconds() }()
	deadline := began.Add(opts.GroupTimeout)
	removed := map[string]bool{}
	for {
		described, err := f.sadm.DescribeGroups(ctx, gm.Group)
		if err != nil {
			return fmt.Errorf("%w: describing group %s: %w", ErrCluster, gm.Group, err)
		}
		dg := described[gm.Group]
		gm.SourceState = dg.State
		if idle(dg.State) || opts.DryRun {
			return nil
		}
		var static []string
		for _, m := range dg.Members {
			if m.InstanceID != nil && *m.InstanceID != "" && !removed[*m.InstanceID] {
				static = append(static, *m.InstanceID)
			}
		}
		if len(static) > 0 {
			sort.Strings(static)
			resp, err := f.sadm.LeaveGroup(ctx, kadm.LeaveGroup(gm.Group).InstanceIDs(static...).Reason("strait failover"))
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("%w: removing static members %v of %s: %w", ErrCluster, static, gm.Group, err)
			}
			for _, id := range static {
				removed[id] = true
			}
			gm.Removed = append(gm.Removed, static...)
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s is %s with %d members after %v: stop its consumers (or point them at %s)", ErrGroupActive, gm.Group, dg.State, len(dg.Members), opts.GroupTimeout, f.p.Destination)
		}
		opts.Progress(fmt.Sprintf("waiting for group %s to be empty on %s: %s, %d members", gm.Group, f.p.Source, dg.State, len(dg.Members)))
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// moveGroup takes the group's final commits, translates them and commits
// them on the destination.
func (f *run) moveGroup(ctx context.Context, opts Options, group string, srcUp bool, st *checkpoint.State, rep *Report) (GroupMove, error) {
	gm := GroupMove{Group: group, SourceState: "unreachable", Offsets: []GroupOffset{}}
	if srcUp {
		if opts.Planned {
			if err := f.waitEmpty(ctx, opts, &gm); err != nil {
				return gm, err
			}
		} else if d, err := f.sadm.DescribeGroups(ctx, group); err == nil {
			gm.SourceState = d[group].State
		}
	}
	dendsByTP := map[checkpoint.TP]int64{}
	for _, p := range rep.Partitions {
		dendsByTP[checkpoint.TP{Topic: p.DestTopic, Partition: p.Partition}] = p.DestEnd
	}
	before, err := f.dadm.FetchOffsets(ctx, group)
	if err != nil {
		return gm, fmt.Errorf("%w: group %s on %s: %w", ErrCluster, group, f.p.Destination, err)
	}
	dd, err := f.dadm.DescribeGroups(ctx, group)
	if err != nil {
		return gm, fmt.Errorf("%w: describing %s on %s: %w", ErrCluster, group, f.p.Destination, err)
	}
	destActive := !idle(dd[group].State)
	beforeAt := func(topic string, part int32) int64 {
		if o, ok := before.Lookup(topic, part); ok && o.Err == nil && o.At >= 0 {
			return o.At
		}
		return -1
	}

	if !srcUp {
		gm.From = "destination sync"
		before.Each(func(o kadm.OffsetResponse) {
			src := f.destSource(st, o.Topic)
			if src == "" || o.Err != nil || o.At < 0 {
				return
			}
			gm.Offsets = append(gm.Offsets, GroupOffset{Topic: src, Partition: o.Partition, SourceOffset: -1,
				DestTopic: o.Topic, DestOffset: o.At, Before: o.At, Action: "unchanged", Redeliveries: -1,
				ToRead: max(dendsByTP[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}]-o.At, 0)})
		})
		sortOffsets(gm.Offsets)
		return gm, nil
	}

	gm.From = "source commits"
	committed, err := f.sadm.FetchOffsets(ctx, group)
	if err != nil {
		return gm, fmt.Errorf("%w: commits of %s on %s: %w", ErrCluster, group, f.p.Source, err)
	}
	commit := kadm.Offsets{}
	for _, o := range committed.Sorted() {
		if o.Err != nil || o.At < 0 || !f.p.Matches(o.Topic) {
			continue
		}
		tp := checkpoint.TP{Topic: o.Topic, Partition: o.Partition}
		row := GroupOffset{Topic: o.Topic, Partition: o.Partition, SourceOffset: o.At, DestTopic: f.p.DestTopic(o.Topic), DestOffset: -1, Redeliveries: -1}
		destTopic, d, ok := st.Translate(tp, o.At)
		if destTopic != "" {
			row.DestTopic = destTopic
		}
		row.Before = beforeAt(row.DestTopic, o.Partition)
		switch {
		case !ok:
			row.Action = "untranslatable"
		case destActive:
			row.DestOffset, row.Action = d, "active-on-destination"
		case row.Before == d:
			row.DestOffset, row.Action, row.Redeliveries = d, "unchanged", 0
		case row.Before > d:
			row.DestOffset, row.Action, row.Redeliveries = row.Before, "kept-ahead", 0
		default:
			row.DestOffset, row.Redeliveries = d, 0
			row.Action = "committed"
			if opts.DryRun {
				row.Action = "would-commit"
			}
			commit.Add(kadm.Offset{Topic: row.DestTopic, Partition: o.Partition, At: d, LeaderEpoch: -1})
		}
		if row.DestOffset >= 0 {
			row.ToRead = max(dendsByTP[checkpoint.TP{Topic: row.DestTopic, Partition: o.Partition}]-row.DestOffset, 0)
		}
		gm.Offsets = append(gm.Offsets, row)
	}
	if destActive {
		return gm, fmt.Errorf("%w: %s already has members on %s: its offsets were left alone", ErrGroupActive, group, f.p.Destination)
	}
	if len(commit) > 0 && !opts.DryRun {
		resp, err := f.dadm.CommitOffsets(ctx, group, commit)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return gm, fmt.Errorf("%w: committing %s on %s: %w", ErrCluster, group, f.p.Destination, err)
		}
	}
	return gm, nil
}

func sortOffsets(os []GroupOffset) {
	sort.Slice(os, func(i, j int) bool {
		if os[i].Topic != os[j].Topic {
			return os[i].Topic < os[j].Topic
		}
		return os[i].Partition < os[j].Partition
	})
}
