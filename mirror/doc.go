// Package mirror is strait's engine: it turns each pipeline of a
// configuration into one task per source partition and streams source
// partition k into destination partition k, in order, keeping keys, values,
// headers, timestamps and tombstones, never copying control batches or
// aborted transactional data.
//
// # Contract
//
//   - New(cfg, Options) checks the configuration; Run(ctx) mirrors until ctx
//     ends, then stops cleanly: each task's write in flight is waited for,
//     and positions are checkpointed before Run returns.
//   - Reload(cfg): added pipelines start, removed ones stop, changed ones
//     (pipeline, its clusters or the checkpoint settings) restart,
//     unchanged ones are not disturbed.
//   - Pause/Resume a pipeline or one source partition; Resume also clears
//     an auto-pause, restarts a failed task, and moves a task stopped in
//     state gap to the source log start.
//   - Status(): a snapshot per pipeline and partition (positions, lag, time
//     lag, rates, state and reason).
//   - Translate(pipeline, tp, offset): a committed source offset translated
//     exactly to the destination, from live state.
//
// A source position advances only past records the destination
// acknowledged (acks=all, idempotent producer). Positions and offset maps go
// to the checkpoint store (package checkpoint) every checkpoints.interval
// and on stop; a task that starts from a checkpoint reconciles with the
// destination first (checkpoint.Reconcile), so a restart, even after
// kill -9, neither loses nor repeats a record. A destination partition
// written by someone else fails its task loudly (state failed) without
// writing.
//
// # Pipelines
//
// Active-active with identical topic names copies without echo, but the
// destination partitions then have local writers too, so a restart from a
// checkpoint fails those tasks with checkpoint.ErrStranger (loudly, writing
// nothing) rather than guessing.
//
// A pipeline has one source and one destination client. Every `refresh` it
// lists source topics, keeps the ones `topics` selects, creates missing
// destination topics (the source's partition count and, with
// sync.topic_configs, the configs set on the source topic; broker defaults
// and read-only values stay), grows destination partitions with the source
// (sync.partitions), copies later topic-config changes, and starts a task
// for each new partition. The admin calls go in batches (topics.go): one
// CreateTopics, CreatePartitions, DescribeConfigs or
// IncrementalAlterConfigs per 1,000 topics, errors reported per topic and
// retried at the next refresh. New tasks without a checkpoint start
// together (startbatch.go): one ListOffsets per broker on each side and one
// checkpoint save; tasks with a checkpoint reconcile one by one.
//
// A task's goroutine runs only while it has work (starting, writing,
// backing off): an idle partition costs its state and nothing else. Every sync.interval it syncs sync.groups' committed
// offsets (checkpoint.SyncGroups with the live offset maps).
//
// Reading is shared: one fetch loop per source broker sends one Fetch
// (READ_COMMITTED, Fetch v12 and Produce v12 so topics travel by name) for
// every partition it leads whose task has room (at most two fetched chunks
// ahead of its writes), and hands each partition's bytes to its task. The
// loop holds a fetch session (KIP-227) where the broker offers one, so after
// the first request only partitions whose fetch offset moved are listed and
// only partitions with news come back; a broker without sessions gets full
// fetches. The long poll is 200 ms, cut to 2 ms while a busy partition
// had to be left out of the request, so an active partition never waits on
// idle ones. Fetching stops while the pipeline's fetched-but-unacknowledged
// bytes exceed limits.buffer, so a destination outage stalls reading rather
// than filling memory; limits.bytes_per_second is a token bucket over
// written bytes. Destination leaders are read with a direct Metadata
// request (never auto-creating), so topics created by the engine get their
// tasks at once.
//
// # Modes
//
// Each mode is a writer of its own (batchwriter.go, recordwriter.go behind
// the interface in writer.go); a task builds its writer once and drives
// either the same way: write fetched chunks, and after a failed write
// recover, reconcile with the destination and go on from there.
//
// batch: the fetched record batches are written as they are: control
// batches, aborted transactional batches (the fetch's aborted-transaction
// list, as a consumer applies it) and batches written by the engine's own
// producers on the source cluster (active-active loop prevention: the ids
// of the engine's running pipelines plus those that the configuration's
// pipelines writing into that cluster recorded in their checkpoints) are
// dropped; each remaining batch gets the pipeline's idempotent producer id
// and epoch (InitProducerId on the destination), the session's next
// sequence number on that partition (kept by the pipeline, not the task, so
// a partition that leaves the daemon and comes back goes on from where it
// stopped instead of repeating sequence numbers the destination still
// remembers), the transactional bit cleared and its CRC-32C recomputed, and is
// produced raw (acks=-1) to the destination leader — never decompressed or
// recompressed. One batch per request, each acknowledged before the next,
// so a retry resends the same bytes with the same sequence and the broker
// drops the duplicate. Offsets inside a batch keep their deltas. A batch
// that cannot go whole (a start inside it, holes left by compaction, a
// legacy message set) is decoded and re-encoded uncompressed with
// contiguous offsets. Errors: NOT_LEADER and network errors refresh
// metadata and retry; OUT_OF_ORDER_SEQUENCE, UNKNOWN_PRODUCER_ID and
// producer-epoch errors end the producer session: a new producer id, then
// reconcile from the last acknowledged position; MESSAGE_TOO_LARGE and
// corrupt-record refusals auto-pause the partition with the reason.
//
// record: the fetched bytes are decoded with franz-go's decoder
// (decompression, control and aborted records dropped) and each record is
// produced through a franz-go idempotent producer (acks=all, manual
// partitioner: partition k stays k) with its key, value (nil stays a
// tombstone), headers and timestamp, plus the provenance header
// checkpoint.ProvenanceHeader = "<source cluster>/<pipeline>". A record whose origin
// cluster is the pipeline's destination is not copied back. Positions
// advance in the producer's promises, in source order.
//
// # Faults
//
// Every cluster call retries with exponential backoff and jitter. A task
// whose writes the destination refuses MaxFailures times in a row (Kafka
// error codes) is auto-paused with the reason and retries by itself after
// AutoPauseRetry; a destination that does not answer at all (down,
// unreachable) only backs off, since every partition sees it, so the
// tasks resume by themselves as soon as it is back. A fetch below the
// source's log start (retention or DeleteRecords removed records before
// they were copied) stops the task in state gap: the lost count goes to
// the gap_records metric and PartitionStatus.GapRecords, the log says
// ERROR, nothing is skipped until an operator resumes the partition; it
// then continues from the log start (the offset map records the jump). A
// source log that ends below the task's position (topic re-created) is
// reported the same way.
//
// # Fleet (workers:)
//
// With a workers: section the engine joins the group through package
// member (fleet.go) on a client of its own and runs only the partitions
// its assignment gives it: the pipelines ask owns(tp) before they start a
// task. Join metadata (mirror/assign): Options.DaemonID (default host name
// and pid), version, configuration fingerprint, owned partitions with the
// bytes/s their tasks measured, and the partitions released last round.
// The leader assigns every partition its pipelines discovered (a pipeline
// whose first discovery is not done keeps what members own of it) and
// rejoins when discovery finds the set changed. Assigned revokes first:
// the tasks stop fetching, the write in flight is acknowledged (record
// mode: every record with the producer has its answer), the positions are
// saved, and only then are the tasks forgotten; gained partitions start
// once their previous owner's checkpoint is read from the store, through
// the usual reconciliation. Fenced stops every task without saving.
//
// The lease: every produce (both writers) and every checkpoint save first
// checks member's Lease, so a process resumed after its session expired
// writes nothing even before its loop gets to fence; record mode's records
// also carry a context that the fence cancels, so the producer fails what
// it has not sent. Topic creation, growth, config sync and group offset
// sync run on the leader only; it translates partitions other daemons copy
// through their checkpoints. Status adds FleetStatus and each partition's
// Owner; the rebalance metrics are strait.mirror.rebalances,
// .rebalance.duration, .rebalance.partitions_moved and .fences.
//
// # Metrics (OpenTelemetry, through Options.Meter)
//
// Counters of records, bytes, errors and gap records, and gauges of lag,
// time lag and paused state, all named strait.mirror.*. Labels: pipeline,
// topic, partition (errors without a partition carry only pipeline). Per
// topic and per pipeline, sums of lag, records and bytes, and the number of
// tasks by state. Every instrument is observable: one callback reads the
// running tasks at collection time, so only partitions the engine runs are
// reported and a task holds no metric state beyond its own totals. The
// instruments, their meaning and their Prometheus names are listed in
// docs/operations.md, the one place they are documented.
//
// # Locks
//
// fleet.handoff before pipeline.saveMu before pipeline.mu; fleet.mu is a
// leaf. pipeline.mu before task.mu; recordWriter.mu before task.mu; budget.mu,
// the bucket lock, batchWriter.mu and the producer session lock are
// leaves. No lock is held across a network call, except
// the producer session lock around InitProducerId (one caller at a time
// on purpose).
package mirror
