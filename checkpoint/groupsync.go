package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TranslateFunc maps a committed source offset of a source partition to the
// destination topic and offset where a consumer must resume; ok is false
// when the partition is not mirrored or the offset cannot be translated.
type TranslateFunc func(tp TP, offset int64) (destTopic string, destOffset int64, ok bool)

// SyncReport says what one SyncGroups round did.
type SyncReport struct {
	Groups []GroupSync
}

// GroupSync is the outcome for one consumer group.
type GroupSync struct {
	Group string
	// Skipped is why the whole group was left alone ("" when it was
	// considered), e.g. "2 members active on the destination".
	Skipped string
	// Committed are the destination offsets written this round.
	Committed []OffsetSync
	// Unchanged counts partitions whose destination commit was already at
	// or past the translated offset (commits only move forward).
	Unchanged int
	// Untranslated counts committed source partitions the translate
	// function could not map (not mirrored, or below the map's start).
	Untranslated int
	// Err is a failure to fetch or commit this group's offsets.
	Err error
}

// OffsetSync is one translated commit.
type OffsetSync struct {
	Source     TP
	SourceAt   int64
	DestTopic  string
	DestAt     int64
	PreviousAt int64 // the destination's commit before, -1 for none
}

// String summarises a report for logs.
func (r SyncReport) String() string {
	var s string
	for _, g := range r.Groups {
		switch {
		case g.Skipped != "":
			s += fmt.Sprintf("%s: skipped (%s); ", g.Group, g.Skipped)
		case g.Err != nil:
			s += fmt.Sprintf("%s: %v; ", g.Group, g.Err)
		default:
			s += fmt.Sprintf("%s: %d committed, %d unchanged, %d untranslated; ", g.Group, len(g.Committed), g.Unchanged, g.Untranslated)
		}
	}
	return s
}

// SyncGroups runs one round of consumer group offset sync: it lists the
// source groups whose names match one of groups (anchored expressions,
// compiled by the caller), fetches their committed offsets, translates each
// with translate, and commits them to the same group on the destination —
// only while that group has no members there (state Empty or Dead, or not
// known to the destination at all), and only forward: a partition whose
// destination commit is already at or past the translated offset is left
// alone, so a group never moves backwards on the destination.
//
// The mirror calls it every sync.interval. A failure to list groups is
// returned as an error (wrapping ErrIO); failures of single groups are in
// the report, and the other groups still sync.
func SyncGroups(ctx context.Context, src, dst *kadm.Client, groups []*regexp.Regexp, translate TranslateFunc) (SyncReport, error) {
	var rep SyncReport
	if len(groups) == 0 {
		return rep, nil
	}
	listed, err := src.ListGroups(ctx)
	if err != nil {
		return rep, fmt.Errorf("%w: list source groups: %v", ErrIO, err)
	}
	var names []string
	for _, g := range listed.Groups() {
		for _, re := range groups {
			if fullMatch(re, g) {
				names = append(names, g)
				break
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return rep, nil
	}
	described, err := dst.DescribeGroups(ctx, names...)
	if err != nil && len(described) == 0 {
		return rep, fmt.Errorf("%w: describe destination groups: %v", ErrIO, err)
	}
	srcOffsets := src.FetchManyOffsets(ctx, names...)
	dstOffsets := dst.FetchManyOffsets(ctx, names...)
	for _, name := range names {
		gs := GroupSync{Group: name}
		if d, ok := described[name]; ok && d.Err == nil && len(d.Members) > 0 {
			gs.Skipped = fmt.Sprintf("%d members active on the destination (state %s)", len(d.Members), d.State)
			rep.Groups = append(rep.Groups, gs)
			continue
		} else if ok && d.Err == nil && d.State != "" && d.State != "Empty" && d.State != "Dead" {
			gs.Skipped = "destination group state " + d.State
			rep.Groups = append(rep.Groups, gs)
			continue
		}
		sr := srcOffsets[name]
		if sr.Err != nil {
			gs.Err = fmt.Errorf("%w: fetch source offsets: %v", ErrIO, sr.Err)
			rep.Groups = append(rep.Groups, gs)
			continue
		}
		dr := dstOffsets[name]
		if dr.Err != nil && !isNoGroup(dr.Err) {
			gs.Err = fmt.Errorf("%w: fetch destination offsets: %v", ErrIO, dr.Err)
			rep.Groups = append(rep.Groups, gs)
			continue
		}
		commit := kadm.Offsets{}
		var pending []OffsetSync
		sr.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.At < 0 {
				return
			}
			tp := TP{Topic: o.Topic, Partition: o.Partition}
			dt, at, ok := translate(tp, o.At)
			if !ok {
				gs.Untranslated++
				return
			}
			prev := int64(-1)
			if cur, ok := dr.Fetched.Lookup(dt, o.Partition); ok && cur.Err == nil {
				prev = cur.At
			}
			if prev >= at {
				gs.Unchanged++
				return
			}
			commit.Add(kadm.Offset{Topic: dt, Partition: o.Partition, At: at, LeaderEpoch: -1})
			pending = append(pending, OffsetSync{Source: tp, SourceAt: o.At, DestTopic: dt, DestAt: at, PreviousAt: prev})
		})
		if len(pending) > 0 {
			resps, err := dst.CommitOffsets(ctx, name, commit)
			if err == nil {
				err = resps.Error()
			}
			if err != nil {
				gs.Err = fmt.Errorf("%w: commit destination offsets: %v", ErrIO, err)
			} else {
				sort.Slice(pending, func(i, j int) bool {
					a, b := pending[i].Source, pending[j].Source
					return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
				})
				gs.Committed = pending
			}
		}
		rep.Groups = append(rep.Groups, gs)
	}
	return rep, nil
}

// fullMatch reports whether re matches all of s, whether or not the caller
// anchored it.
func fullMatch(re *regexp.Regexp, s string) bool {
	loc := re.FindStringIndex(s)
	if loc != nil && loc[0] == 0 && loc[1] == len(s) {
		return true
	}
	// A leftmost-first match may be shorter than a full one ("a|ab").
	anchored, err := regexp.Compile(`^(?:` + re.String() + `)$`)
	return err == nil && anchored.MatchString(s)
}

// isNoGroup: a group the destination has never seen has no offsets.
func isNoGroup(err error) bool {
	return errors.Is(err, kerr.GroupIDNotFound)
}
