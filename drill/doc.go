// Package drill holds strait's failover stories: the scenario that
// `strait demo` and `strait drill` run (Scenario), the pair of embedded
// clusters they run it on (StartPair), and the configurations of a drill on
// embedded or on real clusters. `strait failover` and `strait failback` are
// to be told here too. Commands only parse flags, wire a Scenario and print
// its Snapshot and Report; the story itself lives in this package.
//
// Imports: drill sits beside daemon, above the engine: it imports mirror,
// checkpoint and pipelines, and starts brokerd in process for the embedded
// story. Nothing on the mirror side imports drill.
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
// A run goes through its phases in order, one method each, driven by one
// loop (run.do); Snapshot.Phase reports the current one:
//
//	backlog    create the topics, produce the backlog, start the engine, the
//	           steady producer and the source group; wait for the drain
//	streaming  steady state until the cut is due (and the mirror caught up)
//	cut        cut the source, stop the source side, stop the engine
//	failover   translate the group's commits, resume it on the destination
//	verify     read the destination back and measure
//
// A phase ends the run by returning an error; what the run started (clients,
// the engine, the producer, the consumers) is stopped in reverse order when
// the driver returns, whichever phase it stopped in.
//
// Record value layout (big endian):
//
//	+----------+-----------------------------+-------------------+
//	| seq (8)  | crc32c(seq ++ body) (4)      | body (size-12)    |
//	+----------+-----------------------------+-------------------+
//
// The named scenarios of `strait drill` (RunScenario) stream numbered
// records while something breaks and then read each cluster back in full:
// every acknowledged record present once, in order per partition. The
// crash scenarios (crash.go) break what an operator fears most: the mirror
// process killed with SIGKILL (mirror-crash), the network between the
// mirror and both clusters cut, slowed and reset mid-response by a proxy
// (network-partition, proxy.go; the brokers advertise the proxies), and a
// whole cluster's broker process killed with SIGKILL (broker-crash).
// mirror-crash and broker-crash run strait itself as child processes
// (Binary, proc.go), so a kill takes a real process.
//
// Run's error is ErrScenario when the scenario could not run and ErrVerify
// when it ran but broke a promise; the Report says which.
package drill
