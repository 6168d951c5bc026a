// Package failover moves a pipeline's consumer groups from its source
// cluster to its destination (Failover). `strait failover` and the drill's
// scenarios call it; commands only parse flags and print the Report.
// Failback (copying the old source's divergent tail, then the reverse
// pipeline) is meant to live here too; it is not written yet.
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
// Both refuse clusters whose ids differ from the ones recorded with the
// checkpoints (checkpoint.LoadClusters) unless Force is set.
package failover
