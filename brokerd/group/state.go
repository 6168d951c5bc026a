package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMinSessionTimeout is Kafka's group.min.session.timeout.ms, the
// shortest session a member may ask for (Config.MinSessionTimeout).
const DefaultMinSessionTimeout = 6 * time.Second

const (
	// maxSessionTimeout is Kafka's group.max.session.timeout.ms.
	maxSessionTimeout = 30 * time.Minute
	// maxMetadataBytes is offset.metadata.max.bytes.
	maxMetadataBytes = 4096
)

// groupState is the classic group state machine:
//
//	Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//	CompletingRebalance --leader sync--> Stable
//	Stable / CompletingRebalance --join change, leave, expiry--> PreparingRebalance
//	PreparingRebalance --no member left--> Empty
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
)

func (s groupState) String() string {
	switch s {
	case statePreparing:
		return "PreparingRebalance"
	case stateCompleting:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Empty"
	}
}

type offset struct {
	offset       int64
	epoch        int32
	metadata     string
	commitMillis int64
}

type member struct {
	id               string
	instanceID       *string
	client           ClientInfo
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	// expires is when the session ends unless a heartbeat, commit or
	// join arrives; it is not checked while a join or sync is parked.
	expires time.Time
	// seq orders members by first join: the leader falls to the oldest.
	seq uint64
	// join and sync hold a request waiting for the rebalance to move on.
	join *parkedJoin
	sync *parkedSync
}

type parkedJoin struct {
	cl   *call
	resp *kmsg.JoinGroupResponse
}

type parkedSync struct {
	cl   *call
	resp *kmsg.SyncGroupResponse
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

type group struct {
	name         string
	state        groupState
	protocolType string
	protocol     string // selected protocol; "" while Empty
	generation   int32
	leader       string
	members      map[string]*member
	// pending holds dynamic member ids handed out with MEMBER_ID_REQUIRED
	// until the member joins with it or the deadline passes.
	pending map[string]time.Time
	// statics maps group.instance.id to the member id that holds it.
	statics map[string]string
	// Invariant: rebalanceDeadline is set iff state == statePreparing,
	// syncDeadline iff state == stateCompleting.
	rebalanceDeadline time.Time
	syncDeadline      time.Time
	offsets           map[string]map[int32]offset
	// emptySince is when the group last became Empty, in Unix millis
	// (Kafka's current state timestamp); -1 when unknown (a group never
	// journaled as Empty, or one from an old record without the field).
	// Offset retention of an Empty group counts from it.
	emptySince int64
}

func (g *group) memberOrder() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		sa, sb := g.members[a].seq, g.members[b].seq
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return ids
}

func (g *group) setOffset(topic string, partition int32, o offset) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = make(map[int32]offset)
		g.offsets[topic] = ps
	}
	ps[partition] = o
}

// live reports whether the group has deadlines the timer must watch.
func (g *group) live() bool {
	return len(g.members) > 0 || len(g.pending) > 0 || g.state != stateEmpty
}

