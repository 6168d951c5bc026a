package bench

// strait bench broker: produce and fetch throughput of brokerd against
// baselines measured in the same run, printed as a table of ratios.
//
//   - produce: one franz-go producer with the settings of
//     benchProducerOpts (idempotent, acks=all, no compression, 1 MiB
//     batches) writes the same records to brokerd, to a null broker that
//     acknowledges without storing, and to franz-go's kfake; each round
//     runs the targets in a rotated order, dirty pages are written back
//     between runs, and the best run of each counts. The producer runs
//     in the bench process, sharing every CPU with the brokers; with
//     --split-cpus it runs in a process of its own (`strait bench
//     producer`) with half the CPUs and the brokers keep the other half
//     (see produceTopology).
//   - raw fetch: a client issuing Fetch v11 requests on one connection,
//     one at a time, and reading the raw responses, against a plain
//     read(2)+write(2) copy of the same segment files to a socket. The
//     partition (128 MiB by default, in the page cache) is read round and
//     round until each measurement has read --fetch-mb.
//   - sendfile vs copy: the same raw fetch at 16 KiB, 64 KiB and 1 MiB
//     fetch sizes against brokerd's sendfile path and its copy path
//     (brokerd.Config.CopyFetch), two clusters serving copies of the same
//     folder. Every fetch measurement of a round runs in an order rotated
//     each round; the best of the rounds counts.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sys/unix"

	"strait/brokerd"
	"strait/internal/cli"
)

// errBench marks a benchmark that could not run to completion.
var errBench = errors.New("bench")

// benchConfig sizes one run of bench broker.
type benchConfig struct {
	records    int
	valueBytes int
	partitions int
	fetchBytes int64 // read by each fetch measurement
	fetchData  int64 // stored in the fetch topic (reads wrap around)
	rounds     int
	dir        string
	verbose    io.Writer // every run's result, or nil
	splitCPUs  bool      // the producer runs in a child process, on half the CPUs
	rcvbuf     int       // SO_RCVBUF of both fetch clients; 0 = the kernel's autotuning
}

// brokerFlags are bench broker's flags: a benchConfig and what it is
// derived from.
type brokerFlags struct {
	benchConfig
	fetchMB, dataMB int
	verbose         bool
}

func newBrokerFlags(f *brokerFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.IntVar(&f.records, "records", 1_000_000, "records per produce run")
	fs.IntVar(&f.valueBytes, "value-bytes", 1000, "bytes per record value")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the produce topic")
	fs.IntVar(&f.fetchMB, "fetch-mb", 256, "MiB of data read by each fetch measurement")
	fs.IntVar(&f.dataMB, "fetch-data-mb", 128, "MiB of data in the fetch topic (reads wrap around)")
	fs.IntVar(&f.rounds, "rounds", 7, "rounds per target, produce and fetch (the best counts)")
	fs.BoolVar(&f.verbose, "v", false, "print every run's result on stderr")
	fs.IntVar(&f.rcvbuf, "rcvbuf", 4<<20, "socket receive buffer of both fetch clients in bytes (0: the kernel's autotuning)")
	fs.BoolVar(&f.splitCPUs, "split-cpus", false, "run the producer in a process of its own with half the CPUs; the brokers keep the other half")
	fs.StringVar(&f.dir, "dir", "", "brokerd data folder (default: a temporary folder, removed afterwards)")
	return fs
}

// benchBroker is `strait bench broker`.
func benchBroker(args []string, out io.Writer) error {
	var f brokerFlags
	if _, err := cli.Parse(newBrokerFlags(&f), args, 0); err != nil {
		return err
	}
	bc := f.benchConfig
	if bc.records < 1 || bc.valueBytes < 1 || bc.partitions < 1 || f.fetchMB < 1 || f.dataMB < 1 || bc.rounds < 1 || bc.rcvbuf < 0 {
		return fmt.Errorf("%w: sizes must be positive", cli.ErrUsage)
	}
	bc.fetchBytes = int64(f.fetchMB) << 20
	bc.fetchData = int64(min(f.dataMB, f.fetchMB)) << 20
	if f.verbose {
		bc.verbose = os.Stderr
	}
	if bc.dir == "" {
		d, err := os.MkdirTemp("", "strait-bench-")
		if err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		defer os.RemoveAll(d)
		bc.dir = d
	}
	ctx := context.Background()
	rows, err := benchRows(ctx, bc)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "strait bench broker: produce %d records x %d B to %d partitions, %s, same for every target, %s; fetch %d MiB per run from a %d MiB partition; %d rounds, targets rotated each round, best run of each counts\n\n",
		bc.records, bc.valueBytes, bc.partitions, benchProducerSettings, produceTopology(bc.splitCPUs).String(), f.fetchMB, bc.fetchData>>20, bc.rounds)
	printTable(out, rows)
	return nil
}

