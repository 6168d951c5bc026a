// Package member keeps one strait daemon in its fleet's group: it speaks
// Kafka's classic group protocol (FindCoordinator, JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup) to the coordinator of the cluster that hosts the
// group, under protocol type "strait" (ProtocolType) and protocol name
// "strait-v1", the way Kafka Connect workers use "connect". It knows
// nothing of pipelines or partitions: join metadata and assignments are
// opaque bytes that the engine encodes and the assignor (mirror/assign)
// computes.
//
// # Contract
//
// New takes a *kgo.Client of the group's cluster (its own: a JoinGroup
// parked at the coordinator holds the client's group connection) and a
// Config; Run drives the membership from one goroutine until its context
// ends or Close is called, then fences and leaves. The callbacks:
//
//   - Metadata, before every JoinGroup: the daemon id, version,
//     configuration fingerprint, owned partitions and their rates.
//   - Assign, on the elected leader only, with every member of the new
//     generation: each member's assignment. An error skips the generation
//     (the leader rejoins; nobody's ownership changes).
//   - Assigned, after every SyncGroup, in generation order, one at a time,
//     on a goroutine of its own so heartbeats go on: revoke what was lost
//     (drain, checkpoint), start what was gained, return rejoin=true after
//     a revocation so the leader can hand the revoked work out in a
//     second round (cooperative rebalancing). Its context is cancelled
//     when the member must fence or stop.
//   - Fenced, when the member can no longer be sure it owns anything: it
//     returns once nothing the daemon started can still write. Never
//     concurrent with Assigned. After it the daemon owns nothing until the
//     next Assigned, and its Metadata must say so.
//
// The coordinator answers a stable follower that rejoins with unchanged
// metadata with the current generation and no rebalance (Kafka and brokerd
// both do); a second cooperative round therefore needs the metadata to
// change, which it does because the revoked partitions are no longer
// owned.
//
// Errors: NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
// COORDINATOR_LOAD_IN_PROGRESS and transport errors find the coordinator
// again and retry with exponential backoff (capped at the heartbeat
// interval and at the fence deadline; a daemon retries for as long as it
// runs). REBALANCE_IN_PROGRESS rejoins with the same member id.
// UNKNOWN_MEMBER_ID fences and rejoins with no id; ILLEGAL_GENERATION
// fences and rejoins with the same id (a fresh id would leave the old one
// in the group until its session expired, stalling the join). Fatal, Run
// returns them: GROUP_AUTHORIZATION_FAILED (ErrAuthorization),
// INCONSISTENT_GROUP_PROTOCOL (ErrInconsistentProtocol: the group name is
// taken by consumers or another protocol), FENCED_INSTANCE_ID
// (ErrFencedInstance: another process runs with this static instance id;
// rejoining would fence it in turn, forever), and any other non-retriable
// code (ErrRejected). A static member (InstanceID, KIP-345) does not send
// LeaveGroup on the way out, so a restart within the session keeps its
// place without a rebalance.
//
// # Self-fencing
//
// The coordinator expires a member it has not heard from for the session
// timeout and gives its work to the others. A daemon that was stopped
// (SIGSTOP, a long GC or VM pause) or cut off must stop writing before
// that, or two daemons write one partition. The member keeps lastHeard,
// the send time of the last request whose answer proved the session alive
// (a successful join, sync or heartbeat, or a heartbeat answered
// REBALANCE_IN_PROGRESS, which refreshes the session too). The send time,
// not the receive time: the coordinator restarted its clock when the
// request arrived, which was after it left. While the member holds an
// assignment it fences at
//
//	lastHeard + SessionTimeout - max(HeartbeatInterval, SessionTimeout/5)
//
// (fenceDecision, a pure function). Every request it sends carries that
// deadline, every wait wakes for it, and every answer sent before it is
// checked again when it arrives: a late answer is not acted on.
//
// Walkthrough, a cut-off member (session 10s, heartbeat 3s, margin 3s):
//
//  1. t=0: B's heartbeat, sent at t=0, is answered; lastHeard=0.
//  2. t=3, t=6: B's heartbeats fail (the network is cut); the backoff
//     retries are capped by the fence deadline, t=7.
//  3. t=7: the fence timer fires; B cancels a running Assigned, waits for
//     it, calls Fenced and logs "fenced: no heartbeat for 7s, rejoining".
//     B writes nothing from here on.
//  4. t>=10: the coordinator, which last heard from B at t>=0, expires it;
//     A's next heartbeat gets REBALANCE_IN_PROGRESS, A rejoins, and the
//     leader gives B's partitions to A in a new generation. B's writes
//     stopped three seconds before.
//  5. The network heals: B's join with its old id gets UNKNOWN_MEMBER_ID;
//     B joins with no id and gets work again in a later generation.
//
// Walkthrough, a stopped member (SIGSTOP for 30s, then SIGCONT):
//
//  1. t=0: B sends a heartbeat; the process is stopped before it reads the
//     answer. Its writers are stopped with it.
//  2. t=10: the coordinator expires B; the others take its work.
//  3. t=30: SIGCONT. Timers fire late; the loop's first step, before any
//     request and before acting on the answer that waited in the socket,
//     is the fence check: 30s > 7s, so B calls Fenced (stopping the
//     writers that just resumed) and logs "fenced: no heartbeat for 30s,
//     rejoining". The heartbeat answer does not help: it proves the
//     session alive at its send time, t=0, and is stale.
//  4. B rejoins: UNKNOWN_MEMBER_ID, then a fresh join.
//
// The writers resumed by SIGCONT run between steps 3's wake-up and the
// Fenced call: that is the engine's side of the rule. Lease returns the
// fence deadline while the member holds an assignment (zero from the start
// of a fence), and the engine checks it right before every write.
//
// Rejoin asks for a rebalance from outside the loop (the leader's engine
// discovered new partitions); a leader's rejoin always rebalances.
//
// Walkthrough, a rebalance (A and B stable, C joins):
//
//  1. C joins; the coordinator starts a rebalance. A and B learn it from
//     their next heartbeat (REBALANCE_IN_PROGRESS, which proves their
//     sessions alive) and rejoin with the same id, their metadata listing
//     what they own. They keep writing it: cooperative.
//  2. The join completes; the leader's Assign moves some of A's and B's
//     partitions to nobody yet (they must be revoked first); SyncGroup
//     hands the assignments out.
//  3. A's Assigned stops the moved partitions, drains and checkpoints
//     them, and returns rejoin=true; heartbeats went on meanwhile. A
//     rejoins at once; its metadata no longer lists them, so the
//     coordinator starts a second rebalance.
//  4. In the second generation the leader sees the revoked partitions
//     owned by nobody and gives them to C, whose Assigned starts them.
//
// A member waiting in a JoinGroup counts against its fence deadline too:
// it cannot tell a join the coordinator holds from one whose answer was
// lost, after which the coordinator would expire it a session later. So a
// rebalance that waits longer than the fence deadline for a slow revoker
// fences the waiting members; Assigned's drains should stay well inside
// SessionTimeout minus the margin.
//
// # Concurrency
//
// Run's goroutine owns the loop state. Assigned runs on a goroutine the
// loop starts and always waits for (fence, stop), so Run leaves nothing
// behind. State is a snapshot under a mutex; the callbacks are never
// called with it held. Time for the fence decision comes from Config.Now;
// waits use real timers.
package member