// supports reports whether a joining member's protocols are acceptable to
// the group: any non-empty set while it has no members, otherwise the same
// protocol type and at least one protocol every current member supports.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		all := true
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that most members
// list first among those; ties go to the order of the oldest member's list.
func (g *group) selectProtocol() string {
	order := g.memberOrder()
	if len(order) == 0 {
		return ""
	}
	common := func(name string) bool {
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == name }) {
				return false
			}
		}
		return true
	}
	votes := make(map[string]int)
	for _, id := range order {
		for _, p := range g.members[id].protocols {
			if common(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range g.members[order[0]].protocols {
		if v, ok := votes[p.Name]; ok && v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// state is all groups; only the coordinator's run goroutine touches it.
type state struct {
	groups map[string]*group
	// live holds the groups with members, pending members or a rebalance,
	// the only ones with deadlines.
	live map[string]*group
	seq  uint64
	// append writes journal records; a change is applied in memory only
	// after it returned nil.
	append func([]KV) error
	log    *slog.Logger
	// retention is how long offsets outlive their group's members (see
	// sweep); negative keeps them forever.
	retention time.Duration
	// txnOffsets holds offsets committed in open transactions, by
	// producer id (txnoffsets.go).
	txnOffsets map[int64]map[txnOffsetKey]offset
	// minSession is group.min.session.timeout.ms.
	minSession time.Duration
}

func newState() *state {
	return &state{
		groups:     make(map[string]*group),
		live:       make(map[string]*group),
		append:     func([]KV) error { return nil },
		log:        slog.New(slog.DiscardHandler),
		retention:  defaultOffsetsRetention,
		minSession: DefaultMinSessionTimeout,
	}
}

func (s *state) getOrCreate(name string) *group {
	g := s.groups[name]
	if g == nil {
		g = &group{
			name:       name,
			members:    make(map[string]*member),
			pending:    make(map[string]time.Time),
			statics:    make(map[string]string),
			offsets:    make(map[string]map[int32]offset),
			emptySince: -1,
		}
		s.groups[name] = g
	}
	return g
}

func (s *state) dropOffset(group, topic string, partition int32) {
	g := s.groups[group]
	if g == nil {
		return
	}
	if ps := g.offsets[topic]; ps != nil {
		delete(ps, partition)
		if len(ps) == 0 {
			delete(g.offsets, topic)
		}
	}
}

// touch keeps the live set in step with a group after a change.
func (s *state) touch(g *group) {
	if g == nil {
		return
	}
	if g.live() {
		s.live[g.name] = g
	} else {
		delete(s.live, g.name)
	}
}

func reply(cl *call, resp kmsg.Response) { cl.reply <- resp }

func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	if prefix == "" {
		prefix = "member"
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

func maxRebalanceTimeout(g *group) time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// handle dispatches one request; now is the time of the event.
// It returns the group whose deadlines may have moved earlier (new
// members, a rebalance starting), or nil when none did: heartbeats and
// commits only push deadlines later.
func (s *state) handle(cl *call, now time.Time) *group {
	if cl.fn != nil {
		cl.fn(now)
		reply(cl, nil)
		return nil
	}
	var touched *group
	switch r := cl.req.(type) {
	case *kmsg.TxnOffsetCommitRequest:
		s.txnCommit(cl, r, now)
	case *kmsg.JoinGroupRequest:
		s.join(cl, r, now)
		touched = s.groups[r.Group]
	case *kmsg.SyncGroupRequest:
		s.sync(cl, r, now)
		touched = s.groups[r.Group]
	case *kmsg.HeartbeatRequest:
		s.heartbeat(cl, r, now)
	case *kmsg.LeaveGroupRequest:
		s.leave(cl, r, now)
		touched = s.groups[r.Group]
	case *kmsg.OffsetCommitRequest:
		s.commit(cl, r, now)
	case *kmsg.OffsetFetchRequest:
		s.fetch(cl, r)
	case *kmsg.DescribeGroupsRequest:
		s.describe(cl, r)
	case *kmsg.ListGroupsRequest:
		s.list(cl, r)
	case *kmsg.DeleteGroupsRequest:
		s.deleteGroups(cl, r)
	case *kmsg.OffsetDeleteRequest:
		s.offsetDelete(cl, r)
	default:
		// Handle only passes keys listed by Keys; answer anyway so the
		// caller never waits forever.
		reply(cl, nil)
	}
	s.touch(touched)
	return touched
}

// join serves JoinGroup.
func (s *state) join(cl *call, r *kmsg.JoinGroupRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = r.MemberID
	resp.Generation = -1
	fail := func(code int16) {
		resp.ErrorCode = code
		reply(cl, resp)
	}
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	switch {
	case r.Group == "":
		fail(kerr.InvalidGroupID.Code)
		return
	case session < s.minSession || session > maxSessionTimeout:
		fail(kerr.InvalidSessionTimeout.Code)
		return
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	var instanceID *string
	if r.InstanceID != nil && *r.InstanceID != "" {
		instanceID = r.InstanceID
	}
	g := s.groups[r.Group]
	if g == nil {
		if r.MemberID != "" {
			fail(kerr.UnknownMemberID.Code)
			return
		}
		g = s.getOrCreate(r.Group)
	}
	if !g.supports(r.ProtocolType, r.Protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	if len(g.members) == 0 {
		// The first member sets the type the others must match.
		g.protocolType = r.ProtocolType
	}
	fill := func(m *member) {
		m.client = cl.client
		m.sessionTimeout = session
		m.rebalanceTimeout = rebalance
		m.instanceID = instanceID
	}

	if instanceID != nil {
		iid := *instanceID
		held, known := g.statics[iid]
		switch {
		case r.MemberID == "" && known:
			s.replaceStatic(g, g.members[held], cl, r, resp, fill, now)
			return
		case r.MemberID == "":
			// A new static member skips MEMBER_ID_REQUIRED: its
			// instance id already names it.
			m := &member{id: newMemberID(iid), protocols: r.Protocols}
			fill(m)
			s.addMember(g, m, now)
			g.statics[iid] = m.id
			s.rejoin(g, m, cl, resp, now, true)
			return
		case !known:
			fail(kerr.UnknownMemberID.Code)
			return
		case held != r.MemberID:
			fail(kerr.FencedInstanceID.Code)
			return
		}
	}

	if r.MemberID == "" {
		id := newMemberID(cl.client.ClientID)
		if r.Version >= 4 {
			// KIP-394: hand out the id first so a client that times
			// out mid-join does not leave an anonymous member behind.
			g.pending[id] = now.Add(session)
			resp.MemberID = id
			fail(kerr.MemberIDRequired.Code)
			return
		}
		m := &member{id: id, protocols: r.Protocols}
		fill(m)
		s.addMember(g, m, now)
		s.rejoin(g, m, cl, resp, now, true)
		return
	}
	if _, ok := g.pending[r.MemberID]; ok {
		delete(g.pending, r.MemberID)
		m := &member{id: r.MemberID, protocols: r.Protocols}
		fill(m)
		s.addMember(g, m, now)
		s.rejoin(g, m, cl, resp, now, true)
		return
	}
	m := g.members[r.MemberID]
	if m == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	changed := !m.sameProtocols(r.Protocols)
	m.protocols = r.Protocols
	fill(m)
	s.rejoin(g, m, cl, resp, now, changed)
}

func (s *state) addMember(g *group, m *member, now time.Time) {
	s.seq++
	m.seq = s.seq
	m.expires = now.Add(m.sessionTimeout)
	g.members[m.id] = m
}

// rejoin moves a member that sent JoinGroup through the state machine:
// during a rebalance it waits; in a settled group an unchanged follower
// gets the current generation back at once, anything else starts a
// rebalance.
func (s *state) rejoin(g *group, m *member, cl *call, resp *kmsg.JoinGroupResponse, now time.Time, changed bool) {
	m.expires = now.Add(m.sessionTimeout)
	switch g.state {
	case stateCompleting, stateStable:
		if !changed && m.id != g.leader {
			s.fillJoin(g, m, resp, false)
			reply(cl, resp)
			return
		}
		if !changed && g.state == stateCompleting {
			// The leader lost its join answer: send it again.
			s.fillJoin(g, m, resp, true)
			reply(cl, resp)
			return
		}
	}
	s.park(m, cl, resp)
	if g.state != statePreparing {
		s.prepareRebalance(g, now)
	}
	s.maybeCompleteJoin(g, now)
}

// replaceStatic hands a known group.instance.id to a new member id (the
// client restarted); the old id is fenced from then on (KIP-345).
func (s *state) replaceStatic(g *group, old *member, cl *call, r *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, fill func(*member), now time.Time) {
	iid := *old.instanceID
	nm := &member{id: newMemberID(iid), protocols: r.Protocols, assignment: old.assignment, seq: old.seq}
	fill(nm)
	changed := !old.sameProtocols(r.Protocols)
	if old.join != nil {
		old.join.resp.ErrorCode = kerr.FencedInstanceID.Code
		reply(old.join.cl, old.join.resp)
		old.join = nil
	}
	if old.sync != nil {
		old.sync.resp.ErrorCode = kerr.FencedInstanceID.Code
		reply(old.sync.cl, old.sync.resp)
		old.sync = nil
	}
	delete(g.members, old.id)
	g.members[nm.id] = nm
	g.statics[iid] = nm.id
	wasLeader := g.leader == old.id
	if wasLeader {
		g.leader = nm.id
	}
	nm.expires = now.Add(nm.sessionTimeout)
	if g.state == stateStable && !changed && !wasLeader {
		// Same subscription: keep the assignment, no rebalance. The new
		// id is journaled first, as Kafka does: a restart must bring
		// back the id the member now uses, not fence it with the old one.
		if err := s.persistGroup(g, now); err != nil {
			// Nothing was parked on the old member in Stable, so
			// putting it back undoes the replacement completely.
			delete(g.members, nm.id)
			g.members[old.id] = old
			g.statics[iid] = old.id
			resp.MemberID = ""
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			reply(cl, resp)
			return
		}
		s.fillJoin(g, nm, resp, false)
		reply(cl, resp)
		return
	}
	s.rejoin(g, nm, cl, resp, now, true)
}

func (s *state) park(m *member, cl *call, resp *kmsg.JoinGroupResponse) {
	if m.join != nil {
		// A retried join replaces the one whose connection is
		// probably gone.
		m.join.resp.ErrorCode = kerr.RebalanceInProgress.Code
		reply(m.join.cl, m.join.resp)
	}
	m.join = &parkedJoin{cl: cl, resp: resp}
}

// fillJoin writes the current generation into a join answer; the leader's
// answer lists every member with its metadata for the chosen protocol.
func (s *state) fillJoin(g *group, m *member, resp *kmsg.JoinGroupResponse, withMembers bool) {
	resp.ErrorCode = 0
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.Members = nil
	if !withMembers {
		return
	}
	for _, id := range g.memberOrder() {
		mm := g.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = mm.id
		jm.InstanceID = mm.instanceID
		jm.ProtocolMetadata = mm.metadataFor(g.protocol)
		resp.Members = append(resp.Members, jm)
	}
}

// prepareRebalance starts a rebalance: every member must join again
// within the largest rebalance timeout.
func (s *state) prepareRebalance(g *group, now time.Time) {
	if g.state == stateCompleting {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync.resp.ErrorCode = kerr.RebalanceInProgress.Code
				reply(m.sync.cl, m.sync.resp)
				m.sync = nil
			}
		}
	}
	for _, m := range g.members {
		m.assignment = nil
	}
	g.state = statePreparing
	g.syncDeadline = time.Time{}
	g.rebalanceDeadline = now.Add(maxRebalanceTimeout(g))
}

func (s *state) maybeCompleteJoin(g *group, now time.Time) {
	if g.state != statePreparing || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	s.completeJoin(g, now)
}

// completeJoin ends the join phase: members that did not rejoin are
// dropped, the generation advances, and every waiting member learns the
// result; the leader gets the member list to compute assignments.
func (s *state) completeJoin(g *group, now time.Time) {
	for _, m := range g.members {
		if m.join == nil {
			s.dropMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	g.rebalanceDeadline = time.Time{}
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol = ""
		g.leader = ""
		g.emptySince = now.UnixMilli()
		s.persistGroup(g, now)
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.memberOrder()[0]
	}
	g.state = stateCompleting
	g.syncDeadline = now.Add(maxRebalanceTimeout(g))
	s.log.Debug("group: join complete", "group", g.name, "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	for _, m := range g.members {
		s.fillJoin(g, m, m.join.resp, m.id == g.leader)
		reply(m.join.cl, m.join.resp)
		m.join = nil
		m.expires = now.Add(m.sessionTimeout)
	}
}

// dropMember removes a member, answering anything it has parked with code.
func (s *state) dropMember(g *group, m *member, code int16) {
	if m.join != nil {
		m.join.resp.ErrorCode = code
		reply(m.join.cl, m.join.resp)
		m.join = nil
	}
	if m.sync != nil {
		m.sync.resp.ErrorCode = code
		reply(m.sync.cl, m.sync.resp)
		m.sync = nil
	}
	delete(g.members, m.id)
	if m.instanceID != nil && g.statics[*m.instanceID] == m.id {
		delete(g.statics, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// afterRemoval rebalances the members that remain (or empties the group).
func (s *state) afterRemoval(g *group, now time.Time) {
	if g.state != statePreparing {
		s.prepareRebalance(g, now)
	}
	s.maybeCompleteJoin(g, now)
}

func (s *state) persistGroup(g *group, now time.Time) error {
	return s.append([]KV{{Key: groupKey(g.name), Value: groupValue(g, now.UnixMilli())}})
}

// checkMember validates the member fields common to Sync, Heartbeat and
// OffsetCommit; it returns the member or an error code.
func checkMember(g *group, memberID string, instanceID *string, generation int32) (*member, int16) {
	if g == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if instanceID != nil && *instanceID != "" {
		held, ok := g.statics[*instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID.Code
		}
		if held != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return m, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// sync serves SyncGroup.
func (s *state) sync(cl *call, r *kmsg.SyncGroupRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) {
		resp.ErrorCode = code
		reply(cl, resp)
	}
	g := s.groups[r.Group]
	m, code := checkMember(g, r.MemberID, r.InstanceID, r.Generation)
	if code != 0 {
		fail(code)
		return
	}
	if (r.ProtocolType != nil && *r.ProtocolType != g.protocolType) || (r.Protocol != nil && *r.Protocol != g.protocol) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	m.expires = now.Add(m.sessionTimeout)
	switch g.state {
	case statePreparing:
		fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		resp.MemberAssignment = m.assignment
		reply(cl, resp)
	case stateCompleting:
		if m.sync != nil {
			m.sync.resp.ErrorCode = kerr.RebalanceInProgress.Code
			reply(m.sync.cl, m.sync.resp)
		}
		m.sync = &parkedSync{cl: cl, resp: resp}
		if m.id != g.leader {
			return
		}
		plan := make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			plan[a.MemberID] = a.MemberAssignment
		}
		for id, mm := range g.members {
			mm.assignment = plan[id]
			if mm.assignment == nil {
				mm.assignment = []byte{}
			}
		}
		if err := s.persistGroup(g, now); err != nil {
			// Without the record a restart would lose this
			// generation; make everyone try again.
			for _, mm := range g.members {
				if mm.sync != nil {
					mm.sync.resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
					reply(mm.sync.cl, mm.sync.resp)
					mm.sync = nil
				}
			}
			s.prepareRebalance(g, now)
			return
		}
		g.state = stateStable
		g.syncDeadline = time.Time{}
		for _, mm := range g.members {
			if mm.sync != nil {
				mm.sync.resp.MemberAssignment = mm.assignment
				reply(mm.sync.cl, mm.sync.resp)
				mm.sync = nil
			}
		}
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// heartbeat serves Heartbeat.
func (s *state) heartbeat(cl *call, r *kmsg.HeartbeatRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	g := s.groups[r.Group]
	m, code := checkMember(g, r.MemberID, r.InstanceID, r.Generation)
	if m != nil && code == 0 {
		m.expires = now.Add(m.sessionTimeout)
		if g.state == statePreparing {
			code = kerr.RebalanceInProgress.Code
		}
	}
	resp.ErrorCode = code
	reply(cl, resp)
}

// leave serves LeaveGroup: one member before v3, a batch from v3 on.
func (s *state) leave(cl *call, r *kmsg.LeaveGroupRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	g := s.groups[r.Group]
	removed := false
	leaveOne := func(memberID string, instanceID *string) int16 {
		if g == nil {
			return kerr.UnknownMemberID.Code
		}
		if instanceID != nil && *instanceID != "" {
			held, ok := g.statics[*instanceID]
			if !ok {
				return kerr.UnknownMemberID.Code
			}
			if memberID != "" && held != memberID {
				return kerr.FencedInstanceID.Code
			}
			memberID = held
		}
		if _, ok := g.pending[memberID]; ok {
			delete(g.pending, memberID)
			removed = true
			return 0
		}
		m := g.members[memberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		s.dropMember(g, m, kerr.UnknownMemberID.Code)
		removed = true
		return 0
	}
	if r.Version < 3 {
		resp.ErrorCode = leaveOne(r.MemberID, nil)
	} else {
		for _, lm := range r.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID = lm.MemberID
			rm.InstanceID = lm.InstanceID
			rm.ErrorCode = leaveOne(lm.MemberID, lm.InstanceID)
			if resp.ErrorCode == 0 {
				resp.ErrorCode = rm.ErrorCode
			}
			resp.Members = append(resp.Members, rm)
		}
	}
	if removed && g != nil && (len(g.members) > 0 || g.state != stateEmpty) {
		s.afterRemoval(g, now)
	}
	reply(cl, resp)
}

// expire applies every deadline that has passed at now.
func (s *state) expire(now time.Time) {
	for _, g := range s.live {
		for id, dl := range g.pending {
			if !now.Before(dl) {
				delete(g.pending, id)
			}
		}
		removed := false
		for _, m := range g.members {
			if m.join == nil && m.sync == nil && !now.Before(m.expires) {
				s.log.Info("group: member session expired", "group", g.name, "member", m.id, "session", m.sessionTimeout)
				s.dropMember(g, m, kerr.UnknownMemberID.Code)
				removed = true
			}
		}
		switch {
		case g.state == statePreparing && !now.Before(g.rebalanceDeadline):
			// Completing the join accounts for every removal.
			s.completeJoin(g, now)
			removed = false
		case g.state == stateCompleting && !now.Before(g.syncDeadline):
			// Members that never sent SyncGroup are gone.
			for _, m := range g.members {
				if m.sync == nil {
					s.dropMember(g, m, kerr.UnknownMemberID.Code)
				}
			}
			removed = true
		}
		if removed && (len(g.members) > 0 || g.state != stateEmpty) {
			s.afterRemoval(g, now)
		}
		s.maybeCompleteJoin(g, now)
		s.touch(g)
	}
}

// nextDeadline is the earliest moment expire has work to do.
func (s *state) nextDeadline() (time.Time, bool) {
	var next time.Time
	for _, g := range s.live {
		if dl, ok := groupDeadline(g); ok && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	return next, !next.IsZero()
}

// groupDeadline is the earliest deadline of one group.
func groupDeadline(g *group) (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, dl := range g.pending {
		consider(dl)
	}
	for _, m := range g.members {
		if m.join == nil && m.sync == nil {
			consider(m.expires)
		}
	}
	switch g.state {
	case statePreparing:
		consider(g.rebalanceDeadline)
	case stateCompleting:
		consider(g.syncDeadline)
	}
	return next, !next.IsZero()
}
