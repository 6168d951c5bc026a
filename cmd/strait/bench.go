package main

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
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"strait/brokerd"
)

// errBench marks a benchmark that could not run to completion.
var errBench = errors.New("bench")

func runBench(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: bench needs a target: broker | mirror | producer", errUsage)
	}
	switch args[0] {
	case "broker":
		return benchBroker(args[1:], os.Stdout)
	case "mirror":
		return benchMirror(args[1:])
	case "producer":
		return benchProducer(args[1:], os.Stdout)
	}
	return fmt.Errorf("%w: unknown bench target %q (broker | mirror | producer)", errUsage, args[0])
}

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

func benchBroker(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var bc benchConfig
	fs.IntVar(&bc.records, "records", 1_000_000, "records per produce run")
	fs.IntVar(&bc.valueBytes, "value-bytes", 1000, "bytes per record value")
	fs.IntVar(&bc.partitions, "partitions", 4, "partitions of the produce topic")
	fetchMB := fs.Int("fetch-mb", 256, "MiB of data read by each fetch measurement")
	dataMB := fs.Int("fetch-data-mb", 128, "MiB of data in the fetch topic (reads wrap around)")
	fs.IntVar(&bc.rounds, "rounds", 7, "rounds per target, produce and fetch (the best counts)")
	verbose := fs.Bool("v", false, "print every run's result on stderr")
	fs.IntVar(&bc.rcvbuf, "rcvbuf", 4<<20, "socket receive buffer of both fetch clients in bytes (0: the kernel's autotuning)")
	fs.BoolVar(&bc.splitCPUs, "split-cpus", false, "run the producer in a process of its own with half the CPUs; the brokers keep the other half")
	fs.StringVar(&bc.dir, "dir", "", "brokerd data folder (default: a temporary folder, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v (flags: [--records N] [--value-bytes N] [--partitions N] [--fetch-mb N] [--fetch-data-mb N] [--rounds N] [--rcvbuf BYTES] [--split-cpus] [--dir DIR] [-v])", errUsage, err)
	}
	if bc.records < 1 || bc.valueBytes < 1 || bc.partitions < 1 || *fetchMB < 1 || *dataMB < 1 || bc.rounds < 1 || bc.rcvbuf < 0 {
		return fmt.Errorf("%w: sizes must be positive", errUsage)
	}
	bc.fetchBytes = int64(*fetchMB) << 20
	bc.fetchData = int64(min(*dataMB, *fetchMB)) << 20
	if *verbose {
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
		bc.records, bc.valueBytes, bc.partitions, benchProducerSettings, produceTopology(bc.splitCPUs).String(), *fetchMB, bc.fetchData>>20, bc.rounds)
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
		{name: "produce", strait: best[0], baselineName: "null broker", baseline: best[1], target: 0.8},
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

func deleteTopic(ctx context.Context, seeds []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("%w: delete topic %s: %v", errBench, topic, err)
	}
	return nil
}

func createTopic(ctx context.Context, seeds []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("%w: create topic %s: %v", errBench, topic, err)
	}
	return nil
}

// benchProducerSettings describes benchProducerOpts for the table header.
const benchProducerSettings = "franz-go producer: idempotent, acks=all, no compression, 1 MiB batches"

// benchProducerOpts are the producer settings every produce target gets.
// franz-go's default codec is snappy, and compressing (or failing to
// compress) every batch costs the producer more CPU than any of the
// brokers spends storing it: with it, a broker that stores nothing is
// barely faster than kfake, so the comparison measures the client. Without
// compression and with 1 MiB batches the producer's share shrinks to
// encoding and CRC, and what each broker does per byte and per request
// shows. Every target gets exactly these options; the client stays
// idempotent with acks=all, so each broker checks sequences and answers
// only after the append.
func benchProducerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
}

// warmUpTimeout bounds produceRun's first produce, which connects.
var warmUpTimeout = 20 * time.Second

