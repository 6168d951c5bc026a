// Package group is brokerd's consumer-group coordinator: the classic
// (pre-KIP-848) group protocol and committed offsets for a whole cluster.
//
// # Contract
//
// brokerd creates one Coordinator per cluster with New, routes every API key
// listed by Keys to Handle, and answers FindCoordinator itself. Handle may
// block: a JoinGroup waits until the rebalance completes and a follower's
// SyncGroup waits for the leader's, which is fine because Kafka allows one
// request in flight per connection. Kafka-level failures (unknown member,
// illegal generation, ...) come back inside the response as kerr codes; Go
// errors are only ErrNotGroupRequest, ErrClosed and the context's error.
//
// Served (versions in Keys): JoinGroup with MEMBER_ID_REQUIRED from v4,
// rebalance timeouts and protocol selection by common support; SyncGroup
// with protocol type/name checks; Heartbeat; LeaveGroup incl. batched v3+
// leaves; OffsetCommit with generation fencing and "simple" commits
// (generation -1, no member id) while a group has no members; OffsetFetch
// v0-v8 incl. batched groups; DescribeGroups; ListGroups with the states
// (v4) and types (v5) filters; DeleteGroups; OffsetDelete. Static
// membership (group.instance.id, KIP-345): a restarted static member takes
// its instance id back without a rebalance when its subscription is
// unchanged, and the old member id is fenced with FENCED_INSTANCE_ID.
//
// Offset retention (Kafka's offsets.retention.minutes, KIP-211 rules):
// every Config.RetentionCheckInterval the coordinator expires the offsets
// of an Empty group that had members once retention has passed since it
// became Empty, those of a group that never had members (simple commits)
// once retention has passed since each commit, and those of a Stable
// consumer group's topics that no member subscribes to, likewise per
// commit. Groups in a rebalance keep everything. Expired offsets get
// tombstones; an Empty group left with no offsets is removed with a
// tombstone for its metadata. Commit and Empty times come from the
// journal, so retention runs across restarts. As in Kafka, a simple commit
// to an Empty group that had members does not restart its clock.
//
// TxnOffsetCommit (v0-3): offsets committed inside a transaction stay
// pending until the transaction coordinator calls CompleteTxn; see
// txnoffsets.go for the journal record. OffsetFetch with RequireStable
// answers UNSTABLE_OFFSET_COMMIT while one is pending.
//
// Not served: KIP-848 consumer groups (ConsumerGroupHeartbeat), share
// groups, per-commit retention times
// (OffsetCommit v2-v4 RetentionTimeMillis, which Kafka honours, is ignored:
// the coordinator-wide retention applies), an initial rebalance delay (a
// join completes as soon as every known member has joined).
//
// # Concurrency and time
//
// All group state is owned by one goroutine, the Coordinator's run loop.
// Handle sends the request over a channel; the loop applies it and either
// answers at once or parks the answer on the member until the rebalance
// moves on. The loop reads the clock once per event and passes it into the
// state logic, which never reads it; one timer wakes the loop at the
// earliest deadline (session expiry, rebalance timeout, sync timeout,
// pending-member expiry, the next retention check). Journal appends run on
// the loop, so a commit is durable before it is acknowledged and before it
// is visible, and an offset is expired in memory only once its tombstone
// is written.
//
// # Journal format
//
// Records use the layout of Kafka's own __consumer_offsets topic, encoded
// with kmsg, so Kafka tooling can read them. All integers are big-endian;
// a string is an int16 length followed by its bytes (nullable: length -1).
// The key's leading version tells the record kind:
//
//	offset commit key (version 1; version 0 is read too)
//	+---------+-------------+-------------+-----------+
//	| int16 1 | string group| string topic| int32 part|
//	+---------+-------------+-------------+-----------+
//
//	offset commit value (version 3 written; 0..4 read)
//	+---------+--------------+-------------------+-----------------+---------------------+
//	| int16 3 | int64 offset | int32 leaderEpoch | string metadata | int64 commit millis |
//	+---------+--------------+-------------------+-----------------+---------------------+
//
//	group metadata key (version 2)
//	+---------+--------------+
//	| int16 2 | string group |
//	+---------+--------------+
//
//	group metadata value (version 3 written)
//	+---------+---------------------+------------------+---------------------------+
//	| int16 3 | string protocolType | int32 generation | nullable string protocol  |
//	+---------+---------------------+------------------+---------------------------+
//	| nullable string leader | int64 state millis | int32 N | N members ...         |
//	+------------------------+--------------------+---------+-----------------------+
//	member: string memberID, nullable string instanceID, string clientID,
//	        string clientHost, int32 rebalance ms, int32 session ms,
//	        bytes subscription (int32 length), bytes assignment (int32 length)
//
// A nil value is a tombstone: it deletes that offset, or the whole group
// (DeleteGroups writes tombstones for the metadata and every offset).
// Group metadata is written when a generation becomes Stable, when a static
// member's new id replaces its old one without a rebalance, and when a
// group becomes Empty. Replay on New restores every committed offset and
// each group as it was last journaled, the way Kafka loads
// __consumer_offsets: a group with members comes back Stable at its
// generation with its protocol, leader and members (subscriptions to the
// chosen protocol, assignments, client ids, timeouts, static instance
// ids), and every member's session restarts at load time. A member that
// heartbeats, syncs or commits with its old id and generation carries on
// without a rebalance; one that does not come back expires after its
// session timeout like any other, and the rest rebalance. A record with
// members but no protocol, or none at all, is an Empty group. Key versions
// other than 0, 1 and 2 are skipped; a record of a known version that does
// not decode (a cut member list included) fails New with
// ErrCorruptJournal.
package group
