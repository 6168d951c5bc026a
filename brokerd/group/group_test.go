package group

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memJournal keeps journal records in memory, in order, like the compacted
// log does before compaction.
type memJournal struct {
	recs []KV
	fail error
}

func (j *memJournal) Append(kvs []KV) error {
	if j.fail != nil {
		return j.fail
	}
	j.recs = append(j.recs, kvs...)
	return nil
}

func (j *memJournal) Replay(fn func(key, value []byte) error) error {
	for _, r := range j.recs {
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

var t0 = time.Unix(1_700_000_000, 0)

// send runs one request through the state at now and returns the call, whose
// answer may be parked.
func send(s *state, req kmsg.Request, now time.Time) *call {
	cl := &call{req: req, reply: make(chan kmsg.Response, 1), client: ClientInfo{ClientID: "c", ClientHost: "/127.0.0.1"}}
	s.handle(cl, now)
	return cl
}

func answer[T kmsg.Response](t *testing.T, cl *call) T {
	t.Helper()
	select {
	case r := <-cl.reply:
		return r.(T)
	default:
		t.Fatalf("no answer to %s", kmsg.NameForKey(cl.req.Key()))
		panic("unreachable")
	}
}

func parked(t *testing.T, cl *call) {
	t.Helper()
	select {
	case r := <-cl.reply:
		t.Fatalf("%s answered early: %+v", kmsg.NameForKey(cl.req.Key()), r)
	default:
	}
}

func joinReq(group, member string, instance *string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group = group
	r.MemberID = member
	r.InstanceID = instance
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 20_000
	r.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	p.Metadata = md.AppendTo(nil)
	r.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return r
}

func syncReq(group, member string, gen int32, plan map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	for id, a := range plan {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, []byte(a)
		r.GroupAssignment = append(r.GroupAssignment, ga)
	}
	return r
}

func heartbeatReq(group, member string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return r
}

func commitReq(group, member string, gen int32, topic string, part int32, off int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 8
	r.Group, r.MemberID, r.Generation = group, member, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = part, off
	md := "m"
	p.Metadata = &md
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

// joinNew runs the two-step KIP-394 join and returns the member id and the
// parked second join.
func joinNew(t *testing.T, s *state, group string, now time.Time) (string, *call) {
	t.Helper()
	r1 := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq(group, "", nil), now))
	if r1.ErrorCode != kerr.MemberIDRequired.Code || r1.MemberID == "" {
		t.Fatalf("first join: code %d member %q, want MEMBER_ID_REQUIRED with an id", r1.ErrorCode, r1.MemberID)
	}
	return r1.MemberID, send(s, joinReq(group, r1.MemberID, nil), now)
}

func TestRebalanceTwoMembers(t *testing.T) {
	s := newState()
	a, ja := joinNew(t, s, "g", t0)
	ra := answer[*kmsg.JoinGroupResponse](t, ja)
	if ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != a || len(ra.Members) != 1 {
		t.Fatalf("join a: %+v", ra)
	}
	sa := answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, map[string]string{a: "A1"}), t0))
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "A1" || *sa.Protocol != "range" {
		t.Fatalf("sync a: %+v", sa)
	}

	now := t0.Add(time.Second)
	b, jb := joinNew(t, s, "g", now)
	parked(t, jb)
	if got := s.groups["g"].state; got != statePreparing {
		t.Fatalf("state %v, want PreparingRebalance", got)
	}
	hb := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", a, 1), now))
	if hb.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", hb.ErrorCode)
	}
	// A commit of the old generation is still allowed while revoking.
	oc := answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "t", 0, 5), now))
	if c := oc.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("commit while preparing: %d", c)
	}
	ja2 := send(s, joinReq("g", a, nil), now)
	ra2 := answer[*kmsg.JoinGroupResponse](t, ja2)
	rb := answer[*kmsg.JoinGroupResponse](t, jb)
	if ra2.Generation != 2 || rb.Generation != 2 || ra2.LeaderID != a || rb.LeaderID != a {
		t.Fatalf("gen/leader: a %+v b %+v", ra2, rb)
	}
	if len(ra2.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("leader sees %d members, follower %d", len(ra2.Members), len(rb.Members))
	}
	sb := send(s, syncReq("g", b, 2, nil), now)
	parked(t, sb)
	cm := answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 2, "t", 0, 6), now))
	if c := cm.Topics[0].Partitions[0].ErrorCode; c != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit while completing: %d, want REBALANCE_IN_PROGRESS", c)
	}
	sa2 := answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 2, map[string]string{a: "A2", b: "B2"}), now))
	rsb := answer[*kmsg.SyncGroupResponse](t, sb)
	if string(sa2.MemberAssignment) != "A2" || string(rsb.MemberAssignment) != "B2" {
		t.Fatalf("assignments: %q %q", sa2.MemberAssignment, rsb.MemberAssignment)
	}
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", b, 1), now)).ErrorCode; c != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation heartbeat: %d", c)
	}
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", "nobody", 2), now)).ErrorCode; c != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member heartbeat: %d", c)
	}
}

