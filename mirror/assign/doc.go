// Package assign decides which daemon of a strait worker group mirrors which
// partitions, and carries that decision over Kafka's group protocol. It is
// pure: no I/O, no clock, no randomness; the membership driver (which sends
// JoinGroup, SyncGroup and Heartbeat with ProtocolType "strait") feeds it
// what the group coordinator returned and sends what it computes.
//
// # Contract
//
// Assign(leader, members, partitions) takes the leader's configuration
// fingerprint (pipelines.(*Config).Fingerprint), every member's JoinGroup
// metadata (id, strait version, fingerprint, the partitions it owns now
// with the bytes/s it measured on each) and every partition the pipelines
// mirror now (pipeline, topic, partition). It returns, per member, a
// Target (where the balance wants it), an Assignment (what it owns from
// now on, what it must revoke first) and the Target's weight.
//
//   - Only members whose fingerprint equals the leader's get work; the
//     others are listed in Mismatched with a reason and told to revoke all
//     they own. A member id given twice is mismatched the second time.
//   - Every partition of the input is in exactly one matching member's
//     Target (none when no member matches). Partitions not in the input
//     (removed topics, pipelines) are revoked from whoever owns them.
//   - Sticky: a member keeps what it owns unless balance needs it
//     elsewhere. A partition claimed by two members stays with one (a
//     matching member before a mismatched one, then the one that measured
//     it, then the lower id); the other revokes it.
//   - Load-aware: a partition weighs its measured bytes/s (clamped to
//     MaxRate), else its topic's average, else the average of every
//     measured partition, else 1; and at least 1, so idle partitions
//     spread by count (Brooklin's throughput-based assignment).
//   - Balanced: perfect is total/members, except that a partition heavier
//     than that gets a member to itself and the others share the rest.
//     The assignor aims at every other member within Slack (5%) of
//     perfect, and meets the promised 10% whenever the weights allow (a
//     few heavy partitions per member can make it impossible). Partitions
//     nobody keeps, heaviest first, go to the least loaded member (a
//     heap); then single partitions move from a member above the band to
//     one below it, each move narrowing a gap, until no move helps. So a
//     settled group fed its own result moves nothing.
//   - Deterministic: members, partitions and every tie are sorted, so the
//     same input in any order gives the same Result.
//
// # Cooperative rebalancing in two rounds (KIP-429)
//
// A partition never has two writers, so one that moves takes two
// rebalances:
//
//  1. Round one. The leader runs Assign. Each member's Assigned is its
//     Target minus the partitions another member still owns; its Revoke is
//     what it owns outside Assigned. FollowUp is set when some Target
//     partition waits for a revocation. Members that only gain or keep
//     partitions start the new ones at once.
//  2. A member whose Revoke is not empty stops fetching those partitions,
//     drains what is in flight, checkpoints, and only then rejoins the
//     group, which starts the second rebalance. Its JoinGroup metadata no
//     longer lists them as owned but as Released, with the rates it
//     measured, so that they keep their weight while nobody measures them
//     and round two balances with the weights round one used. A member told FollowUp that has nothing to
//     revoke keeps working and rejoins when the coordinator asks.
//  3. Round two. The revoked partitions are owned by nobody, so Assign
//     gives them to their target owners in Assigned directly, and nothing
//     more is revoked unless membership or weights changed meanwhile.
//
// A member that dies (its session expires) owns nothing in the next round:
// it fenced itself by stopping before its session could expire, so its
// partitions are assigned at once.
//
// # Payloads
//
// EncodeMember/DecodeMember are the JoinGroup member metadata,
// EncodeAssignment/DecodeAssignment the SyncGroup member assignment.
// Numbers are unsigned varints (encoding/binary), strings a varint length
// and bytes. A partition set groups partitions by pipeline, then topic,
// both in increasing order, and writes each partition number as the gap
// from the previous one (gap = p - previous - 1, the first from -1):
//
//	member metadata v1:
//	+---------+--------+---------+-------------+-----------+--------------+
//	| version | id     | version | fingerprint | owned set | released set |
//	| byte 1  | string | string  | string      | with rates| with rates   |
//	+---------+--------+---------+-------------+-----------+--------------+
//	(each partition of both sets followed by rate+1; 0: unmeasured)
//
//	assignment v1:
//	+---------+-------+-------------+----------+--------------+------------+
//	| version | flags | fingerprint | mismatch | assigned set | revoke set |
//	| byte 1  | byte  | string      | string   |              |            |
//	+---------+-------+-------------+----------+--------------+------------+
//	(flags bit 0: follow-up rebalance; other bits 0 in v1)
//
//	set: npipelines { pipeline ntopics { topic nparts { gap [rate+1] } } }
//
// A later version only appends fields (and flag bits): a version 1 reader
// decodes it and skips the rest. A version 1 payload must end where its
// fields end. The decoders never panic; garbage gives ErrCorrupt or
// ErrVersion, and a count larger than the bytes left is refused before
// anything is allocated for it.
package assign