// produceRun writes n records of valueBytes to topic with a default
// franz-go producer and returns MB/s of record values.
func produceRun(ctx context.Context, seeds []string, topic string, n, valueBytes int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	opts := append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic)}, benchProducerOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	// Connect and learn metadata before the clock starts. franz-go
	// retries an unreachable cluster for as long as the context lets it,
	// so the warm-up gets a deadline of its own and a clear error.
	warmCtx, warmCancel := context.WithTimeout(ctx, warmUpTimeout)
	err = cl.ProduceSync(warmCtx, &kgo.Record{Value: []byte("warm-up")}).FirstErr()
	warmCancel()
	if err != nil {
		return 0, fmt.Errorf("%w: warm-up produce to %s at %v: %v (is the cluster reachable and the topic there?)", errBench, topic, seeds, err)
	}
	// Random values, so the bytes stored are the bytes sent even for a
	// codec that would compress.
	value := make([]byte, valueBytes)
	rand.Read(value)
	var failed atomic.Pointer[error]
	start := time.Now()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("%w: flush: %v", errBench, err)
	}
	elapsed := time.Since(start)
	if e := failed.Load(); e != nil {
		return 0, fmt.Errorf("%w: produce to %v: %v", errBench, seeds, *e)
	}
	return float64(n*valueBytes) / 1e6 / elapsed.Seconds(), nil
}

// topology is how the produce runs share the machine's CPUs.
type topology struct {
	colocated                  bool
	brokerProcs, producerProcs int // GOMAXPROCS of each side
}

// produceTopology says where the producer runs. By default it shares the
// bench process, and every CPU, with the brokers: a broker's CPU per byte
// then shows directly, since a broker that stores nothing leaves the
// producer more CPU than one that checks CRCs and copies into the page
// cache. Split, the producer runs in a child process with half the CPUs
// and the brokers keep the other half, as a producer on a machine of its
// own would: the runs then show whether each broker keeps up with one
// producer, and a broker fast enough to do so ties with the null broker.
// With one CPU there is nothing to split and both sides get it.
func produceTopology(split bool) topology {
	n := runtime.NumCPU()
	if !split {
		return topology{colocated: true, brokerProcs: n, producerProcs: n}
	}
	return topology{brokerProcs: max(n/2, 1), producerProcs: max(n-n/2, 1)}
}

func (t topology) String() string {
	if t.colocated {
		return fmt.Sprintf("producer and brokers in one process on all %d CPUs", t.brokerProcs)
	}
	return fmt.Sprintf("producer in its own process (GOMAXPROCS=%d), brokers in the bench process (GOMAXPROCS=%d)", t.producerProcs, t.brokerProcs)
}

// benchChildEnv marks a process started by the bench as its producer, so a
// test binary standing in for strait knows to run the command line.
const benchChildEnv = "STRAIT_BENCH_CHILD"

// produceChild runs one produce measurement in a `strait bench producer`
// child with procs CPUs and returns the MB/s it reports.
func produceChild(ctx context.Context, seeds []string, topic string, n, valueBytes, procs int) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("%w: find the strait binary: %v", errBench, err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "producer", "--seeds", strings.Join(seeds, ","), "--topic", topic,
		"--records", strconv.Itoa(n), "--value-bytes", strconv.Itoa(valueBytes))
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs), benchChildEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%w: producer: %v: %s", errBench, err, strings.TrimSpace(stderr.String()))
	}
	var mbps float64
	if _, err := fmt.Sscanf(string(out), "%f MB/s", &mbps); err != nil || mbps <= 0 {
		return 0, fmt.Errorf("%w: producer printed %q", errBench, out)
	}
	return mbps, nil
}

