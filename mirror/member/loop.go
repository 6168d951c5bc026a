package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// phase is where the loop is in the group protocol.
type phase int8

const (
	// phaseJoin: JoinGroup (and, on success, SyncGroup) comes next.
	phaseJoin phase = iota
	// phaseStable: the member has its assignment and heartbeats.
	phaseStable
)

func (p phase) String() string {
	if p == phaseStable {
		return "stable"
	}
	return "join"
}

// errBadResponse is an answer that makes no sense (a successful join
// without a member id, say); the loop treats it as transient.
var errBadResponse = errors.New("member: malformed response from the coordinator")

// verdict is what a failure means for the membership.
type verdict int8

const (
	// vRetry: transient (network, coordinator moved or loading); back
	// off, find the coordinator again, retry.
	vRetry verdict = iota
	// vRejoin: a rebalance is under way; join again keeping the id.
	vRejoin
	// vLostMember: the coordinator does not know the member any more;
	// fence and join again with no id.
	vLostMember
	// vLostGeneration: the member is known but its generation is over;
	// fence and join again with the same id (a fresh id would leave the
	// old one in the group until its session expired, stalling the join).
	vLostGeneration
	// vFatal: retrying cannot help.
	vFatal
)

// classify maps a transport error or a Kafka error (kerr) to a verdict;
// for vFatal it also returns the error Run reports.
func classify(err error) (verdict, error) {
	switch {
	case errors.Is(err, kerr.RebalanceInProgress):
		return vRejoin, nil
	case errors.Is(err, kerr.UnknownMemberID):
		return vLostMember, nil
	case errors.Is(err, kerr.IllegalGeneration):
		return vLostGeneration, nil
	case errors.Is(err, kerr.FencedInstanceID):
		return vFatal, fmt.Errorf("%w: %w", ErrFencedInstance, err)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return vFatal, fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, kerr.InconsistentGroupProtocol):
		return vFatal, fmt.Errorf("%w: %w", ErrInconsistentProtocol, err)
	case errors.Is(err, kerr.NotCoordinator), errors.Is(err, kerr.CoordinatorNotAvailable),
		errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.MemberIDRequired),
		errors.Is(err, errBadResponse):
		return vRetry, nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		return vFatal, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	// Retriable Kafka codes and every transport error (refused,
	// reset, timed out, unknown broker).
	return vRetry, nil
}

// loop is the state Run's goroutine owns; nothing else touches it.
type loop struct {
	m   *Membership
	cfg Config
	log *slog.Logger
	bo  *backoff.ExponentialBackOff

	memberID   string
	generation int32
	protocol   string
	leader     bool
	// coordinator is the group coordinator's node id; -1 when it must
	// be found again.
	coordinator int32
	// holding is true while the member may be writing an assignment:
	// from the start of an Assigned call until the next fence.
	// Invariant: the fence clock (lastHeard) only matters while holding.
	holding bool
	// lastHeard is the send time of the last request whose answer
	// proved the membership alive (see fenceDecision).
	lastHeard time.Time
	// rebalanceStart is when the running rebalance began; zero if none.
	rebalanceStart time.Time
	// nextHeartbeat is when the stable loop sends the next heartbeat.
	nextHeartbeat time.Time
	// assigned is the Assigned call in flight, nil if none.
	// Invariant: assigned != nil implies holding and phaseStable.
	assigned *assignedRun
	// rejoin asks for a join as soon as no Assigned call runs.
	rejoin bool
}

type assignedRun struct {
	cancel     context.CancelFunc
	done       chan bool
	generation int32
}

func newLoop(m *Membership) *loop {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(min(m.cfg.HeartbeatInterval, 2*time.Second)),
		// No overall limit: a daemon keeps trying to rejoin for as long
		// as it runs; each wait is capped, and while the member holds
		// an assignment the fence deadline bounds how long it keeps it.
		backoff.WithMaxElapsedTime(0),
	)
	return &loop{m: m, cfg: m.cfg, log: m.log, bo: bo, generation: -1, coordinator: -1}
}

