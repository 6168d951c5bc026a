// Package recordbatch is strait's one codec for Kafka's record batch v2
// (magic 2), the unit that producers send, brokers store and consumers
// fetch. Every package that needs a batch header field, a record, a CRC or
// a new batch goes through here; nothing else in the tree knows the byte
// offsets.
//
// # Contract
//
//   - ParseHeader decodes the fixed 61-byte header into a Header value
//     without allocating and checks what makes a batch walkable: magic 2,
//     a batchLength covering at least the header, non-negative base
//     offset, lastOffsetDelta and record count. It does not check the CRC
//     (CheckCRC does, over the whole batch) nor that the batch is whole
//     (Header.Size says how many bytes it spans).
//   - ReadFrame reads only the 17-byte prefix every message format shares
//     (offset, length, magic), so callers that meet legacy message sets
//     (magic 0 and 1) can step over them.
//   - Iter walks the records of an uncompressed records section without
//     allocating; RecordBytes decompresses a compressed section first
//     (gzip, snappy plain or xerial-framed, lz4, zstd), bounded by
//     MaxDecompressed. Malformed input is an error wrapping ErrCorrupt,
//     never a panic.
//   - Encoder builds an uncompressed batch: offset deltas 0..n-1, timestamp
//     deltas as given, partitionLeaderEpoch NoLeaderEpoch (-1, what Kafka
//     clients write when producing; the broker that stores the batch sets
//     its own epoch), the producer fields given, CRC-32C filled in.
//   - The Set* functions rewrite one field in place. baseOffset and
//     partitionLeaderEpoch sit outside the CRC; every other field is
//     covered by it, so after SetProducer or ClearAttributes the caller
//     calls UpdateCRC once.
//   - Sequence numbers wrap from math.MaxInt32 to 0 (AddSequence), as in
//     Kafka's idempotent producer.
//
// # Batch header, all integers big-endian
//
//	 0        8        12              16    17      21     23
//	+--------+--------+---------------+-----+-------+------+----------------+
//	| base   | batch  | partition     |magic| crc32c| attr | lastOffset     |
//	| offset | length | leader epoch  | =2  |       | int16| delta int32    |
//	| int64  | int32  | int32         | int8| uint32|      |                |
//	+--------+--------+---------------+-----+-------+------+----------------+
//	 27           35           43           51      53          57      61
//	+------------+------------+------------+-------+-----------+-------+---------
//	| first      | max        | producer   | prod. | base      | record| records
//	| timestamp  | timestamp  | id int64   | epoch | sequence  | count | (maybe
//	| int64      | int64      |            | int16 | int32     | int32 | compressed)
//	+------------+------------+------------+-------+-----------+-------+---------
//	batch length counts bytes 12..end (LengthOverhead = 12 bytes precede
//	it); the CRC-32C (Castagnoli) covers bytes 21..end.
//
//	attributes: bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4,
//	4 zstd), bit 3 timestamp type (log-append time), bit 4 transactional,
//	bit 5 control.
//
// # Record, inside the records section (varints are zigzag, as in protobuf)
//
//	length varint | attributes int8 | timestampDelta varlong |
//	offsetDelta varint | keyLength varint | key | valueLength varint |
//	value | headerCount varint | headerCount × (keyLength varint, key,
//	valueLength varint, value)
//
//	A length of -1 is a null key or value.
package recordbatch