// benchProducer is `strait bench producer`: one produce run with the
// bench's producer settings against any cluster, printing "<rate> MB/s".
// bench broker runs it as its load generator; it works against any Kafka
// cluster and an existing topic.
func benchProducer(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench producer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seeds := fs.String("seeds", "", "bootstrap addresses, comma-separated")
	topic := fs.String("topic", "", "topic to write")
	records := fs.Int("records", 1_000_000, "records to write")
	valueBytes := fs.Int("value-bytes", 1000, "bytes per record value")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v (flags: --seeds ADDR[,ADDR] --topic T [--records N] [--value-bytes N])", errUsage, err)
	}
	if *seeds == "" || *topic == "" || *records < 1 || *valueBytes < 1 {
		return fmt.Errorf("%w: bench producer needs --seeds, --topic and positive sizes", errUsage)
	}
	mbps, err := produceRun(context.Background(), strings.Split(*seeds, ","), *topic, *records, *valueBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%.1f MB/s\n", mbps)
	return nil
}

// fillFetchTopic writes about total bytes to partition 0 of topic in
// batches of about 16 KiB.
func fillFetchTopic(ctx context.Context, seeds []string, topic string, total int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	value := make([]byte, 1000)
	var failed atomic.Pointer[error]
	for written := int64(0); written < total; written += int64(len(value)) {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("%w: fill fetch topic: %v", errBench, *e)
	}
	return nil
}

// kafkaConn is a bare Kafka-protocol client connection: one request at a
// time, responses read raw.
type kafkaConn struct {
	c    net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
	wbuf []byte
	rbuf []byte
}