// row is one line of the result table: brokerd against a baseline.
type row struct {
	name             string
	strait, baseline float64 // MB/s
	baselineName     string
	target           float64 // minimum ratio; 0 = none
}

func printTable(out io.Writer, rows []row) {
	fmt.Fprintln(out, "| measurement | brokerd MB/s | baseline | baseline MB/s | ratio | target |")
	fmt.Fprintln(out, "| --- | ---: | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		target, mark := "-", ""
		ratio := r.strait / r.baseline
		if r.target > 0 {
			target = fmt.Sprintf(">= %.1fx", r.target)
			mark = " ok"
			if ratio < r.target {
				mark = " MISSED"
			}
		}
		fmt.Fprintf(out, "| %s | %.0f | %s | %.0f | %.2fx%s | %s |\n", r.name, r.strait, r.baselineName, r.baseline, ratio, mark, target)
	}
}

func (bc benchConfig) logRun(what, target string, round int, mbps float64) {
	if bc.verbose != nil {
		fmt.Fprintf(bc.verbose, "round %d %s %s: %.0f MB/s\n", round, what, target, mbps)
	}
}

// produceTarget is one broker the produce runs write to.
type produceTarget struct {
	name      string
	seeds     []string
	ownTopics bool // topics are created and deleted around each run
}

// produceRounds runs bc.rounds rounds of one produce run per target and
// returns each target's best MB/s, in targets' order. The order rotates
// each round so drift in machine load hits all targets alike. Every run
// writes to a topic of its own, deleted afterwards: brokerd then writes
// into page-cache memory freed by the run before rather than growing the
// cache by a gigabyte a run, and kfake's heap (shared with this process,
// the client and the null broker) stays small instead of slowing garbage
// collection for all of them.
func produceRounds(ctx context.Context, bc benchConfig, targets []produceTarget) ([]float64, error) {
	topo := produceTopology(bc.splitCPUs)
	if bc.splitCPUs {
		// The brokers' share of the CPUs, for the produce runs only.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(topo.brokerProcs))
	}
	best := make([]float64, len(targets))
	for round := 0; round < bc.rounds; round++ {
		for k := range targets {
			i := (round + k) % len(targets)
			t := targets[i]
			topic := fmt.Sprintf("bench-produce-%d", round)
			if t.ownTopics {
				if err := createTopic(ctx, t.seeds, topic, int32(bc.partitions)); err != nil {
					return nil, err
				}
			}
			var mbps float64
			var err error
			if bc.splitCPUs {
				mbps, err = produceChild(ctx, t.seeds, topic, bc.records, bc.valueBytes, topo.producerProcs)
			} else {
				mbps, err = produceRun(ctx, t.seeds, topic, bc.records, bc.valueBytes)
			}
			if err != nil {
				return nil, err
			}
			if t.ownTopics {
				if err := deleteTopic(ctx, t.seeds, topic); err != nil {
					return nil, err
				}
			}
			best[i] = max(best[i], mbps)
			bc.logRun("produce", t.name, round, mbps)
			// Write back brokerd's dirty pages now, outside any
			// timed run, so kernel writeback does not steal CPU
			// from whichever target runs next.
			unix.Sync()
		}
	}
	return best, nil
}