func TestSessionExpiryEmptiesGroup(t *testing.T) {
	s := newState()
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, map[string]string{a: "x"}), t0))
	dl, ok := s.nextDeadline()
	if !ok || !dl.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next deadline %v %v, want session end", dl, ok)
	}
	s.expire(t0.Add(9 * time.Second))
	if len(s.groups["g"].members) != 1 {
		t.Fatal("member expired early")
	}
	s.expire(t0.Add(10 * time.Second))
	g := s.groups["g"]
	if len(g.members) != 0 || g.state != stateEmpty || g.generation != 2 {
		t.Fatalf("after expiry: %d members, %v, gen %d", len(g.members), g.state, g.generation)
	}
	if _, ok := s.nextDeadline(); ok {
		t.Fatal("an empty group still has a deadline")
	}
}

func TestRebalanceTimeoutDropsSilentMember(t *testing.T) {
	s := newState()
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
	b, jb := joinNew(t, s, "g", t0)
	// a keeps heartbeating but never rejoins.
	for i := 1; i <= 19; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		s.expire(now)
		send(s, heartbeatReq("g", a, 1), now)
	}
	parked(t, jb)
	s.expire(t0.Add(20 * time.Second))
	rb := answer[*kmsg.JoinGroupResponse](t, jb)
	if rb.ErrorCode != 0 || rb.LeaderID != b || len(rb.Members) != 1 || rb.Generation != 2 {
		t.Fatalf("join after rebalance timeout: %+v", rb)
	}
	if _, ok := s.groups["g"].members[a]; ok {
		t.Fatal("silent member kept")
	}
}

func TestCommitRules(t *testing.T) {
	s := newState()
	// Simple commits create a group with no members.
	r := answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("simple", "", -1, "t", 1, 42), t0))
	if c := r.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("simple commit: %d", c)
	}
	r = answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("nogroup", "m", 3, "t", 1, 42), t0))
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.IllegalGeneration.Code {
		t.Fatalf("commit to unknown group with generation: %d", c)
	}
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
	cases := []struct {
		member string
		gen    int32
		want   int16
	}{
		{"", -1, kerr.UnknownMemberID.Code}, // simple commit to a group with members
		{a, 0, kerr.IllegalGeneration.Code},
		{"x", 1, kerr.UnknownMemberID.Code},
		{a, 1, 0},
	}
	for _, c := range cases {
		r := answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", c.member, c.gen, "t", 0, 7), t0))
		if got := r.Topics[0].Partitions[0].ErrorCode; got != c.want {
			t.Errorf("commit member %q gen %d: %d, want %d", c.member, c.gen, got, c.want)
		}
	}
	big := commitReq("g", a, 1, "t", 0, 8)
	md := string(make([]byte, maxMetadataBytes+1))
	big.Topics[0].Partitions[0].Metadata = &md
	if got := answer[*kmsg.OffsetCommitResponse](t, send(s, big, t0)).Topics[0].Partitions[0].ErrorCode; got != kerr.OffsetMetadataTooLarge.Code {
		t.Errorf("oversized metadata: %d", got)
	}
	if o, _ := s.lookup("g", "t", 0); o.offset != 7 {
		t.Errorf("stored offset %d, want 7", o.offset)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	s := newState()
	// A dynamic member first, so it leads; the no-rebalance path is for
	// followers.
	other, jo := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, jo)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", other, 1, nil), t0))
	iid := "host-1"
	js := send(s, joinReq("g", "", &iid), t0)
	parked(t, js)
	answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", other, nil), t0))
	j := answer[*kmsg.JoinGroupResponse](t, js)
	if j.ErrorCode != 0 || j.Generation != 2 || j.LeaderID != other {
		t.Fatalf("static join: %+v", j)
	}
	old := j.MemberID
	ss := send(s, syncReq("g", old, 2, nil), t0)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", other, 2, map[string]string{old: "S", other: "O"}), t0))
	answer[*kmsg.SyncGroupResponse](t, ss)

	// The static member restarts: a new id, same subscription, no rebalance.
	j2 := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", "", &iid), t0))
	if j2.ErrorCode != 0 || j2.Generation != 2 || j2.MemberID == old {
		t.Fatalf("static rejoin: %+v", j2)
	}
	if st := s.groups["g"].state; st != stateStable {
		t.Fatalf("state %v after static rejoin, want Stable", st)
	}
	hb := heartbeatReq("g", old, 2)
	hb.InstanceID = &iid
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, hb, t0)).ErrorCode; c != kerr.FencedInstanceID.Code {
		t.Fatalf("old static id heartbeat: %d, want FENCED_INSTANCE_ID", c)
	}
	sy := answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", j2.MemberID, 2, nil), t0))
	if string(sy.MemberAssignment) != "S" {
		t.Fatalf("assignment after static rejoin %q, want S", sy.MemberAssignment)
	}
}

