package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchAll is the group's committed offsets as OffsetFetch v8 reports them
// for a null topic list: topic → partition → offset.
func fetchAll(t *testing.T, s *state, group string) map[string]map[int32]int64 {
	t.Helper()
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	f.Groups = append(f.Groups, rg)
	out := map[string]map[int32]int64{}
	for _, rt := range answer[*kmsg.OffsetFetchResponse](t, send(s, f, t0)).Groups[0].Topics {
		out[rt.Topic] = map[int32]int64{}
		for _, p := range rt.Partitions {
			out[rt.Topic][p.Partition] = p.Offset
		}
	}
	return out
}

func listed(t *testing.T, s *state, group string) bool {
	t.Helper()
	for _, g := range answer[*kmsg.ListGroupsResponse](t, send(s, kmsg.NewPtrListGroupsRequest(), t0)).Groups {
		if g.Group == group {
			return true
		}
	}
	return false
}

// emptyAfterCommit runs a one-member consumer group g that commits t/0=5 at
// t0 and leaves at left.
func emptyAfterCommit(t *testing.T, s *state, left time.Time) {
	t.Helper()
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "t", 0, 5), t0))
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "g", a
	answer[*kmsg.LeaveGroupResponse](t, send(s, lv, left))
	if g := s.groups["g"]; g.state != stateEmpty || g.emptySince != left.UnixMilli() {
		t.Fatalf("after leave: %v, empty since %d", g.state, g.emptySince)
	}
}

// TestRetentionEmptyGroup: an Empty group's offsets expire once retention
// has passed since it became Empty (not since the commit), the group goes
// with them, and the tombstones keep both gone after a restart.
func TestRetentionEmptyGroup(t *testing.T) {
	j := &memJournal{}
	s := journaled(j)
	s.retention = 200 * time.Millisecond
	left := t0.Add(time.Second)
	emptyAfterCommit(t, s, left)

	s.sweep(left.Add(199 * time.Millisecond))
	if got := fetchAll(t, s, "g"); got["t"][0] != 5 {
		t.Fatalf("offset expired before retention passed since the group emptied: %v", got)
	}
	s.sweep(left.Add(200 * time.Millisecond))
	if got := fetchAll(t, s, "g"); len(got) != 0 {
		t.Fatalf("offsets after retention: %v", got)
	}
	if listed(t, s, "g") {
		t.Fatal("an Empty group without offsets is still listed")
	}
	s = restart(t, j, left.Add(time.Hour))
	if got := fetchAll(t, s, "g"); len(got) != 0 || listed(t, s, "g") {
		t.Fatalf("expired group after restart: offsets %v, listed %v", got, listed(t, s, "g"))
	}
}

// TestRetentionAcrossRestart: the time a group became Empty comes from the
// journal, so a group Empty for 6 days before a restart loses its offsets
// one day after it (default retention, 7 days).
func TestRetentionAcrossRestart(t *testing.T) {
	j := &memJournal{}
	s := journaled(j)
	emptyAfterCommit(t, s, t0)
	s = restart(t, j, t0.Add(6*24*time.Hour))
	s.sweep(t0.Add(7*24*time.Hour - time.Millisecond))
	if got := fetchAll(t, s, "g"); got["t"][0] != 5 {
		t.Fatalf("offsets before 7 days: %v", got)
	}
	s.sweep(t0.Add(7 * 24 * time.Hour))
	if got := fetchAll(t, s, "g"); len(got) != 0 {
		t.Fatalf("offsets after 7 days: %v", got)
	}
	s = restart(t, j, t0.Add(8*24*time.Hour))
	if _, ok := s.groups["g"]; ok {
		t.Fatal("the removed group came back on restart")
	}
}

// TestRetentionStableGroup: while a consumer group has members, offsets of
// topics they subscribe to never expire, however old; offsets of topics no
// member subscribes to expire per commit (Kafka's rule); during a rebalance
// nothing expires.
func TestRetentionStableGroup(t *testing.T) {
	s := newState()
	s.retention = 200 * time.Millisecond
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "t", 0, 5), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "gone", 0, 6), t0))
	for i := 1; i <= 10; i++ {
		s.sweep(t0.Add(time.Duration(i) * time.Hour))
		if got := fetchAll(t, s, "g"); got["t"][0] != 5 || len(got) != 1 {
			t.Fatalf("sweep %d: offsets %v, want only the subscribed t/0", i, got)
		}
	}
	// A rebalance under way: the group's offsets all stay.
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "gone", 1, 7), t0))
	joinNew(t, s, "g", t0)
	if st := s.groups["g"].state; st != statePreparing {
		t.Fatalf("state %v, want PreparingRebalance", st)
	}
	s.sweep(t0.Add(100 * time.Hour))
	if got := fetchAll(t, s, "g"); len(got) != 2 || got["gone"][1] != 7 {
		t.Fatalf("offsets during a rebalance: %v", got)
	}
}

