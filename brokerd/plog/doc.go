// Package plog is brokerd's partition log: one folder per partition holding
// Kafka's on-disk layout, with appends, zero-copy reads, crash recovery,
// retention, compaction and idempotent-producer state. It knows nothing of
// the network.
//
// # Contract
//
//   - Append validates every record batch (framing, magic 2, CRC-32C, size,
//     record count, idempotent sequence) and writes all of them or none.
//     Offsets are assigned by rewriting baseOffset (and zeroing
//     partitionLeaderEpoch) in place; both sit outside the CRC, so the
//     stored batch is byte for byte what the producer sent otherwise.
//   - A successful Append has been written with write(2): it survives
//     kill -9. With Options.Fsync or flush.messages=1 it is also fsynced
//     before Append returns, so it survives power loss.
//   - Read returns file spans of whole batches up to the high watermark. A
//     span's file stays open until ReadResult.Release, whatever retention,
//     compaction or the FileCache do meanwhile (Linux keeps an unlinked
//     file readable while it is open).
//   - Open is cheap after a clean Close: it lists the folder and reads
//     plog.state; no segment is opened until used. After a crash Open
//     validates the segments from the recovery point and truncates a torn
//     tail.
//   - Retention, DeleteRecords and compaction run only from Maintain and
//     DeleteRecords, never on the produce or fetch path.
//   - Idempotence: per producer id (>= 0) the log keeps the epoch and the
//     last five batches' sequence ranges and offsets. A retry of one of
//     them is answered with its original offsets (Duplicate) and writes
//     nothing; a gap is ErrOutOfOrderSeq (also for an unknown producer not
//     starting at sequence 0, and a new epoch not starting at 0); an older
//     epoch is ErrInvalidEpoch. Sequences wrap from MaxInt32 to 0.
//     Producers whose batches retention deleted are forgotten.
//   - Transactions: a producer's first transactional batch opens its
//     transaction on this partition; AppendMarker ends it with a commit
//     or abort control batch (a marker for a producer with nothing open
//     writes nothing; an older epoch is ErrInvalidEpoch; a newer one
//     resets the sequence). The last stable offset is the first offset of
//     the oldest open transaction (the high watermark when none);
//     ReadTo(committed) never returns a batch at or past it. Control
//     batches from producers and transactional batches without a producer
//     id are ErrInvalidRecord; on a compacted log a record without a key
//     is ErrInvalidRecord.
//
// # Files in a partition folder
//
//	00000000000000000000.log        segment: batches from base offset 0
//	00000000000000000000.index      sparse offset index of that segment
//	00000000000000000000.timeindex  time index of that segment
//	00000000000000000000.txnindex   aborted transactions whose marker is in
//	                                that segment (only when there are any)
//	00000000000000012345.log        next segment, base offset 12345 ...
//	plog.state                      log start, end, recovery point, producers
//	clean.shutdown                  present only after a clean Close
//
// # Segment (.log): record batches v2 back to back, exactly as produced
//
// The batch layout is drawn in internal/recordbatch, the one codec for it.
// What plog changes is outside the CRC: baseOffset (assigned on append)
// and partitionLeaderEpoch (always 0).
//
// # Offset index (.index): 8-byte entries, one per index.interval.bytes
//
//	+--------------------------+--------------------------+
//	| offset - base  uint32 BE | file position  uint32 BE |  ... ascending
//	+--------------------------+--------------------------+
//	An entry points at the start of a batch whose base offset it holds.
//	Lookup: the last entry at or below the wanted offset, then walk batch
//	headers forward. Position 0 is implicit.
//
// # Time index (.timeindex): 12-byte entries
//
//	+------------------------------+--------------------------+
//	| max timestamp so far int64 BE| offset - base  uint32 BE |  ... ascending
//	+------------------------------+--------------------------+
//	offset is the base offset of the batch holding that max timestamp; the
//	last entry is the segment's max timestamp (used by retention.ms,
//	ListOffsets by time and max timestamp).
//
// # Aborted-transaction index (.txnindex): 34-byte entries, Kafka's layout
//
//	+----------+-------------+--------------+-------------+-----------------+
//	| version  | producer id | first offset | last offset | last stable     |
//	| int16 0  | int64       | int64        | int64       | offset int64    |
//	+----------+-------------+--------------+-------------+-----------------+
//	One entry per abort marker, appended when the marker is written (in
//	marker order); last offset is the marker's, first offset the
//	transaction's first on this partition, last stable offset the LSO
//	right after the abort. All entries are kept in memory (Open reads the
//	few files that exist); a read_committed fetch from F up to the LSO
//	gets those with last offset >= F and first offset < LSO. Recovery
//	rewrites the index of every segment it rescans from the markers;
//	retention deletes it with its segment; compaction drops aborted
//	records and, with its marker after delete.retention.ms, the entry.
//
// Indexes are hints: a missing or malformed index is rebuilt by scanning
// its segment. The active segment's indexes live in memory and are written
// when it is sealed (roll) and at Close.
//
// # State (plog.state), replaced atomically: temp, fsync, rename, fsync dir
//
//	+------+-----+-----+----------+----------+----------+-----------+
//	|"PLST"| ver | 0 0 | log start| next     | recovery | cleaner   |
//	|  4   |  1  |  3  | offset 8 | offset 8 | point 8  | checkpt 8 |
//	+------+-----+-----+----------+----------+----------+-----------+
//	+------------+---------------------------------------------+--------+
//	| producers  | per producer: id int64, epoch int16, n uint8,| crc32c |
//	| count u32  |  n x (firstSeq i32, lastSeq i32,             | of all |
//	|            |       baseOffset i64, lastOffset i64),       | before |
//	|            |  [ver 2] open u8, txn first offset i64       |        |
//	+------------+---------------------------------------------+--------+
//	Version 2 is written; version 1 (no transaction fields) is read.
//	All integers big-endian. The producer table is a snapshot as of
//	"next". Written at Close, when Maintain advances the recovery point
//	(after a roll), when the log start moves, and after recovery.
//
// # Recovery
//
// Close syncs the data, writes indexes and plog.state, then creates
// clean.shutdown; the first change after Open deletes it (and syncs the
// folder). Open without the marker scans from the segment holding the
// recovery point: each batch must parse, pass its CRC and have offsets at
// or above the previous batch's end (compaction leaves gaps). The first
// failure truncates the file there and deletes later segments; producer
// state is the snapshot plus the batches after it.
//
// # Compaction
//
// For cleanup.policy=compact, Maintain cleans when dirty bytes (sealed
// segments above the cleaner checkpoint) reach min.cleanable.dirty.ratio
// of the sealed bytes. The cleaner maps key -> latest offset over the
// dirty part, then rewrites the sealed segments below the last stable
// offset (merging neighbours up to segment.bytes) keeping each key's
// latest committed record (aborted records are dropped and never enter
// the map; markers are kept for delete.retention.ms); tombstones whose
// timestamp is older than delete.retention.ms are dropped. A batch that
// loses records is rewritten uncompressed with its original base offset,
// lastOffsetDelta, timestamps and producer fields (offsets inside it keep
// their deltas); untouched batches are copied as they are, compressed or
// not. The cleaned file is written as B.log.cleaned, synced, renamed to
// B.log.swap, the replaced segments are deleted and the .swap renamed to
// B.log under the log lock; recovery completes an interrupted swap.
//
// # Rolling
//
// A new segment starts when an append would pass segment.bytes, when the
// active segment is older than segment.ms (measured from its first append;
// after a restart, from its first record timestamp or, untouched, its file's
// modification time), or when relative offsets would outgrow the index.
// Maintain also rolls an old idle segment so time retention can delete it.
//
// # Memory
//
// An untouched log is a few hundred bytes: a struct per segment holding
// its base offset. Indexes are loaded on first use and kept while the
// segment exists. Open files are bounded by the shared FileCache.
package plog