func TestLeaveBatchAndDelete(t *testing.T) {
	s := newState()
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 1, "t", 0, 3), t0))

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version = 2
	del.Groups = []string{"g", "missing"}
	dr := answer[*kmsg.DeleteGroupsResponse](t, send(s, del, t0))
	if dr.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code || dr.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete: %+v", dr.Groups)
	}

	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 5
	lv.Group = "g"
	for _, id := range []string{a, "ghost"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		lv.Members = append(lv.Members, m)
	}
	lr := answer[*kmsg.LeaveGroupResponse](t, send(s, lv, t0))
	if lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr.Members)
	}
	if g := s.groups["g"]; g.state != stateEmpty || g.generation != 2 {
		t.Fatalf("after leave: %v gen %d", g.state, g.generation)
	}

	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 4
	lg.StatesFilter = []string{"empty"}
	if got := answer[*kmsg.ListGroupsResponse](t, send(s, lg, t0)).Groups; len(got) != 1 || got[0].Group != "g" {
		t.Fatalf("list empty groups: %+v", got)
	}

	dr = answer[*kmsg.DeleteGroupsResponse](t, send(s, del, t0))
	if dr.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete empty group: %d", dr.Groups[0].ErrorCode)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version = 5
	dg.Groups = []string{"g"}
	if st := answer[*kmsg.DescribeGroupsResponse](t, send(s, dg, t0)).Groups[0].State; st != "Dead" {
		t.Fatalf("deleted group state %q", st)
	}
}

