// Package e2e holds strait's end-to-end scenarios: the failover story that
// `strait demo` and `strait drill` run (Scenario), the pair of embedded
// clusters they run it on (StartPair), and tests that drive the built binary
// against real brokerd clusters as a user would.
//
// A Scenario produces a keyed, numbered, checksummed stream to the source at
// a fixed rate, runs the mirror engine, and keeps a consumer group reading
// on the source with synchronous commits (a record counts as consumed only
// once its commit is acknowledged). Then it cuts the source: an embedded
// cluster is stopped; a real one is left alone, the producer stops and the
// pipeline pauses. The engine stops (its last checkpoint holds every
// acknowledged position), the group's last commits are translated through
// the checkpoint store and committed on the destination, and the group
// resumes there. Reading the destination back, it measures:
//
//   - RPO: records the source acknowledged that never reached the
//     destination, and the window from the oldest of them to the cut;
//   - RTO: the time from the cut to the group's first read on the
//     destination;
//   - lost: mirrored records the group never consumed on either side;
//   - duplicates: records the group consumed twice, and records present
//     twice on the destination;
//   - translation exactness: per partition, the translated offset against
//     the destination offset of the record at the committed source offset.
//
// Record value layout (big endian):
//
//	+----------+-----------------------------+-------------------+
//	| seq (8)  | crc32c(seq ++ body) (4)      | body (size-12)    |
//	+----------+-----------------------------+-------------------+
//
// Run's error is ErrScenario when the scenario could not run and ErrVerify
// when it ran but broke a promise; the Report says which.
package e2e