// TestRetentionSimpleCommits: offsets committed with no membership expire
// per commit time; a failed tombstone append expires nothing; negative
// retention keeps everything.
func TestRetentionSimpleCommits(t *testing.T) {
	j := &memJournal{}
	s := journaled(j)
	s.retention = 200 * time.Millisecond
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("simple", "", -1, "t", 0, 10), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("simple", "", -1, "t", 1, 11), t0.Add(150*time.Millisecond)))

	j.fail = errors.New("disk full")
	s.sweep(t0.Add(time.Hour))
	j.fail = nil
	if got := fetchAll(t, s, "simple"); len(got["t"]) != 2 {
		t.Fatalf("offsets after a failed sweep: %v", got)
	}

	s.sweep(t0.Add(200 * time.Millisecond))
	if got := fetchAll(t, s, "simple"); len(got["t"]) != 1 || got["t"][1] != 11 {
		t.Fatalf("after the first commit's retention: %v, want only t/1", got)
	}
	s.sweep(t0.Add(350 * time.Millisecond))
	if got := fetchAll(t, s, "simple"); len(got) != 0 || listed(t, s, "simple") {
		t.Fatalf("after both commits' retention: %v, listed %v", got, listed(t, s, "simple"))
	}
	if s2 := restart(t, j, t0.Add(time.Hour)); listed(t, s2, "simple") {
		t.Fatal("expired simple group came back on restart")
	}

	keep := newState()
	keep.retention = -1
	answer[*kmsg.OffsetCommitResponse](t, send(keep, commitReq("simple", "", -1, "t", 0, 10), t0))
	emptyAfterCommit(t, keep, t0)
	for i := 1; i <= 10; i++ {
		keep.sweep(t0.Add(time.Duration(i) * 365 * 24 * time.Hour))
	}
	if a, b := fetchAll(t, keep, "simple"), fetchAll(t, keep, "g"); a["t"][0] != 10 || b["t"][0] != 5 {
		t.Fatalf("negative retention lost offsets: simple %v, g %v", a, b)
	}
}

// TestCoordinatorRetention drives the real run loop and clock with a short
// retention: an Empty group's offsets disappear and stay gone after a
// restart, while a Stable group's offsets, committed earlier, remain.
func TestCoordinatorRetention(t *testing.T) {
	j := &memJournal{}
	cfg := Config{Journal: j, OffsetsRetention: 200 * time.Millisecond, RetentionCheckInterval: 20 * time.Millisecond}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()
	ctx := context.Background()
	do := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		resp, err := c.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	member := func(group string) string {
		id := do(joinReq(group, "", nil)).(*kmsg.JoinGroupResponse).MemberID
		if r := do(joinReq(group, id, nil)).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
			t.Fatalf("join %s: %d", group, r.ErrorCode)
		}
		do(syncReq(group, id, 1, nil))
		if code := do(commitReq(group, id, 1, "t", 0, 42)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %s: %d", group, code)
		}
		return id
	}
	offsetOf := func(group string) int64 {
		f := kmsg.NewPtrOffsetFetchRequest()
		f.Version = 7
		f.Group = group
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "t", []int32{0}
		f.Topics = append(f.Topics, ft)
		return do(f).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0].Offset
	}
	member("stable")
	leaver := member("leaving")
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "leaving", leaver
	do(lv)

	deadline := time.Now().Add(10 * time.Second)
	for offsetOf("leaving") != -1 {
		if time.Now().After(deadline) {
			t.Fatal("offsets of the Empty group not expired after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The stable group committed first, so retention has passed for its
	// commit too: only membership kept it.
	if got := offsetOf("stable"); got != 42 {
		t.Fatalf("Stable group's offset %d, want 42", got)
	}
	c.Close()
	if c, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if got := offsetOf("leaving"); got != -1 {
		t.Fatalf("expired offset after restart: %d", got)
	}
	if got := offsetOf("stable"); got != 42 {
		t.Fatalf("Stable group's offset after restart %d, want 42", got)
	}
}