func TestJournalReplay(t *testing.T) {
	j := &memJournal{}
	c, err := New(Config{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, g := range []string{"keep", "drop"} {
		resp, err := c.Handle(ctx, commitReq(g, "", -1, "orders", 2, 99))
		if err != nil || resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit %s: %v %+v", g, err, resp)
		}
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"drop"}
	if _, err := c.Handle(ctx, del); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Handle(ctx, del); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handle after Close: %v", err)
	}

	c2, err := New(Config{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 8
	for _, g := range []string{"keep", "drop"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		f.Groups = append(f.Groups, rg)
	}
	resp, err := c2.Handle(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	groups := resp.(*kmsg.OffsetFetchResponse).Groups
	if len(groups[0].Topics) != 1 || groups[0].Topics[0].Partitions[0].Offset != 99 || *groups[0].Topics[0].Partitions[0].Metadata != "m" {
		t.Fatalf("replayed offsets of keep: %+v", groups[0])
	}
	if len(groups[1].Topics) != 0 {
		t.Fatalf("deleted group came back: %+v", groups[1])
	}

	// A failing journal refuses the commit instead of acknowledging it.
	j.fail = errors.New("disk full")
	resp, err = c2.Handle(ctx, commitReq("keep", "", -1, "orders", 2, 100))
	if err != nil || resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("commit on failing journal: %v %+v", err, resp)
	}

	bad := &memJournal{recs: []KV{{Key: []byte{0, 1, 0}, Value: []byte{1}}}}
	if _, err := New(Config{Journal: bad}); !errors.Is(err, ErrCorruptJournal) {
		t.Fatalf("corrupt journal: %v, want ErrCorruptJournal", err)
	}
	skip := &memJournal{recs: []KV{{Key: []byte{0, 9, 1, 2}, Value: []byte{3}}}}
	if c3, err := New(Config{Journal: skip}); err != nil {
		t.Fatalf("unknown key version: %v", err)
	} else {
		c3.Close()
	}
}

func TestHandleRejectsOtherKeys(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Handle(context.Background(), kmsg.NewPtrMetadataRequest()); !errors.Is(err, ErrNotGroupRequest) {
		t.Fatalf("metadata request: %v", err)
	}
	jr := joinReq("g", "", nil)
	jr.Version = 10
	if _, err := c.Handle(context.Background(), jr); !errors.Is(err, ErrNotGroupRequest) {
		t.Fatalf("too new version: %v", err)
	}
}

// FuzzReplay feeds arbitrary journal records: loading must fail cleanly or
// succeed, never panic, and a group it restores must then survive a static
// member's rejoin, heartbeats, every deadline passing and a retention sweep.
func FuzzReplay(f *testing.F) {
	f.Add(offsetKey("g", "t", 1), offsetValue(offset{offset: 5, epoch: -1, metadata: "x"}))
	f.Add(groupKey("g"), []byte{0, 3})
	f.Add([]byte{0, 2}, []byte(nil))
	{
		v := kmsg.NewGroupMetadataValue()
		v.Version, v.ProtocolType, v.Generation = valueGroupV, "consumer", 3
		v.Protocol, v.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("m1")
		for i, iid := range []*string{nil, kmsg.StringPtr("i")} {
			m := kmsg.NewGroupMetadataValueMember()
			m.MemberID, m.InstanceID = fmt.Sprintf("m%d", i+1), iid
			m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = 10_000, 20_000
			md := kmsg.NewConsumerMemberMetadata()
			md.Topics = []string{"t"}
			m.Subscription = md.AppendTo(nil)
			v.Members = append(v.Members, m)
		}
		f.Add(groupKey("g"), v.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, k, v []byte) {
		c, err := New(Config{Journal: &memJournal{recs: []KV{{Key: k, Value: v}}}})
		if err != nil {
			return
		}
		c.Close()
		s, err := load(&memJournal{recs: []KV{{Key: k, Value: v}}}, t0, 0)
		if err != nil {
			t.Fatalf("New accepted what load refused: %v", err)
		}
		for name, g := range s.groups {
			for _, m := range g.members {
				send(s, heartbeatReq(name, m.id, g.generation), t0)
				if m.instanceID != nil {
					send(s, joinReq(name, "", m.instanceID), t0)
				}
			}
		}
		for i := 1; i <= 4; i++ {
			s.expire(t0.Add(time.Duration(i) * time.Hour))
		}
		s.sweep(t0.Add(30 * 24 * time.Hour))
	})
}

// FuzzHandle decodes an arbitrary request body for every served key and
// version and runs it against a group with a settled member and a rebalance
// under way, then lets every deadline pass: nothing may panic, and every
// request that is answered gets a response of its own kind.
func FuzzHandle(f *testing.F) {
	for _, r := range []kmsg.Request{
		joinReq("g", "", nil), syncReq("g", "m", 1, map[string]string{"m": "x"}),
		heartbeatReq("g", "m", 1), commitReq("g", "", -1, "t", 0, 1),
	} {
		f.Add(r.Key(), r.GetVersion(), r.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		top, ok := Keys()[key]
		if !ok || version < 0 || version > top {
			return
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		s := newState()
		a, ja := joinNew(t, s, "g", t0)
		answer[*kmsg.JoinGroupResponse](t, ja)
		answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
		_, jb := joinNew(t, s, "g", t0)
		cl := send(s, req, t0)
		for i := 1; i <= 4; i++ {
			s.expire(t0.Add(time.Duration(i) * time.Hour))
		}
		for _, c := range []*call{cl, jb} {
			select {
			case resp := <-c.reply:
				if resp == nil || resp.Key() != c.req.Key() {
					t.Fatalf("answer %v to %s", resp, kmsg.NameForKey(c.req.Key()))
				}
			default:
			}
		}
		if _, ok := s.nextDeadline(); ok && len(s.live) == 0 {
			t.Fatal("a deadline without a live group")
		}
	})
}

func TestJoinValidation(t *testing.T) {
	withProtocols := func(r *kmsg.JoinGroupRequest, typ string, names ...string) *kmsg.JoinGroupRequest {
		r.ProtocolType = typ
		r.Protocols = nil
		for _, n := range names {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = n, []byte(n)
			r.Protocols = append(r.Protocols, p)
		}
		return r
	}
	cases := []struct {
		name string
		req  func() *kmsg.JoinGroupRequest
		want int16
	}{
		{"empty group id", func() *kmsg.JoinGroupRequest { return joinReq("", "", nil) }, kerr.InvalidGroupID.Code},
		{"session too short", func() *kmsg.JoinGroupRequest {
			r := joinReq("g", "", nil)
			r.SessionTimeoutMillis = 1
			return r
		}, kerr.InvalidSessionTimeout.Code},
		{"no protocols", func() *kmsg.JoinGroupRequest { return withProtocols(joinReq("g", "", nil), "consumer") }, kerr.InconsistentGroupProtocol.Code},
		{"other protocol type", func() *kmsg.JoinGroupRequest { return withProtocols(joinReq("g", "", nil), "connect", "range") }, kerr.InconsistentGroupProtocol.Code},
		{"no common protocol", func() *kmsg.JoinGroupRequest { return withProtocols(joinReq("g", "", nil), "consumer", "roundrobin") }, kerr.InconsistentGroupProtocol.Code},
		{"unknown member id", func() *kmsg.JoinGroupRequest { return joinReq("g", "ghost", nil) }, kerr.UnknownMemberID.Code},
		{"unknown member of unknown group", func() *kmsg.JoinGroupRequest { return joinReq("other", "ghost", nil) }, kerr.UnknownMemberID.Code},
		{"v4 needs a member id", func() *kmsg.JoinGroupRequest { return joinReq("g", "", nil) }, kerr.MemberIDRequired.Code},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newState()
			// A settled member using "range" in group g.
			a, ja := joinNew(t, s, "g", t0)
			answer[*kmsg.JoinGroupResponse](t, ja)
			answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, nil), t0))
			r := answer[*kmsg.JoinGroupResponse](t, send(s, c.req(), t0))
			if r.ErrorCode != c.want {
				t.Fatalf("code %d, want %d", r.ErrorCode, c.want)
			}
			if st := s.groups["g"].state; st != stateStable {
				t.Fatalf("a refused join moved the group to %v", st)
			}
		})
	}
}

