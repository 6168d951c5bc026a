// Package failover moves a pipeline's consumer groups from its source
// cluster to its destination (Failover) and brings an old source back into
// step after one (Failback). `strait failover`, `strait failback` and the
// drill's scenarios call it; commands only parse flags and print reports.
//
// Planned failover, in order:
//
//  1. drain: wait until the pipeline has copied everything the source holds
//     (its position reaches the source's end on every partition), bounded
//     by Options.LagTimeout, reporting progress;
//  2. stop the pipeline's writes (Writer.Stop), then wait until its
//     checkpoints record that position (bounded); records acknowledged on
//     the source after that are reported as unmirrored and refuse the move
//     unless forced;
//  3. for each matching group: wait until it is Empty on the source
//     (bounded; static members, KIP-345, are removed with LeaveGroup by
//     their group.instance.id), so no commit can land after the move;
//  4. translate its final commits exactly through the checkpoint's offset
//     map and commit them on the destination.
//
// Unplanned failover (source gone) skips 1–3: it takes the group's commits
// from the source if it still answers, else keeps what the mirror's group
// sync committed on the destination, and reports per partition the RPO
// (records acknowledged on the source that never reached the destination,
// when the source can say; else the age of the last mirrored record) and
// the records each group will read again.
//
// Every step is idempotent: a commit is made only where the destination
// group is Empty and its commit is below the translated one; running it
// again reports "unchanged". DryRun reads everything and writes nothing:
// no engine runs, no member is removed, nothing is committed.
//
// Failback, per partition of the pipeline that ran before the failover:
//
//  1. read the new primary after the checkpoint: the pipeline's copies
//     written after it (its producer ids, or a provenance header), the new
//     primary's own writes, and copies an earlier failback made (they carry
//     OriginHeader, "<cluster>/<topic>/<partition>/<offset>");
//  2. read the old source after the checkpoint, leaving out what the
//     pipeline never copies (loop prevention); its first records are the
//     copies found in 1 (the last pair is compared), the rest is the
//     divergent tail;
//  3. copy the part of the tail no earlier run copied, in order, to the
//     mirrored topic or a recovery topic, with OriginHeader and the
//     pipeline's provenance header, by a producer whose id is first added
//     to the pipeline's checkpoints: the reverse pipeline's loop protection
//     then leaves the copies out in both modes;
//  4. save the pipeline's checkpoint past the tail (the forward pipeline,
//     resumed one day, neither re-copies it nor mistakes the copies);
//  5. seed the reverse pipeline's checkpoint, unless it has one, at the new
//     primary's first own write and the old source's end.
//
// A crash between 3 and 4 is repaired by the next run from the origin
// headers. DryRun reads and writes nothing.
//
// Both refuse clusters whose ids differ from the ones recorded with the
// checkpoints (checkpoint.LoadClusters) unless Force is set.
package failover
