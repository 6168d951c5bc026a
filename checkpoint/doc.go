// Package checkpoint records how far each source partition of a pipeline
// has been mirrored, maps source offsets to destination offsets exactly,
// resumes a task without losing or repeating a record, and keeps consumer
// group offsets in step on the destination.
//
// # Contract
//
//   - Position{Source, Dest}: Source is the next source offset to copy, Dest
//     the destination log end after the last acknowledged write. The mirror
//     saves a Position only for records the destination acknowledged.
//   - OffsetMap: where source offsets landed. Pure (no I/O, no clock), not
//     safe for concurrent use (hand a Clone to savers). Add(src, dst, n) in
//     increasing order; Begin(pos) once when a partition starts with no
//     checkpoint (Reconcile does it for a map without a start); TrimBelow(
//     logStart) as the source's log start advances; Translate(c, pos) for a
//     committed offset c.
//   - Store: Load(pipeline) → *State; Save(pipeline, partial *State) merges
//     the named partitions and adds producer ids, durable on return. Open
//     picks the store from pipelines.Checkpoints: "kafka" (default) or
//     "file". OpenKafka and OpenFile open one directly; OpenReadOnly opens
//     one for inspection (creates nothing, Save fails).
//   - Reconcile(ctx, src, dst, tp, destTopic, pos, m): run when a task
//     starts; returns the position to resume from and adds the reconciled
//     records to m. Errors: ErrStranger (someone else wrote to the
//     destination partition), ErrDestTruncated, ErrSourceTruncated, ErrIO.
//     ReconcileWith takes ReconcileOptions.Skip, the source records the
//     mirror leaves out on purpose (loop prevention), so pairing passes
//     over them as the mirror did.
//   - SyncGroups(ctx, src, dst, groups, translate): one round of consumer
//     group offset sync; the mirror calls it every sync.interval with
//     translate answering from its live tasks (State.Translate answers from
//     a loaded State).
//
// # Exactly-once resume
//
// The mirror is the only writer of its destination partitions and writes
// through an idempotent producer with acks=all, so the destination never
// holds a gap or a repeat within one producer session. After a crash, the n
// records on the destination after the checkpointed Dest are therefore
// exactly the next n source records after the checkpointed Source (control
// records and aborted data skipped, as the mirror skipped them). Reconcile
// reads both, pairs them in order, compares the first and the last pair
// (key, value, timestamp unless either side uses LogAppendTime, headers
// except ProvenanceHeader on either side), and resumes after them. A mismatch or a
// destination longer than the source is ErrStranger. The pairing assumes
// the source records after the checkpoint are still there: a source whose
// compaction or retention removed them since they were copied gives
// ErrStranger or ErrSourceTruncated rather than a silent guess.
//
// A partition that starts without a checkpoint must have its starting
// Position saved (Begin the map, Save) before its first record is written:
// a crash before the first periodic save would otherwise leave copies on
// the destination that the next start, finding no checkpoint, cannot
// account for — it would copy those records again.
//
// # Offset translation
//
// dest - source changes only at gaps in the source (compaction, control
// records, aborted data, a start at "latest"), so the map stores one
// breakpoint per change. For a committed offset c (the next record the
// consumer would read):
//
//   - c >= pos.Source: pos.Dest (the next record to be copied lands there);
//   - inside a run starting at (s, d): d + (c - s);
//   - in a gap: the destination offset of the next copied record;
//   - between the map's start and its first run: the first run's Dest;
//   - below the map's start: not ok. The start is the mirror's first source
//     position (Begin), raised by TrimBelow(logStart) and by the cap. A
//     source consumer holding such an offset would itself be reset by its
//     auto.offset.reset policy, so no guess is made for it.
//
// A consumer that resumes on the destination at the translated offset reads
// exactly the copies of the records it had not yet read on the source.
// Size is bounded by MaxBreakpoints (10,000): beyond it the oldest
// breakpoint is dropped and the start moves up.
//
// Encoded OffsetMap (all integers varints, zig-zag where signed):
//
//	+---------+-------+---------+-----------+------------------------------+----------------+
//	| version | flags |  start  |  count N  |  N × (Δsrc uvarint,          |  end Δsrc,     |
//	|  u8 = 1 | u8    | varint  |  uvarint  |       Δdst  varint)          |  end Δdst      |
//	+---------+-------+---------+-----------+------------------------------+----------------+
//	flags 0: empty map, nothing follows. Each Δ is relative to the previous
//	breakpoint (the first to (start, 0)); end is relative to the last one.
//
// # Store records
//
// Both stores hold the same self-checking records. Kafka store key:
//
//	partition:    'P' 0x00 pipeline 0x00 topic 0x00 partition(decimal)
//	producer ids: 'I' 0x00 pipeline
//
// Value (a partition record; string = uvarint length + bytes):
//
//	+---------+----------+-----------+-----------+-----------+----------+----------+-------------+------------------+----------+
//	| version |  kind    | pipeline  |   topic   | partition |  source  |   dest   | dest topic  |  offset map      |  crc32c  |
//	|  u8 = 1 | u8 = 'P' |  string   |  string   |  varint   |  varint  |  varint  |  string     | uvarint len+bytes|  u32 BE  |
//	+---------+----------+-----------+-----------+-----------+----------+----------+-------------+------------------+----------+
//	producer ids: version, kind 'I', pipeline, uvarint count, count × varint id, crc32c.
//	The CRC-32C (Castagnoli) covers every byte before it. A record whose
//	key does not match its content is corrupt too.
//
// File store: one file per pipeline, <dir>/<pipeline>.ckpt (names with
// characters outside [A-Za-z0-9._-] become x-<hex>.ckpt):
//
//	+------------+---------+-----------+------------------------------------+----------+
//	| "STRTCKPT" | version | count N   | N × (uvarint len, record value)    |  crc32c  |
//	|  8 bytes   | u8 = 1  | uvarint   | producer-id record, then partitions |  u32 BE  |
//	+------------+---------+-----------+------------------------------------+----------+
//
// Every Save rewrites the file through the FS seam in this order: create
// <file>.tmp, write, fsync, close, rename over <file>, fsync the folder. A
// failure at any step leaves the previous file in place; a file damaged
// anyway (a torn write the disk did not order) loads as ErrCorrupt naming
// the file. Kafka store: a compacted topic (default __strait_checkpoints,
// created with cleanup.policy=compact if missing), written with acks=all by
// an idempotent producer; Load reads it to its end and keeps the latest
// record per key; a damaged latest record is ErrCorrupt naming the key.
//
// # Group offset sync
//
// SyncGroups lists the source groups matching the pipeline's expressions,
// fetches their committed offsets, translates each, and commits them to
// the same group on the destination — only while that group has no members
// there (state Empty, Dead or unknown), and only forward (never below the
// destination's current commit). Its SyncReport says per group what was
// committed and what was skipped and why.
package checkpoint