func TestProtocolSelectionAndOldJoin(t *testing.T) {
	s := newState()
	j := func(member string, names ...string) *kmsg.JoinGroupRequest {
		r := joinReq("g", member, nil)
		r.Version = 3 // before KIP-394: no MEMBER_ID_REQUIRED round trip
		r.Protocols = nil
		for _, n := range names {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = n
			r.Protocols = append(r.Protocols, p)
		}
		return r
	}
	ca := send(s, j("", "sticky", "range"), t0)
	ra := answer[*kmsg.JoinGroupResponse](t, ca)
	if ra.ErrorCode != 0 || *ra.Protocol != "sticky" {
		t.Fatalf("first v3 join: %+v", ra)
	}
	// b prefers range, c prefers range: range wins two votes to one.
	cb := send(s, j("", "range", "sticky"), t0)
	cc := send(s, j("", "range", "sticky"), t0)
	parked(t, cb)
	parked(t, cc)
	ca = send(s, j(ra.MemberID, "sticky", "range"), t0)
	for _, c := range []*call{ca, cb, cc} {
		r := answer[*kmsg.JoinGroupResponse](t, c)
		if r.ErrorCode != 0 || r.Generation != 2 || *r.Protocol != "range" {
			t.Fatalf("join: code %d gen %d protocol %q, want range in generation 2", r.ErrorCode, r.Generation, *r.Protocol)
		}
	}
}

func TestPendingMemberExpires(t *testing.T) {
	s := newState()
	r := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", "", nil), t0))
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("code %d", r.ErrorCode)
	}
	if dl, ok := s.nextDeadline(); !ok || !dl.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("pending deadline %v %v", dl, ok)
	}
	s.expire(t0.Add(10 * time.Second))
	if got := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", r.MemberID, nil), t0.Add(11*time.Second))); got.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join with an expired pending id: %d, want UNKNOWN_MEMBER_ID", got.ErrorCode)
	}
}

func TestOffsetFetchVersions(t *testing.T) {
	s := newState()
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", "", -1, "b", 1, 11), t0))
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", "", -1, "a", 0, 10), t0))
	for _, v := range []int16{1, 2, 7} {
		f := kmsg.NewPtrOffsetFetchRequest()
		f.Version = v
		f.Group = "g"
		if v < 2 {
			ft := kmsg.NewOffsetFetchRequestTopic()
			ft.Topic, ft.Partitions = "a", []int32{0, 5}
			f.Topics = append(f.Topics, ft)
		}
		r := answer[*kmsg.OffsetFetchResponse](t, send(s, f, t0))
		if v < 2 {
			ps := r.Topics[0].Partitions
			if len(ps) != 2 || ps[0].Offset != 10 || ps[1].Offset != -1 {
				t.Fatalf("v%d: %+v", v, ps)
			}
			continue
		}
		// A null topic list is every committed offset, sorted.
		if len(r.Topics) != 2 || r.Topics[0].Topic != "a" || r.Topics[1].Topic != "b" || r.Topics[1].Partitions[0].Offset != 11 {
			t.Fatalf("v%d all topics: %+v", v, r.Topics)
		}
	}
}