func benchRows(ctx context.Context, bc benchConfig) ([]row, error) {
	const fetchTopic = "bench-fetch"

	cluster, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(bc.dir, "produce"), Brokers: 1, Partitions: int32(bc.partitions)})
	if err != nil {
		return nil, fmt.Errorf("%w: start brokerd: %v", errBench, err)
	}
	closeCluster := func() {
		if cluster != nil {
			cluster.Close()
			cluster = nil
		}
	}
	defer closeCluster()
	null, err := startNullBroker(int32(bc.partitions))
	if err != nil {
		return nil, err
	}
	defer null.Close()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("%w: kfake: %v", errBench, err)
	}
	defer fake.Close()

	best, err := produceRounds(ctx, bc, []produceTarget{
		{name: "brokerd", seeds: cluster.Addrs(), ownTopics: true},
		{name: "null broker", seeds: []string{null.Addr()}}, // answers for any topic
		{name: "kfake", seeds: fake.ListenAddrs(), ownTopics: true},
	})
	if err != nil {
		return nil, err
	}
	rows := []row{
		{name: "produce", strait: best[0], baselineName: "null broker", baseline: best[1]}, // no target: bench cost compares CPU per GB instead
		{name: "produce", strait: best[0], baselineName: "kfake", baseline: best[2], target: 1.5},
	}

	closeCluster()

	// Fetch data: one partition of ~16 KiB batches, so a 16 KiB fetch
	// returns about one batch and a 1 MiB fetch about sixty-four. The
	// folder is then copied so two clusters serve the same bytes at
	// once, one through sendfile and one through the copy path, and the
	// rounds can alternate between them.
	sfDir, cpDir := filepath.Join(bc.dir, "fetch-sendfile"), filepath.Join(bc.dir, "fetch-copy")
	cluster, err = brokerd.Start(ctx, brokerd.Config{Dir: sfDir, Brokers: 1, Partitions: 1})
	if err != nil {
		return nil, fmt.Errorf("%w: start brokerd: %v", errBench, err)
	}
	if err := createTopic(ctx, cluster.Addrs(), fetchTopic, 1); err != nil {
		return nil, err
	}
	if err := fillFetchTopic(ctx, cluster.Addrs(), fetchTopic, bc.fetchData); err != nil {
		return nil, err
	}
	closeCluster()
	if err := copyTree(sfDir, cpDir); err != nil {
		return nil, err
	}
	unix.Sync()
	files, err := segmentFiles(sfDir, fetchTopic)
	if err != nil {
		return nil, err
	}
	cluster, err = brokerd.Start(ctx, brokerd.Config{Dir: sfDir, Brokers: 1})
	if err != nil {
		return nil, fmt.Errorf("%w: restart brokerd: %v", errBench, err)
	}
	copyCluster, err := brokerd.Start(ctx, brokerd.Config{Dir: cpDir, Brokers: 1, CopyFetch: true})
	if err != nil {
		return nil, fmt.Errorf("%w: start brokerd (copy path): %v", errBench, err)
	}
	defer copyCluster.Close()
	sfAddr, cpAddr := cluster.Addrs()[0], copyCluster.Addrs()[0]

	sizes := []int32{16 << 10, 64 << 10, 1 << 20}
	sendfile := make([]float64, len(sizes))
	copied := make([]float64, len(sizes))
	var plain float64
	// Every measurement of a round, run in an order rotated by one each
	// round, as for produce.
	type fetchTask struct {
		name string
		run  func() (float64, error)
		best *float64
	}
	tasks := []fetchTask{{"plain copy", func() (float64, error) { return plainCopyRun(files, bc.fetchBytes, bc.rcvbuf) }, &plain}}
	for i, sz := range sizes {
		tasks = append(tasks,
			fetchTask{"sendfile " + sizeName(sz), func() (float64, error) { return fetchRun(sfAddr, fetchTopic, sz, bc.fetchBytes, bc.rcvbuf) }, &sendfile[i]},
			fetchTask{"copy path " + sizeName(sz), func() (float64, error) { return fetchRun(cpAddr, fetchTopic, sz, bc.fetchBytes, bc.rcvbuf) }, &copied[i]})
	}
	for round := 0; round < bc.rounds; round++ {
		for k := range tasks {
			t := tasks[(round+k)%len(tasks)]
			mbps, err := t.run()
			if err != nil {
				return nil, err
			}
			*t.best = max(*t.best, mbps)
			bc.logRun("fetch", t.name, round, mbps)
		}
	}
	rows = append(rows, row{name: "raw fetch, 1 MiB fetches", strait: sendfile[len(sizes)-1], baselineName: "file-to-socket read+write", baseline: plain, target: 0.7})
	for i, sz := range sizes {
		rows = append(rows, row{name: fmt.Sprintf("fetch %s, sendfile", sizeName(sz)), strait: sendfile[i], baselineName: "brokerd copy path", baseline: copied[i]})
	}
	return rows, nil
}

// copyTree copies the regular files under src to dst.
func copyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		return fmt.Errorf("%w: copy %s: %v", errBench, src, err)
	}
	return nil
}

func sizeName(n int32) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