func dialKafka(addr string) (*kafkaConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	return &kafkaConn{c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strait-bench"))}, nil
}

// roundTrip sends req and returns the response body (after the header).
func (k *kafkaConn) roundTrip(req kmsg.Request) ([]byte, error) {
	k.corr++
	k.wbuf = k.fmt.AppendRequest(k.wbuf[:0], req, k.corr)
	if _, err := k.c.Write(k.wbuf); err != nil {
		return nil, fmt.Errorf("%w: write: %v", errBench, err)
	}
	var sz [4]byte
	if _, err := io.ReadFull(k.c, sz[:]); err != nil {
		return nil, fmt.Errorf("%w: read: %v", errBench, err)
	}
	n := int(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("%w: response size %d", errBench, n)
	}
	if cap(k.rbuf) < n {
		k.rbuf = make([]byte, n)
	}
	b := k.rbuf[:n]
	if _, err := io.ReadFull(k.c, b); err != nil {
		return nil, fmt.Errorf("%w: read: %v", errBench, err)
	}
	if int32(binary.BigEndian.Uint32(b)) != k.corr {
		return nil, fmt.Errorf("%w: correlation id mismatch", errBench)
	}
	b = b[4:]
	if req.IsFlexible() && req.Key() != 18 {
		b = b[1:] // response header tags (empty)
	}
	return b, nil
}

// fetchRun reads total bytes of record batches from partition 0 of topic,
// fetchSize bytes per request (wrapping to the start at the end), and
// returns MB/s of record bytes received.
func fetchRun(addr, topic string, fetchSize int32, total int64, rcvbuf int) (float64, error) {
	k, err := dialKafka(addr)
	if err != nil {
		return 0, err
	}
	defer k.c.Close()
	if err := setRcvbuf(k.c, rcvbuf); err != nil {
		return 0, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = fetchSize
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = fetchSize
	rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
	req.Topics = []kmsg.FetchRequestTopic{rt}

	var got int64
	offset := int64(0)
	start := time.Now()
	for got < total {
		req.Topics[0].Partitions[0].FetchOffset = offset
		body, err := k.roundTrip(req)
		if err != nil {
			return 0, err
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if err := resp.ReadFrom(body); err != nil {
			return 0, fmt.Errorf("%w: fetch response: %v", errBench, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: fetch response without the partition", errBench)
		}
		p := &resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			return 0, fmt.Errorf("%w: fetch error code %d", errBench, p.ErrorCode)
		}
		recs := p.RecordBatches
		if len(recs) == 0 {
			if offset == 0 {
				return 0, fmt.Errorf("%w: fetch topic is empty", errBench)
			}
			offset = 0
			continue
		}
		got += int64(len(recs))
		// Continue after the last whole batch.
		for len(recs) >= 61 {
			base := int64(binary.BigEndian.Uint64(recs))
			length := int64(binary.BigEndian.Uint32(recs[8:]))
			if 12+length > int64(len(recs)) {
				break
			}
			offset = base + int64(binary.BigEndian.Uint32(recs[23:])) + 1
			recs = recs[12+length:]
		}
		if offset >= p.HighWatermark {
			offset = 0
		}
	}
	return float64(got) / 1e6 / time.Since(start).Seconds(), nil
}

// setRcvbuf gives a fetch client's socket a fixed receive buffer (0 keeps
// the kernel's autotuning). Both fetch clients get the same one. It
// matters for the fetch loop: one request at a time, each answered with up
// to a megabyte, and with the autotuned buffer the receive window of a new
// connection stays small enough that one response takes several round
// trips on some connections and not on others, so runs split into a slow
// and a fast group. The streaming copy suffers less from it. A consumer
// tuned for throughput sets this too (Kafka's receive.buffer.bytes).
func setRcvbuf(c net.Conn, n int) error {
	if n == 0 {
		return nil
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	if err := tc.SetReadBuffer(n); err != nil {
		return fmt.Errorf("%w: receive buffer: %v", errBench, err)
	}
	return nil
}

// segmentFiles lists the .log files of topic's partitions under dir.
func segmentFiles(dir, topic string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".log") && strings.HasPrefix(filepath.Base(filepath.Dir(path)), topic+"-") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no segment files for %s under %s", errBench, topic, dir)
	}
	sort.Strings(out)
	return out, nil
}

// plainCopyRun is the fetch baseline: a server copies the segment files
// to a loopback socket with read(2) and write(2) in 1 MiB chunks (no
// protocol), a client reads total bytes. It returns MB/s.
func plainCopyRun(files []string, total int64, rcvbuf int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer ln.Close()
	serveErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serveErr <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		var sent int64
		for sent < total {
			for _, path := range files {
				f, err := os.Open(path)
				if err != nil {
					serveErr <- err
					return
				}
				for sent < total {
					// Read then Write, not io.Copy: io.Copy from a file
					// to a TCP socket would use sendfile itself.
					n, rerr := f.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							f.Close()
							serveErr <- err
							return
						}
						sent += int64(n)
					}
					if rerr != nil {
						break
					}
				}
				f.Close()
				if sent >= total {
					break
				}
			}
		}
		serveErr <- nil
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer c.Close()
	if err := setRcvbuf(c, rcvbuf); err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	var got int64
	start := time.Now()
	for got < total {
		n, err := c.Read(buf)
		got += int64(n)
		if err != nil {
			if err == io.EOF && got >= total {
				break
			}
			return 0, fmt.Errorf("%w: plain copy read: %v", errBench, err)
		}
	}
	elapsed := time.Since(start)
	if err := <-serveErr; err != nil {
		return 0, fmt.Errorf("%w: plain copy: %v", errBench, err)
	}
	return float64(got) / 1e6 / elapsed.Seconds(), nil
}

// nullBroker is the produce baseline: a Kafka-protocol server that serves
// ApiVersions, Metadata, InitProducerId and Produce, acknowledging every
// batch with a running offset and storing nothing.
type nullBroker struct {
	ln         net.Listener
	partitions int32
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	offsets    sync.Map // "topic/partition" -> *atomic.Int64
}