// TestCoordinatorTimerExpiresSession drives the real run loop and clock: a
// member that stops heartbeating is removed once its session ends, even
// though heartbeats had pushed the first deadline back.
func TestCoordinatorTimerExpiresSession(t *testing.T) {
	c, err := New(Config{Journal: &memJournal{}, MinSessionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	do := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		resp, err := c.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	jr := joinReq("g", "", nil)
	jr.SessionTimeoutMillis = 300
	id := do(jr).(*kmsg.JoinGroupResponse).MemberID
	jr.MemberID = id
	if r := do(jr).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("join: %d", r.ErrorCode)
	}
	do(syncReq("g", id, 1, nil))
	for range 3 {
		if code := do(heartbeatReq("g", id, 1)).(*kmsg.HeartbeatResponse).ErrorCode; code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := do(describe).(*kmsg.DescribeGroupsResponse).Groups[0]
		if g.State == "Empty" && len(g.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not expired after 10s: %s with %d members", g.State, len(g.Members))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := do(heartbeatReq("g", id, 1)).(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after expiry: %d, want UNKNOWN_MEMBER_ID", code)
	}
}

// journaled returns a state whose changes go to j, as the coordinator's do.
func journaled(j *memJournal) *state {
	s := newState()
	s.append = j.Append
	return s
}

// restart replays j into a fresh state loaded at now, as New does when the
// broker comes back, with later changes going to the same journal.
func restart(t *testing.T, j *memJournal, now time.Time) *state {
	t.Helper()
	s, err := load(j, now, 0)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	s.append = j.Append
	return s
}

// stableTwo builds group g with members a (leader) and b settled in
// generation 2 with assignments "A" and "B", journaled in j.
func stableTwo(t *testing.T, j *memJournal) (s *state, a, b string) {
	t.Helper()
	s = journaled(j)
	a, ja := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, ja)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 1, map[string]string{a: "A"}), t0))
	b, jb := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", a, nil), t0))
	if r := answer[*kmsg.JoinGroupResponse](t, jb); r.ErrorCode != 0 || r.Generation != 2 {
		t.Fatalf("b join: %+v", r)
	}
	sb := send(s, syncReq("g", b, 2, nil), t0)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 2, map[string]string{a: "A", b: "B"}), t0))
	if r := answer[*kmsg.SyncGroupResponse](t, sb); string(r.MemberAssignment) != "B" {
		t.Fatalf("b assignment %q", r.MemberAssignment)
	}
	answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", a, 2, "t", 0, 5), t0))
	return s, a, b
}

// TestRestartKeepsMembers: after a coordinator restart a member that
// heartbeats, syncs and commits with its old id and generation carries on
// with no error and no rebalance.
func TestRestartKeepsMembers(t *testing.T) {
	j := &memJournal{}
	stableTwo(t, j)
	before := j.recs
	var a, b string
	{
		s := restart(t, &memJournal{recs: before}, t0)
		ids := s.groups["g"].memberOrder()
		if len(ids) != 2 {
			t.Fatalf("restored %d members, want 2", len(ids))
		}
		a, b = ids[0], ids[1]
	}
	t1 := t0.Add(time.Minute)
	s := restart(t, j, t1)
	g := s.groups["g"]
	if g.state != stateStable || g.generation != 2 || g.leader != a || g.protocol != "range" || g.protocolType != "consumer" {
		t.Fatalf("restored group: %v gen %d leader %q protocol %q/%q", g.state, g.generation, g.leader, g.protocolType, g.protocol)
	}
	for _, id := range []string{a, b} {
		m := g.members[id]
		if m.client.ClientID != "c" || m.client.ClientHost != "/127.0.0.1" || m.sessionTimeout != 10*time.Second || m.rebalanceTimeout != 20*time.Second {
			t.Fatalf("restored member %s: %+v", id, m)
		}
		if !m.expires.Equal(t1.Add(10 * time.Second)) {
			t.Fatalf("member %s session ends %v, want load time + session", id, m.expires)
		}
	}
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", a, 2), t1)).ErrorCode; c != 0 {
		t.Fatalf("heartbeat with the old id and generation: %d", c)
	}
	sy := answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", b, 2, nil), t1))
	if sy.ErrorCode != 0 || string(sy.MemberAssignment) != "B" {
		t.Fatalf("sync after restart: code %d assignment %q", sy.ErrorCode, sy.MemberAssignment)
	}
	if c := answer[*kmsg.OffsetCommitResponse](t, send(s, commitReq("g", b, 2, "t", 1, 9), t1)).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("commit after restart: %d", c)
	}
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", a, 1), t1)).ErrorCode; c != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat of an older generation after restart: %d", c)
	}
	// An unchanged follower that rejoins gets the generation back as is.
	jr := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", b, nil), t1))
	if jr.ErrorCode != 0 || jr.Generation != 2 || jr.LeaderID != a {
		t.Fatalf("follower rejoin after restart: %+v", jr)
	}
	if g.state != stateStable || g.generation != 2 {
		t.Fatalf("after restart: %v gen %d, want Stable gen 2", g.state, g.generation)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	d := answer[*kmsg.DescribeGroupsResponse](t, send(s, dg, t1)).Groups[0]
	if d.State != "Stable" || len(d.Members) != 2 || string(d.Members[1].MemberAssignment) != "B" {
		t.Fatalf("describe after restart: %+v", d)
	}
}

