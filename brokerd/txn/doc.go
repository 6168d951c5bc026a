// Package txn is brokerd's transaction coordinator (KIP-98): transactional
// ids, producer epochs and the two-phase end of every transaction, for a
// whole cluster.
//
// # Contract
//
// brokerd creates one Coordinator per cluster with New and routes to
// Handle every InitProducerId that carries a transactional id,
// AddPartitionsToTxn (v0–3), AddOffsetsToTxn (v0–3), EndTxn (v0–3),
// DescribeTransactions and ListTransactions (v0–1). Before a
// transactional produce and a TxnOffsetCommit it asks Verify whether the
// partitions (or the group) belong to the producer's open transaction
// (KIP-890 part 1: a late or zombie write cannot start a transaction the
// coordinator does not know of). Kafka-level failures come back as kerr
// codes in the response; Go errors are only ErrClosed and the context's.
//
// # The protocol as served
//
//   - InitProducerId with a transactional id allocates a producer id on
//     first use and bumps the epoch on every later call, fencing the
//     previous producer of that id: its writes, AddPartitions, EndTxn and
//     TxnOffsetCommit get PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before
//     the versions that know it). A transaction still open is aborted
//     first, with the bumped epoch. KIP-360: a request naming the current
//     producer id and epoch bumps it (a producer recovering from an
//     abortable error); one naming the previous epoch of the same id gets
//     the current one back (a retry whose answer was lost). At the last
//     epoch a new producer id is allocated.
//   - AddPartitionsToTxn / AddOffsetsToTxn add to the transaction and move
//     it to Ongoing; the transaction's clock starts at the first add.
//   - EndTxn journals PrepareCommit or PrepareAbort (from then on the
//     outcome is decided and survives a crash), writes the markers through
//     Config.Markers (control batches to every partition of the
//     transaction; the group coordinator's commit or discard of pending
//     offsets), journals CompleteCommit/CompleteAbort and answers. A
//     marker write that fails leaves the transaction in Prepare*: EndTxn
//     still succeeds (the outcome is durable), the coordinator retries the
//     markers on its timer, and meanwhile the producer's next
//     AddPartitions gets CONCURRENT_TRANSACTIONS, which clients retry.
//   - A transaction Ongoing for longer than its timeout is aborted with
//     a bumped epoch, fencing the producer that let it run out.
//   - Ids are never expired (below), so Config.MaxTransactionalIDs bounds
//     them: once the coordinator holds that many, InitProducerId for a
//     new id gets POLICY_VIOLATION (non-retriable; one log line a minute
//     says why); ids already held keep working.
//
// # Concurrency and time
//
// One goroutine owns every transactional id (the run loop); Handle and
// Verify pass closures to it over a channel. The loop reads the clock
// (Config.Now) once per event and hands the time to the state logic,
// which never reads it. One timer wakes the loop for the earliest
// transaction deadline or a pending marker retry. Journal appends and
// marker writes run on the loop, so a change is durable before anyone
// sees it.
//
// # Journal: the compacted __transaction_state log
//
// One record per change of a transactional id, in Kafka's own layout
// (kmsg.TxnMetadataKey / TxnMetadataValue), so Kafka tooling can read it:
//
//	key   (version 0)
//	+---------+-------------------------+
//	| int16 0 | string transactional id |
//	+---------+-------------------------+
//
//	value (version 0)
//	+---------+------------------+-------------------+--------------------+
//	| int16 0 | int64 producerId | int16 producerEpoch| int32 timeout ms  |
//	+---------+------------------+-------------------+--------------------+
//	| int8 state | int32 N topics: string topic, int32 M partitions ...   |
//	+------------+--------------------------------------------------------+
//	| int64 last update ms | int64 transaction start ms                   |
//	+----------------------+----------------------------------------------+
//
// Offsets added with AddOffsetsToTxn appear as partition 0 of
// __consumer_offsets, as Kafka lists the offsets partition. Replay keeps
// the last record per id. After a restart an Ongoing transaction keeps
// its start time, so it times out (and aborts) as it would have; a
// Prepare* one has its markers written again (writing a marker twice is
// harmless: a partition with nothing open ignores it). The compaction of
// __transaction_state keeps the latest record of every id.
//
// Not served: transactional id expiry (transactional.id.expiration.ms),
// KIP-890 part 2 (EndTxn v5, implicit AddPartitions through Produce v12
// with transaction version 2), AddPartitionsToTxn v4+ (broker to broker).
package txn
