// Package bench is strait's benchmark harness: `strait bench broker`,
// `strait bench mirror`, `strait bench cost`, `strait bench isolation` and
// the helpers they run as child processes, `strait bench producer` and
// `strait bench consumer`. It is the program
// cmd/strait-bench; the strait binary only hands `strait bench` arguments to
// that binary, so none of this, and in particular not franz-go's kfake
// (a baseline of bench broker), is linked into the product.
//
// Contract:
//
//   - Main takes the arguments after "bench" (the target first) and returns
//     the exit code, with strait's command-line conventions (package cli):
//     -h prints the target's usage on stdout, a bad flag prints it on
//     stderr and exits 2, a benchmark that cannot finish exits 1.
//   - Every measurement is a ratio against a baseline measured in the same
//     run on the same machine; absolute rates are printed but vary with
//     the load of the machine. Targets run in an order rotated each round
//     and the best run of each counts.
//   - bench broker: a franz-go producer with fixed settings writes the same
//     records to brokerd, to a null broker (nullbroker.go: it acknowledges
//     every batch and stores nothing) and to kfake; a bare Kafka client
//     (fetch.go) reads a cached partition with one Fetch at a time from
//     brokerd's sendfile path and its copy path, against a plain
//     read+write copy of the same segment files to a socket. With
//     --split-cpus the producer is this binary re-executed as `producer`
//     (ChildEnv set) with half the CPUs.
//   - bench mirror: two embedded brokerd clusters; batch mode, record mode
//     and a plain consume-and-produce loop copy the same source topic,
//     then end-to-end latency is measured at a fixed rate.
//   - bench cost (cost.go, floor.go, child.go): throughput and CPU-seconds
//     per GB against physical floors. The brokers, the mirror and the
//     floor's sender, relay and sink are this binary re-executed in a role
//     (RoleEnv), each measured from its own CPU counters; the floor moves
//     the source's segment files over two loopback hops with sendfile and
//     splice only. brokerd's produce CPU per GB is compared with a null
//     broker's and with one memcpy + CRC-32C pass per byte.
//   - bench producer: one produce run against any cluster's existing
//     topic, printing "<rate> MB/s" on stdout; bench broker parses it.
//   - bench isolation: a steady producer's acknowledgement latency while
//     consumers (bench consumer, in processes of their own) read cold
//     data from a read-throttled loop device, with brokerd's cold-read
//     handling on, off (blocking reads) and without warming, against the
//     same reads by cat. Needs root and cgroup v1 blkio.
//
// A run's data lives in a temporary folder removed at its end, unless
// --dir names a folder to use (and keep).
package bench