func startNullBroker(partitions int32) (*nullBroker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	nb := &nullBroker{ln: ln, partitions: partitions, conns: map[net.Conn]struct{}{}}
	nb.wg.Add(1)
	go func() {
		defer nb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nb.mu.Lock()
			nb.conns[c] = struct{}{}
			nb.mu.Unlock()
			nb.wg.Add(1)
			go func() {
				defer nb.wg.Done()
				nb.serve(c)
				nb.mu.Lock()
				delete(nb.conns, c)
				nb.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nb, nil
}

func (nb *nullBroker) Addr() string { return nb.ln.Addr().String() }

func (nb *nullBroker) Close() {
	nb.ln.Close()
	nb.mu.Lock()
	for c := range nb.conns {
		c.Close()
	}
	nb.mu.Unlock()
	nb.wg.Wait()
}

var nullVersions = map[int16]int16{0: 9, 3: 12, 18: 3, 22: 4}

// serve reads requests on one goroutine and writes responses on another,
// batching queued responses into one writev, as a real broker does; the
// baseline should not lose to brokerd for want of pipelining.
func (nb *nullBroker) serve(c net.Conn) {
	out := make(chan []byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var bufs net.Buffers
		failed := false
		for b := range out {
			if failed {
				continue // drain so the reader never blocks
			}
			bufs = append(bufs[:0], b)
		more:
			for {
				select {
				case b2, ok := <-out:
					if !ok {
						break more
					}
					bufs = append(bufs, b2)
				default:
					break more
				}
			}
			if _, err := bufs.WriteTo(c); err != nil {
				failed = true
				c.Close()
			}
		}
	}()
	defer func() {
		close(out)
		<-done
	}()
	br := bufio.NewReaderSize(c, 1<<20)
	var sz [4]byte
	// One frame buffer for the connection, reused: a request is decoded
	// and answered before the next is read, and the response is encoded
	// into its own bytes, so nothing of a frame outlives its turn. The
	// baseline neither allocates nor zeroes megabytes per request.
	var buf []byte
	for {
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(sz[:]))
		if n < 8 || n > 128<<20 {
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		frame := buf[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		r := kbin.Reader{Src: frame}
		key, version, corr := r.Int16(), r.Int16(), r.Int32()
		r.NullableString() // client id
		req := kmsg.RequestForKey(key)
		maxV, ok := nullVersions[key]
		if key == 18 && req != nil {
			// Clients send their newest ApiVersions before they know
			// ours; answer any version kmsg can encode.
			maxV = req.MaxVersion()
		}
		if req == nil || !ok || version > maxV {
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			for n := r.Uvarint(); n > 0; n-- { // header tags
				r.Uvarint()
				r.Span(int(r.Uvarint()))
			}
		}
		if r.Complete() != nil {
			return
		}
		if err := req.ReadFrom(r.Src); err != nil {
			return
		}
		resp := nb.handle(req)
		if resp == nil {
			continue // acks=0
		}
		b := make([]byte, 8, 128)
		binary.BigEndian.PutUint32(b[4:], uint32(corr))
		if resp.IsFlexible() && key != 18 {
			b = append(b, 0)
		}
		b = resp.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		out <- b
	}
}

func (nb *nullBroker) handle(req kmsg.Request) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for k, v := range nullVersions {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, 0, v
			resp.ApiKeys = append(resp.ApiKeys, ak)
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(nb.Addr())
		var p int32
		fmt.Sscan(port, &p)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, p
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		resp.ControllerID = 0
		for _, rt := range req.Topics {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = rt.Topic
			for i := int32(0); i < nb.partitions; i++ {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition, mp.Leader, mp.Replicas, mp.ISR = i, 0, []int32{0}, []int32{0}
				t.Partitions = append(t.Partitions, mp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 1, 0
		return resp
	case *kmsg.ProduceRequest:
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.LogAppendTime = -1
				v, _ := nb.offsets.LoadOrStore(fmt.Sprintf("%s/%d", rt.Topic, rp.Partition), new(atomic.Int64))
				p.BaseOffset = v.(*atomic.Int64).Add(recordCount(rp.Records)) - recordCount(rp.Records)
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		if req.Acks == 0 {
			return nil
		}
		return resp
	}
	return nil
}

// recordCount sums lastOffsetDelta+1 over the batches of a produce payload.
func recordCount(b []byte) int64 {
	var n int64
	for len(b) >= 61 {
		length := int(binary.BigEndian.Uint32(b[8:]))
		n += int64(binary.BigEndian.Uint32(b[23:])) + 1
		if length < 49 || 12+length > len(b) {
			break
		}
		b = b[12+length:]
	}
	return n
}