// TestRestartExpiresAbsentMember: a restored member that never comes back
// expires one session after the load; the other member is told to rejoin
// and the next generation has only it.
func TestRestartExpiresAbsentMember(t *testing.T) {
	j := &memJournal{}
	_, a, b := stableTwo(t, j)
	t1 := t0.Add(time.Hour)
	s := restart(t, j, t1)
	if dl, ok := s.nextDeadline(); !ok || !dl.Equal(t1.Add(10*time.Second)) {
		t.Fatalf("first deadline after restart %v %v, want load time + session", dl, ok)
	}
	// a heartbeats, b is gone.
	now := t1.Add(5 * time.Second)
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", a, 2), now)).ErrorCode; c != 0 {
		t.Fatalf("heartbeat: %d", c)
	}
	s.expire(t1.Add(10*time.Second - time.Millisecond))
	if len(s.groups["g"].members) != 2 {
		t.Fatal("absent member expired before its session ended")
	}
	now = t1.Add(10 * time.Second)
	s.expire(now)
	g := s.groups["g"]
	if _, ok := g.members[b]; ok || g.state != statePreparing {
		t.Fatalf("after b's session: members %d, state %v", len(g.members), g.state)
	}
	if c := answer[*kmsg.HeartbeatResponse](t, send(s, heartbeatReq("g", a, 2), now)).ErrorCode; c != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the expiry: %d, want REBALANCE_IN_PROGRESS", c)
	}
	r := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", a, nil), now))
	if r.ErrorCode != 0 || r.Generation != 3 || r.LeaderID != a || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", a, 3, map[string]string{a: "AB"}), now))

	// With nobody left, the group empties and the Empty state is
	// journaled: a second restart brings it back Empty at generation 4.
	s.expire(now.Add(10 * time.Second))
	if g.state != stateEmpty || g.generation != 4 {
		t.Fatalf("after a's session: %v gen %d", g.state, g.generation)
	}
	s2 := restart(t, j, now.Add(time.Hour))
	g2 := s2.groups["g"]
	if g2.state != stateEmpty || g2.generation != 4 || len(g2.members) != 0 || g2.emptySince != now.Add(10*time.Second).UnixMilli() {
		t.Fatalf("second restart: %v gen %d, %d members, empty since %d", g2.state, g2.generation, len(g2.members), g2.emptySince)
	}
	if o, ok := s2.lookup("g", "t", 0); !ok || o.offset != 5 {
		t.Fatalf("offset after restarts: %+v %v", o, ok)
	}
	if _, ok := s2.nextDeadline(); ok {
		t.Fatal("an Empty restored group has a deadline")
	}
}

// TestRestartKeepsStaticMembers: the journal follows a static member's
// replacement, so after a restart the instance id maps to the id it now
// uses and still fences the ones before it.
func TestRestartKeepsStaticMembers(t *testing.T) {
	j := &memJournal{}
	s := journaled(j)
	other, jo := joinNew(t, s, "g", t0)
	answer[*kmsg.JoinGroupResponse](t, jo)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", other, 1, nil), t0))
	iid := "host-1"
	js := send(s, joinReq("g", "", &iid), t0)
	answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", other, nil), t0))
	first := answer[*kmsg.JoinGroupResponse](t, js).MemberID
	ss := send(s, syncReq("g", first, 2, nil), t0)
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", other, 2, map[string]string{first: "S", other: "O"}), t0))
	answer[*kmsg.SyncGroupResponse](t, ss)
	// The static member's process restarts before the broker does.
	second := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", "", &iid), t0)).MemberID

	t1 := t0.Add(time.Minute)
	s = restart(t, j, t1)
	if held := s.groups["g"].statics[iid]; held != second {
		t.Fatalf("instance id maps to %q after restart, want %q", held, second)
	}
	hb := func(member string) int16 {
		r := heartbeatReq("g", member, 2)
		r.InstanceID = &iid
		return answer[*kmsg.HeartbeatResponse](t, send(s, r, t1)).ErrorCode
	}
	if c := hb(first); c != kerr.FencedInstanceID.Code {
		t.Fatalf("replaced id after restart: %d, want FENCED_INSTANCE_ID", c)
	}
	if c := hb(second); c != 0 {
		t.Fatalf("current static id after restart: %d", c)
	}
	// Another restart of the static member: no rebalance, assignment kept,
	// and the id it replaced is fenced.
	third := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", "", &iid), t1))
	if third.ErrorCode != 0 || third.Generation != 2 || s.groups["g"].state != stateStable {
		t.Fatalf("static rejoin after restart: %+v, state %v", third, s.groups["g"].state)
	}
	if c := hb(second); c != kerr.FencedInstanceID.Code {
		t.Fatalf("id replaced after restart: %d, want FENCED_INSTANCE_ID", c)
	}
	sy := answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", third.MemberID, 2, nil), t1))
	if string(sy.MemberAssignment) != "S" {
		t.Fatalf("static assignment after restart %q, want S", sy.MemberAssignment)
	}

	// A journal that refuses the replacement record undoes it.
	j.fail = errors.New("disk full")
	r := answer[*kmsg.JoinGroupResponse](t, send(s, joinReq("g", "", &iid), t1))
	if r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("static rejoin on a failing journal: %d", r.ErrorCode)
	}
	j.fail = nil
	if s.groups["g"].statics[iid] != third.MemberID {
		t.Fatal("a replacement that was not journaled took effect")
	}
	if c := hb(third.MemberID); c != 0 {
		t.Fatalf("heartbeat after a refused replacement: %d", c)
	}
}