func (l *loop) run(ctx context.Context) error {
	ph := phaseJoin
	for {
		if ctx.Err() != nil {
			return nil
		}
		if h := l.m.hooks.stall; h != nil {
			h()
		}
		// First thing after every wake-up, before any other action:
		// a member stopped past its fence deadline fences now.
		if l.checkFence() {
			ph = phaseJoin
		}
		var err error
		switch ph {
		case phaseJoin:
			ph, err = l.joinPhase(ctx)
		case phaseStable:
			ph, err = l.stablePhase(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// checkFence fences the member if its fence deadline has passed; it
// reports whether it did.
func (l *loop) checkFence() bool {
	if !l.holding {
		return false
	}
	now := l.cfg.Now()
	if due, _ := fenceDecision(now, l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval); !due {
		return false
	}
	l.fence(fmt.Sprintf("no heartbeat for %v", now.Sub(l.lastHeard).Round(time.Millisecond)))
	return true
}

// stale reports whether an answer to a request sent at sent came too late
// to act on: the coordinator may have expired the session since.
func (l *loop) stale(sent time.Time) bool {
	due, _ := fenceDecision(l.cfg.Now(), sent, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval)
	return due
}

// fence stops the member's writes: it cancels a running Assigned and waits
// for it, then calls Fenced if the member held anything.
func (l *loop) fence(reason string) {
	l.cancelAssigned()
	l.rejoin = false
	if !l.holding {
		return
	}
	l.holding = false
	l.m.setLease(time.Time{})
	l.log.Warn("fenced: "+reason+", rejoining", "member", l.memberID, "generation", l.generation)
	l.cfg.Fenced()
	l.m.update(func(s *State) {
		s.Fenced = true
		s.Fences++
	})
}

func (l *loop) cancelAssigned() {
	if l.assigned == nil {
		return
	}
	l.assigned.cancel()
	<-l.assigned.done
	l.assigned = nil
	l.rebalanceStart = time.Time{}
}

// heard records that a request sent at sent proved the membership alive.
func (l *loop) heard(sent time.Time) {
	if sent.After(l.lastHeard) {
		l.lastHeard = sent
	}
	l.m.update(func(s *State) { s.LastHeartbeat = l.lastHeard })
	if l.holding {
		l.m.setLease(fenceAt(l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval))
	}
}

// recover applies the verdict on a failed join or sync; it returns an
// error only when Run must stop.
func (l *loop) recover(ctx context.Context, err error, what string) error {
	v, fatal := classify(err)
	switch v {
	case vRetry:
		l.log.Debug("membership: retrying", "step", what, "err", err)
		l.coordinator = -1
		l.sleep(ctx)
	case vRejoin:
		// Usually answered to a sync while another member joins; the
		// short first backoff keeps a coordinator that says it to
		// every join from spinning the loop.
		l.sleep(ctx)
	case vLostMember:
		l.fence(fmt.Sprintf("%s: %v", what, err))
		l.resetMember()
	case vLostGeneration:
		l.fence(fmt.Sprintf("%s: %v", what, err))
		l.generation = -1
	case vFatal:
		l.fence(fmt.Sprintf("%s: %v", what, err))
		if errors.Is(fatal, ErrFencedInstance) {
			// Another daemon runs with this instance id; joining
			// again would fence it in turn, forever.
			l.resetMember()
		}
		l.log.Error("membership: giving up", "step", what, "err", fatal)
		return fatal
	}
	return nil
}

func (l *loop) resetMember() {
	l.memberID, l.generation = "", -1
	l.m.update(func(s *State) { s.MemberID, s.Generation, s.Leader = "", -1, false })
}

// sleep waits for the next backoff interval, no longer than the fence
// deadline so the loop fences on time.
func (l *loop) sleep(ctx context.Context) {
	d := l.bo.NextBackOff()
	if l.holding {
		_, left := fenceDecision(l.cfg.Now(), l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval)
		d = min(d, left)
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// send fences first if the deadline has passed, then sends req to the
// coordinator, finding it if needed. The request may take at most timeout
// and, while the member holds an assignment, no longer than its fence
// deadline. It returns the send time for heard and stale.
func (l *loop) send(ctx context.Context, req kmsg.Request, timeout time.Duration) (kmsg.Response, time.Time, error) {
	l.checkFence()
	sent := l.cfg.Now()
	if l.holding {
		_, left := fenceDecision(sent, l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval)
		timeout = min(timeout, left)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if h := l.m.hooks.request; h != nil {
		if err := h(req); err != nil {
			return nil, sent, err
		}
	}
	if l.coordinator < 0 {
		if err := l.findCoordinator(rctx); err != nil {
			return nil, sent, err
		}
	}
	resp, err := l.m.cl.Broker(int(l.coordinator)).Request(rctx, req)
	return resp, sent, err
}

func (l *loop) findCoordinator(ctx context.Context) error {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = l.cfg.Group
	req.CoordinatorType = 0 // group
	resp, err := l.m.cl.Request(ctx, req)
	if err != nil {
		return fmt.Errorf("find coordinator: %w", err)
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	code, node := r.ErrorCode, r.NodeID
	for _, c := range r.Coordinators {
		if c.Key == l.cfg.Group {
			code, node = c.ErrorCode, c.NodeID
		}
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return fmt.Errorf("find coordinator: %w", err)
	}
	if node < 0 {
		return fmt.Errorf("find coordinator: node %d: %w", node, errBadResponse)
	}
	l.coordinator = node
	return nil
}

func (l *loop) instanceID() *string {
	if l.cfg.InstanceID == "" {
		return nil
	}
	id := l.cfg.InstanceID
	return &id
}

// joinPhase runs JoinGroup, the leader's Assign and SyncGroup, and starts
// Assigned with the result.
func (l *loop) joinPhase(ctx context.Context) (phase, error) {
	if l.rebalanceStart.IsZero() {
		l.rebalanceStart = l.cfg.Now()
	}
	jr, err := l.joinGroup(ctx)
	if err != nil {
		return phaseJoin, l.recover(ctx, err, "join")
	}
	var plan []kmsg.SyncGroupRequestGroupAssignment
	if l.leader {
		if plan, err = l.assign(jr.Members); err != nil {
			// Syncing nothing would strip every member of its
			// work; joining again keeps ownership as it is.
			l.log.Error("membership: assignment failed, rejoining", "generation", l.generation, "err", err)
			l.sleep(ctx)
			return phaseJoin, nil
		}
	}
	assignment, sent, err := l.syncGroup(ctx, plan)
	if err != nil {
		return phaseJoin, l.recover(ctx, err, "sync")
	}
	if l.stale(sent) {
		l.fence(fmt.Sprintf("no heartbeat for %v", l.cfg.Now().Sub(sent).Round(time.Millisecond)))
		return phaseJoin, nil
	}
	l.heard(sent)
	l.bo.Reset()
	l.startAssigned(assignment)
	l.nextHeartbeat = l.cfg.Now().Add(l.cfg.HeartbeatInterval)
	return phaseStable, nil
}

// maxIDRequired bounds MEMBER_ID_REQUIRED answers in one join: a
// coordinator keeps the id it handed out, so the second try succeeds.
const maxIDRequired = 3

func (l *loop) joinGroup(ctx context.Context) (*kmsg.JoinGroupResponse, error) {
	for tries := 0; ; tries++ {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = l.cfg.Group
		req.SessionTimeoutMillis = int32(l.cfg.SessionTimeout / time.Millisecond)
		req.RebalanceTimeoutMillis = int32(l.cfg.RebalanceTimeout / time.Millisecond)
		req.MemberID = l.memberID
		req.InstanceID = l.instanceID()
		req.ProtocolType = ProtocolType
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = ProtocolName
		p.Metadata = l.cfg.Metadata()
		req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		// The coordinator parks the join until every member has joined,
		// up to the rebalance timeout.
		kresp, sent, err := l.send(ctx, req, l.cfg.RebalanceTimeout+l.cfg.SessionTimeout)
		if err != nil {
			return nil, err
		}
		resp := kresp.(*kmsg.JoinGroupResponse)
		err = kerr.ErrorForCode(resp.ErrorCode)
		if errors.Is(err, kerr.MemberIDRequired) && resp.MemberID != "" && tries < maxIDRequired {
			// KIP-394: join again at once with the id handed out.
			l.memberID = resp.MemberID
			continue
		}
		if err != nil {
			return nil, err
		}
		switch {
		case resp.MemberID == "" || resp.Generation < 0:
			return nil, fmt.Errorf("join: member %q generation %d: %w", resp.MemberID, resp.Generation, errBadResponse)
		case resp.ProtocolType != nil && *resp.ProtocolType != ProtocolType,
			resp.Protocol != nil && *resp.Protocol != ProtocolName:
			return nil, fmt.Errorf("join: chosen protocol %v/%v: %w", deref(resp.ProtocolType), deref(resp.Protocol), kerr.InconsistentGroupProtocol)
		}
		if l.stale(sent) {
			// Acting on it would be acting after the fence deadline;
			// the next send fences and joins again with this id.
			l.memberID = resp.MemberID
			return nil, fmt.Errorf("join: answer arrived late: %w", errBadResponse)
		}
		l.heard(sent)
		l.memberID, l.generation, l.protocol = resp.MemberID, resp.Generation, ProtocolName
		l.leader = resp.LeaderID == resp.MemberID
		l.m.update(func(s *State) {
			s.MemberID, s.Generation, s.Leader = resp.MemberID, resp.Generation, resp.LeaderID == resp.MemberID
		})
		l.log.Debug("membership: joined", "member", resp.MemberID, "generation", resp.Generation, "leader", l.leader, "members", len(resp.Members))
		return resp, nil
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// assign calls the Assign callback with the generation's members and turns
// its answer into SyncGroup assignments, one per member.
func (l *loop) assign(joined []kmsg.JoinGroupResponseMember) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	members := make([]Member, 0, len(joined))
	seen := make(map[string]bool, len(joined))
	for _, jm := range joined {
		if jm.MemberID == "" || seen[jm.MemberID] {
			continue
		}
		seen[jm.MemberID] = true
		mb := Member{ID: jm.MemberID, Metadata: jm.ProtocolMetadata}
		if jm.InstanceID != nil {
			mb.InstanceID = *jm.InstanceID
		}
		members = append(members, mb)
	}
	if !seen[l.memberID] {
		return nil, fmt.Errorf("leader %s missing from its %d members: %w", l.memberID, len(members), errBadResponse)
	}
	plan, err := l.cfg.Assign(members)
	if err != nil {
		return nil, err
	}
	for id := range plan {
		if !seen[id] {
			l.log.Warn("membership: assignment for a member not in the generation dropped", "member", id)
		}
	}
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	for _, mb := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = mb.ID
		a.MemberAssignment = plan[mb.ID]
		if a.MemberAssignment == nil {
			a.MemberAssignment = []byte{}
		}
		out = append(out, a)
	}
	return out, nil
}

func (l *loop) syncGroup(ctx context.Context, plan []kmsg.SyncGroupRequestGroupAssignment) ([]byte, time.Time, error) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = l.cfg.Group
	req.Generation = l.generation
	req.MemberID = l.memberID
	req.InstanceID = l.instanceID()
	pt, p := ProtocolType, l.protocol
	req.ProtocolType, req.Protocol = &pt, &p
	req.GroupAssignment = plan
	// A follower's sync waits for the leader's, which has the rebalance
	// timeout to come.
	kresp, sent, err := l.send(ctx, req, l.cfg.RebalanceTimeout+l.cfg.SessionTimeout)
	if err != nil {
		return nil, sent, err
	}
	resp := kresp.(*kmsg.SyncGroupResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, sent, err
	}
	return resp.MemberAssignment, sent, nil
}

// startAssigned runs Assigned on its own goroutine so heartbeats go on
// while the engine drains what it lost.
func (l *loop) startAssigned(assignment []byte) {
	actx, cancel := context.WithCancel(context.Background())
	run := &assignedRun{cancel: cancel, done: make(chan bool, 1), generation: l.generation}
	l.assigned = run
	l.holding = true
	l.m.setLease(fenceAt(l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval))
	l.rejoin = false
	l.m.update(func(s *State) { s.Fenced = false })
	gen := l.generation
	go func() {
		defer cancel()
		run.done <- l.cfg.Assigned(actx, gen, assignment)
	}()
}

// finishAssigned records a completed rebalance.
func (l *loop) finishAssigned(rejoin bool) {
	run := l.assigned
	l.assigned = nil
	took := l.cfg.Now().Sub(l.rebalanceStart)
	l.rebalanceStart = time.Time{}
	l.m.update(func(s *State) {
		s.Rebalances++
		s.LastRebalance = took
	})
	l.log.Info("membership: assignment applied", "member", l.memberID, "generation", run.generation, "leader", l.leader, "took", took, "rejoin", rejoin)
	if l.cfg.Rebalanced != nil {
		l.cfg.Rebalanced(run.generation, took)
	}
	if rejoin {
		l.rejoin = true
	}
}

// stablePhase waits for the next heartbeat, the end of Assigned or the
// fence deadline, whichever comes first.
func (l *loop) stablePhase(ctx context.Context) (phase, error) {
	if l.rejoin && l.assigned == nil {
		l.rejoin = false
		return phaseJoin, nil
	}
	now := l.cfg.Now()
	hb := time.NewTimer(max(l.nextHeartbeat.Sub(now), 0))
	defer hb.Stop()
	var fenceC <-chan time.Time
	if l.holding {
		_, left := fenceDecision(now, l.lastHeard, l.cfg.SessionTimeout, l.cfg.HeartbeatInterval)
		ft := time.NewTimer(left)
		defer ft.Stop()
		fenceC = ft.C
	}
	var assignedC <-chan bool
	if l.assigned != nil {
		assignedC = l.assigned.done
	}
	select {
	case <-ctx.Done():
		return phaseStable, ctx.Err()
	case <-l.m.rejoinReq:
		// The engine asks for a rebalance (its partitions changed):
		// rejoin once no Assigned call runs.
		l.rejoin = true
		return phaseStable, nil
	case <-fenceC:
		// The loop's top fences.
		return phaseStable, nil
	case rejoin := <-assignedC:
		l.finishAssigned(rejoin)
		return phaseStable, nil
	case <-hb.C:
		return l.heartbeat(ctx)
	}
}

func (l *loop) heartbeat(ctx context.Context) (phase, error) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = l.cfg.Group
	req.Generation = l.generation
	req.MemberID = l.memberID
	req.InstanceID = l.instanceID()
	kresp, sent, err := l.send(ctx, req, l.cfg.SessionTimeout)
	if err == nil {
		err = kerr.ErrorForCode(kresp.(*kmsg.HeartbeatResponse).ErrorCode)
	}
	if l.stale(sent) {
		// Whatever it says, it says it too late.
		l.fence(fmt.Sprintf("no heartbeat for %v", l.cfg.Now().Sub(sent).Round(time.Millisecond)))
		return phaseJoin, nil
	}
	if err == nil || errors.Is(err, kerr.RebalanceInProgress) {
		// Both prove the session alive: the coordinator refreshed it.
		l.heard(sent)
		l.bo.Reset()
	}
	l.nextHeartbeat = l.cfg.Now().Add(l.cfg.HeartbeatInterval)
	// send fences first when the deadline passed while the loop waited;
	// a fenced member owns nothing to heartbeat for and must rejoin.
	next := phaseStable
	if !l.holding {
		next = phaseJoin
	}
	if err == nil {
		return next, nil
	}
	v, fatal := classify(err)
	switch v {
	case vRetry:
		l.log.Debug("membership: heartbeat failed", "err", err)
		l.coordinator = -1
		l.nextHeartbeat = l.cfg.Now().Add(min(l.bo.NextBackOff(), l.cfg.HeartbeatInterval))
		return next, nil
	case vRejoin:
		if l.rebalanceStart.IsZero() {
			l.rebalanceStart = l.cfg.Now()
		}
		l.rejoin = true
		return next, nil
	case vLostMember:
		l.fence(fmt.Sprintf("heartbeat: %v", err))
		l.resetMember()
		return phaseJoin, nil
	case vLostGeneration:
		l.fence(fmt.Sprintf("heartbeat: %v", err))
		l.generation = -1
		return phaseJoin, nil
	default:
		l.fence(fmt.Sprintf("heartbeat: %v", err))
		if errors.Is(fatal, ErrFencedInstance) {
			l.resetMember()
		}
		return phaseStable, fatal
	}
}

// leaveTimeout bounds the LeaveGroup sent on the way out.
const leaveTimeout = 5 * time.Second

// stop runs when Run is stopping: it fences (the work moves as soon as the
// coordinator processes the leave, so writes must have stopped before it)
// and leaves the group. A static member does not leave: KIP-345 keeps its
// place for a restart within the session timeout.
func (l *loop) stop() {
	if l.assigned != nil || l.holding {
		l.cancelAssigned()
		if l.holding {
			l.holding = false
			l.m.setLease(time.Time{})
			l.log.Info("membership: stopping, fenced", "member", l.memberID)
			l.cfg.Fenced()
			l.m.update(func(s *State) { s.Fenced = true })
		}
	}
	if l.memberID != "" && l.cfg.InstanceID == "" {
		ctx, cancel := context.WithTimeout(context.Background(), min(leaveTimeout, l.cfg.SessionTimeout))
		defer cancel()
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = l.cfg.Group
		req.MemberID = l.memberID
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = l.memberID
		lm.Reason = kmsg.StringPtr("strait daemon stopping")
		req.Members = []kmsg.LeaveGroupRequestMember{lm}
		kresp, _, err := l.send(ctx, req, leaveTimeout)
		if err == nil {
			err = kerr.ErrorForCode(kresp.(*kmsg.LeaveGroupResponse).ErrorCode)
		}
		if err != nil {
			l.log.Warn("membership: leave failed; the coordinator expires the member after its session", "member", l.memberID, "err", err)
		} else {
			l.log.Info("membership: left the group", "member", l.memberID)
		}
	}
	l.resetMember()
}