// TestReplayGroupRecords covers records the coordinator does not write
// itself: old value versions, members without a protocol, and a member list
// that does not decode.
func TestReplayGroupRecords(t *testing.T) {
	member := func(id string, session int32) kmsg.GroupMetadataValueMember {
		m := kmsg.NewGroupMetadataValueMember()
		m.MemberID, m.ClientID, m.ClientHost = id, "cl", "/10.0.0.1"
		m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = session, 60_000
		m.Subscription, m.Assignment = []byte("sub-"+id), []byte("asg-"+id)
		return m
	}
	value := func(version int16, protocol *string, ms ...kmsg.GroupMetadataValueMember) []byte {
		v := kmsg.NewGroupMetadataValue()
		v.Version, v.ProtocolType, v.Generation, v.Protocol = version, "consumer", 7, protocol
		v.Leader = kmsg.StringPtr("x")
		v.CurrentStateTimestamp = 1234
		v.Members = ms
		return v.AppendTo(nil)
	}
	rng := kmsg.StringPtr("range")

	// Version 0: no rebalance timeout (the session's is used) and no
	// state time; a leader that is not a member falls to the oldest.
	s := restart(t, &memJournal{recs: []KV{{Key: groupKey("g"), Value: value(0, rng, member("m1", 30_000), member("m2", 1))}}}, t0)
	g := s.groups["g"]
	if g.state != stateStable || g.generation != 7 || g.leader != "m1" || len(g.members) != 2 {
		t.Fatalf("v0 record: %v gen %d leader %q members %d", g.state, g.generation, g.leader, len(g.members))
	}
	if m := g.members["m1"]; m.rebalanceTimeout != 30*time.Second || string(m.metadataFor("range")) != "sub-m1" || string(m.assignment) != "asg-m1" {
		t.Fatalf("v0 member: %+v", m)
	}
	if m := g.members["m2"]; m.sessionTimeout != DefaultMinSessionTimeout {
		t.Fatalf("a 1ms session restored as %v, want the minimum", m.sessionTimeout)
	}

	// A later record replaces the members; one without a protocol is an
	// Empty group whose members rejoin.
	s = restart(t, &memJournal{recs: []KV{
		{Key: groupKey("g"), Value: value(3, rng, member("m1", 30_000))},
		{Key: groupKey("g"), Value: value(3, nil, member("m3", 30_000))},
	}}, t0)
	if g := s.groups["g"]; g.state != stateEmpty || len(g.members) != 0 || g.generation != 7 {
		t.Fatalf("record without a protocol: %v with %d members", g.state, len(g.members))
	}
	if _, ok := s.nextDeadline(); ok {
		t.Fatal("deadline for a group restored Empty")
	}

	// A member list cut short is a corrupt record, like any other.
	full := value(3, rng, member("m1", 30_000))
	for _, cut := range []int{len(full) - 1, len(full) - 12} {
		j := &memJournal{recs: []KV{{Key: groupKey("g"), Value: full[:cut]}}}
		if _, err := New(Config{Journal: j}); !errors.Is(err, ErrCorruptJournal) {
			t.Fatalf("member list cut at %d of %d: %v, want ErrCorruptJournal", cut, len(full), err)
		}
	}
}

// TestCoordinatorExpiresRestoredMember drives the real run loop: a member
// restored from the journal that never heartbeats is expired by the timer
// armed at start, and the Empty group is journaled.
func TestCoordinatorExpiresRestoredMember(t *testing.T) {
	j := &memJournal{}
	s := journaled(j)
	s.minSession = 100 * time.Millisecond
	jr := joinReq("g", "", nil)
	jr.SessionTimeoutMillis = 200
	id := answer[*kmsg.JoinGroupResponse](t, send(s, jr, t0)).MemberID
	jr.MemberID = id
	answer[*kmsg.JoinGroupResponse](t, send(s, jr, t0))
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", id, 1, nil), t0))

	c, err := New(Config{Journal: j, MinSessionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	d := func() kmsg.DescribeGroupsResponseGroup {
		resp, err := c.Handle(context.Background(), describe)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.DescribeGroupsResponse).Groups[0]
	}
	if g := d(); g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != id {
		t.Fatalf("restored group: %+v", g)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g := d(); g.State != "Empty"; g = d() {
		if time.Now().After(deadline) {
			t.Fatalf("restored member not expired after 10s: %s with %d members", g.State, len(g.Members))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Close()
	s2 := restart(t, j, time.Now())
	if g := s2.groups["g"]; g.state != stateEmpty || g.generation != 2 {
		t.Fatalf("after the expiry and a restart: %v gen %d", g.state, g.generation)
	}
}
