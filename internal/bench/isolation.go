package bench

// strait bench isolation: does a cold read stall other clients' writes?
// (KAFKA-7504, LINE's incident.) One run, four phases on the same cluster
// and data:
//
//   - alone: a producer writes --rate records/s to one partition, one
//     record per request (acks=all, no linger), and every acknowledgement's
//     latency is recorded;
//   - cold fetch: the same producer while --consumers franz-go consumers
//     catch up from offset 0 on partitions of another topic whose segment
//     files were made cold (fsync, then posix_fadvise(DONTNEED));
//   - cold fetch, blocking reads: the same with brokerd.Config.NoColdWait:
//     the fetch handler reads cold data with a blocking pread instead of
//     waiting for it on a timer (brokerd before the fix);
//   - cold fetch, no warming: with brokerd.Config.NoFetchWarm, neither the
//     wait nor the warming: the connection writer's sendfile (and the
//     batch-header walk) read the disk themselves;
//   - cold cat: the same cold files read by `cat` processes instead of
//     brokerd: what the slow disk alone costs the producer.
//
// The data folder sits on a loop device whose reads the blkio cgroup (v1)
// throttles to --read-mbps; the bench process, and so the cat processes it
// starts, runs in that cgroup. It needs root; elsewhere it says so and
// exits 1. Every phase's p50/p99/p999 is printed with its ratio to the
// alone phase.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"strait/brokerd"
	"strait/internal/cli"
)

// ErrNeedsRoot reports a machine where the isolation bench cannot build
// its slow disk.
var ErrNeedsRoot = errors.New("bench isolation: needs root, loop devices and the cgroup v1 blkio controller")

type isolationConfig struct {
	rate      int
	phase     time.Duration
	consumers int
	coldMB    int
	readMBps  int
	valueSize int
	imageMB   int
	trace     string // runtime trace of the cold-fetch phases, FILE.<n>
	rounds    int
}

func newIsolationFlags(ic *isolationConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("isolation", flag.ContinueOnError)
	fs.IntVar(&ic.rate, "rate", 500, "records/s of the steady producer")
	fs.DurationVar(&ic.phase, "phase", 10*time.Second, "length of each phase")
	fs.IntVar(&ic.consumers, "consumers", 3, "cold consumers (one partition each)")
	fs.IntVar(&ic.coldMB, "cold-mb", 32, "MiB stored per cold partition")
	fs.IntVar(&ic.readMBps, "read-mbps", 8, "read throttle of the slow disk in MB/s")
	fs.IntVar(&ic.valueSize, "value-bytes", 100, "bytes per produced record")
	fs.IntVar(&ic.imageMB, "image-mb", 1024, "size of the loop device's image in MiB")
	fs.IntVar(&ic.rounds, "rounds", 3, "rounds of every phase (each phase's median latencies count)")
	fs.StringVar(&ic.trace, "trace", "", "write a Go runtime trace of each cold-fetch phase to FILE.<phase> (for go tool trace)")
	return fs
}

func benchIsolation(args []string, out io.Writer) error {
	var ic isolationConfig
	if _, err := cli.Parse(newIsolationFlags(&ic), args, 0); err != nil {
		return err
	}
	if ic.rate < 1 || ic.phase <= 0 || ic.consumers < 1 || ic.coldMB < 1 || ic.readMBps < 1 || ic.valueSize < 1 || ic.imageMB < 64 || ic.rounds < 1 {
		return fmt.Errorf("%w: sizes must be positive (image-mb at least 64)", cli.ErrUsage)
	}
	rows, err := runIsolation(context.Background(), ic, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "strait bench isolation: a producer at %d records/s (%d B, acks=all, one record a request); %d consumers catching up from %d MiB cold partitions each; data on a loop device read-throttled to %d MB/s; %s phases, %d rounds, medians of the rounds\n\n",
		ic.rate, ic.valueSize, ic.consumers, ic.coldMB, ic.readMBps, ic.phase, ic.rounds)
	printIsolation(out, rows)
	return nil
}

// isolationRow is one phase's produce-acknowledgement latency.
type isolationRow struct {
	name           string
	acks           int
	p50, p99, p999 time.Duration
	coldMB         float64 // MiB read from the slow disk during the phase
}

func printIsolation(out io.Writer, rows []isolationRow) {
	fmt.Fprintln(out, "| phase | acks | p50 | p99 | p999 | p99 vs alone | MiB read from disk |")
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %.2fx | %.1f |\n", r.name, r.acks, fmtMs(r.p50), fmtMs(r.p99), fmtMs(r.p999),
			float64(r.p99)/float64(rows[0].p99), r.coldMB)
	}
}

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// slowDisk is a loop-device file system whose reads are throttled for
// this process's cgroup.
type slowDisk struct {
	image, loop, mount, cgroup string
	dev                        string // "major:minor" of the loop device
}

// readBytes is what this cgroup has read from the loop device so far.
func (sd *slowDisk) readBytes() int64 {
	raw, _ := os.ReadFile(filepath.Join(sd.cgroup, "blkio.throttle.io_service_bytes"))
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == sd.dev && f[1] == "Read" {
			n, _ := strconv.ParseInt(f[2], 10, 64)
			return n
		}
	}
	return 0
}

const blkioRoot = "/sys/fs/cgroup/blkio"

func setupSlowDisk(imageMB, readMBps int) (sd *slowDisk, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not root", ErrNeedsRoot)
	}
	if _, err := os.Stat(filepath.Join(blkioRoot, "blkio.throttle.read_bps_device")); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNeedsRoot, err)
	}
	tmp, err := os.MkdirTemp("", "strait-isolation-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	sd = &slowDisk{image: filepath.Join(tmp, "disk.img"), mount: filepath.Join(tmp, "mnt")}
	defer func() {
		if err != nil {
			sd.teardown()
		}
	}()
	run := func(name string, args ...string) (string, error) {
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%w: %s %s: %v: %s", ErrNeedsRoot, name, strings.Join(args, " "), err, strings.TrimSpace(string(b)))
		}
		return strings.TrimSpace(string(b)), nil
	}
	f, err := os.Create(sd.image)
	if err == nil {
		err = f.Truncate(int64(imageMB) << 20)
		f.Close()
	}
	if err != nil {
		return sd, fmt.Errorf("%w: %v", errBench, err)
	}
	if sd.loop, err = run("losetup", "--find", "--show", sd.image); err != nil {
		return sd, err
	}
	if _, err = run("mkfs.ext4", "-q", "-F", sd.loop); err != nil {
		return sd, err
	}
	if err = os.MkdirAll(sd.mount, 0o755); err != nil {
		return sd, fmt.Errorf("%w: %v", errBench, err)
	}
	if _, err = run("mount", sd.loop, sd.mount); err != nil {
		return sd, err
	}
	var st unix.Stat_t
	if err = unix.Stat(sd.loop, &st); err != nil {
		return sd, fmt.Errorf("%w: %v", errBench, err)
	}
	cg := filepath.Join(blkioRoot, fmt.Sprintf("strait-isolation-%d", os.Getpid()))
	if err = os.Mkdir(cg, 0o755); err != nil {
		return sd, fmt.Errorf("%w: %v", ErrNeedsRoot, err)
	}
	sd.cgroup = cg
	sd.dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	rule := fmt.Sprintf("%s %d", sd.dev, readMBps*1_000_000)
	if err = os.WriteFile(filepath.Join(cg, "blkio.throttle.read_bps_device"), []byte(rule), 0o644); err != nil {
		return sd, fmt.Errorf("%w: %v", ErrNeedsRoot, err)
	}
	// cgroup.procs moves every thread of the process; children inherit.
	if err = os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return sd, fmt.Errorf("%w: %v", ErrNeedsRoot, err)
	}
	return sd, nil
}

func (sd *slowDisk) teardown() {
	if sd.cgroup != "" {
		os.WriteFile(filepath.Join(blkioRoot, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		os.Remove(sd.cgroup)
	}
	if sd.loop != "" {
		exec.Command("umount", sd.mount).Run()
		exec.Command("losetup", "-d", sd.loop).Run()
	}
	os.RemoveAll(filepath.Dir(sd.image))
}

// evict makes files cold: their dirty pages are written, then dropped
// from the page cache.
func evict(files []string) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		err = f.Sync()
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: evict %s: %v", errBench, name, err)
		}
	}
	return nil
}

func runIsolation(ctx context.Context, ic isolationConfig, progress io.Writer) ([]isolationRow, error) {
	sd, err := setupSlowDisk(ic.imageMB, ic.readMBps)
	if err != nil {
		return nil, err
	}
	defer sd.teardown()
	dir := filepath.Join(sd.mount, "data")
	cfg := brokerd.Config{Dir: dir, Brokers: 1, Partitions: 1}
	c, err := brokerd.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	closeCluster := func() { c.Close() }
	defer func() { closeCluster() }()
	seeds := c.Addrs()
	const hot, cold = "hot", "cold"
	if err := createTopic(ctx, seeds, hot, 1); err != nil {
		return nil, err
	}
	if err := createTopic(ctx, seeds, cold, int32(ic.consumers)); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "filling %d cold partitions with %d MiB each\n", ic.consumers, ic.coldMB)
	if err := fillCold(ctx, seeds, cold, ic.consumers, int64(ic.coldMB)<<20); err != nil {
		return nil, err
	}
	files, err := segmentFiles(dir, cold)
	if err != nil {
		return nil, err
	}

	type phase struct {
		name           string
		noWarm, noCold bool
		reader         func(ctx context.Context) (int64, error)
	}
	consumers := func(ctx context.Context) (int64, error) {
		return coldConsumers(ctx, seeds, cold, ic.consumers)
	}
	phases := []phase{
		{name: "alone"},
		{name: "cold fetch", reader: consumers},
		{name: "cold fetch, blocking reads", noCold: true, reader: consumers},
		{name: "cold fetch, no warming", noWarm: true, reader: consumers},
		{name: "cold cat", reader: func(ctx context.Context) (int64, error) { return catFiles(ctx, files) }},
	}
	runPhase := func(round int, ph phase) (isolationRow, error) {
		if ph.noWarm != cfg.NoFetchWarm || ph.noCold != cfg.NoColdWait {
			c.Close()
			cfg.NoFetchWarm, cfg.NoColdWait = ph.noWarm, ph.noCold
			cfg.Listen = seeds[0]
			var err error
			if c, err = brokerd.Start(ctx, cfg); err != nil {
				closeCluster = func() {}
				return isolationRow{}, fmt.Errorf("%w: restart: %v", errBench, err)
			}
		}
		if err := evict(files); err != nil {
			return isolationRow{}, err
		}
		fmt.Fprintf(progress, "round %d phase %s\n", round, ph.name)
		stopTrace := func() {}
		if ic.trace != "" && ph.reader != nil {
			tf, err := os.Create(fmt.Sprintf("%s.%d.%s", ic.trace, round, strings.ReplaceAll(ph.name, " ", "-")))
			if err != nil {
				return isolationRow{}, fmt.Errorf("%w: %v", errBench, err)
			}
			if err := trace.Start(tf); err != nil {
				tf.Close()
				return isolationRow{}, fmt.Errorf("%w: %v", errBench, err)
			}
			stopTrace = func() { trace.Stop(); tf.Close() }
		}
		read := sd.readBytes()
		row, err := isolationPhase(ctx, seeds, hot, ic, ph.reader)
		stopTrace()
		row.coldMB = float64(sd.readBytes()-read) / (1 << 20)
		if err != nil {
			return isolationRow{}, fmt.Errorf("%s: %w", ph.name, err)
		}
		row.name = ph.name
		return row, nil
	}
	perPhase := make([][]isolationRow, len(phases))
	for round := 0; round < ic.rounds; round++ {
		for i, ph := range phases {
			row, err := runPhase(round, ph)
			if err != nil {
				return nil, err
			}
			perPhase[i] = append(perPhase[i], row)
		}
	}
	rows := make([]isolationRow, len(phases))
	for i, rs := range perPhase {
		rows[i] = medianRow(rs)
	}
	return rows, nil
}

// medianRow takes each latency's median over rounds.
func medianRow(rs []isolationRow) isolationRow {
	med := func(get func(isolationRow) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = get(r)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	out := rs[0]
	out.acks = 0
	out.coldMB = 0
	for _, r := range rs {
		out.acks += r.acks
		out.coldMB += r.coldMB / float64(len(rs))
	}
	out.p50 = med(func(r isolationRow) time.Duration { return r.p50 })
	out.p99 = med(func(r isolationRow) time.Duration { return r.p99 })
	out.p999 = med(func(r isolationRow) time.Duration { return r.p999 })
	return out
}

// fillCold writes total bytes to every partition of topic.
func fillCold(ctx context.Context, seeds []string, topic string, partitions int, total int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(256<<10), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	value := make([]byte, 1000)
	for written := int64(0); written < total; written += int64(len(value)) {
		for p := 0; p < partitions; p++ {
			cl.Produce(ctx, &kgo.Record{Value: value, Partition: int32(p)}, nil)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("%w: fill %s: %v", errBench, topic, err)
	}
	return nil
}

// isolationPhase runs the steady producer for ic.phase, with reader (if
// any) started after a second of warm-up, and returns the latencies of the
// acknowledgements after the warm-up.
func isolationPhase(ctx context.Context, seeds []string, topic string, ic isolationConfig, reader func(context.Context) (int64, error)) (isolationRow, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return isolationRow{}, fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		return isolationRow{}, fmt.Errorf("%w: warm-up produce: %v", errBench, err)
	}
	warmUp := time.Second
	var (
		mu            sync.Mutex
		lats          []time.Duration
		perr          error
		rerr          error
		wg            sync.WaitGroup
		rctx, rcancel = context.WithCancel(ctx)
	)
	defer rcancel()
	start := time.Now()
	value := make([]byte, ic.valueSize)
	tick := time.NewTicker(time.Second / time.Duration(ic.rate))
	defer tick.Stop()
	readerStarted := false
	for now := range tick.C {
		if now.Sub(start) >= ic.phase+warmUp {
			break
		}
		if reader != nil && !readerStarted && now.Sub(start) >= warmUp {
			readerStarted = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, rerr = reader(rctx)
			}()
		}
		sent := time.Now()
		counted := sent.Sub(start) >= warmUp
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			d := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && perr == nil {
				perr = err
			}
			if counted {
				lats = append(lats, d)
			}
		})
	}
	rcancel()
	if err := cl.Flush(ctx); err != nil {
		return isolationRow{}, fmt.Errorf("%w: flush: %v", errBench, err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if perr != nil {
		return isolationRow{}, fmt.Errorf("%w: produce: %v", errBench, perr)
	}
	if rerr != nil && !errors.Is(rerr, context.Canceled) {
		return isolationRow{}, fmt.Errorf("%w: cold reader: %v", errBench, rerr)
	}
	if len(lats) == 0 {
		return isolationRow{}, fmt.Errorf("%w: no acknowledgements", errBench)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	q := func(f float64) time.Duration { return lats[min(len(lats)-1, int(f*float64(len(lats))))] }
	return isolationRow{acks: len(lats), p50: q(0.50), p99: q(0.99), p999: q(0.999)}, nil
}

// coldConsumers runs one `strait bench consumer` process per partition of
// topic, each reading from offset 0 to the end, until they finish or ctx
// ends. They run apart from the brokers, as consumers on other machines
// would: in this process their record decoding and garbage would slow the
// producer whatever the broker does.
func coldConsumers(ctx context.Context, seeds []string, topic string, n int) (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("%w: find the strait-bench binary: %v", errBench, err)
	}
	cmds := make([]*exec.Cmd, 0, n)
	for p := 0; p < n; p++ {
		cmd := exec.CommandContext(ctx, exe, "consumer", "--seeds", strings.Join(seeds, ","), "--topic", topic, "--partition", strconv.Itoa(p))
		cmd.Env = append(os.Environ(), ChildEnv+"=1")
		if err := cmd.Start(); err != nil {
			return 0, fmt.Errorf("%w: consumer: %v", errBench, err)
		}
		cmds = append(cmds, cmd)
	}
	var first error
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil && ctx.Err() == nil && first == nil {
			first = fmt.Errorf("%w: consumer: %v", errBench, err)
		}
	}
	return 0, first
}

// consumerFlags are bench consumer's flags.
type consumerFlags struct {
	seeds, topic string
	partition    int
}

func newConsumerFlags(f *consumerFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.StringVar(&f.seeds, "seeds", "", "bootstrap addresses, comma-separated (required)")
	fs.StringVar(&f.topic, "topic", "", "topic to read (required)")
	fs.IntVar(&f.partition, "partition", 0, "partition to read")
	return fs
}

// benchConsumer is `strait bench consumer`: one partition read from its
// start to its end, printing the record bytes read.
func benchConsumer(args []string, out io.Writer) error {
	var f consumerFlags
	if _, err := cli.Parse(newConsumerFlags(&f), args, 0); err != nil {
		return err
	}
	if f.seeds == "" || f.topic == "" || f.partition < 0 {
		return fmt.Errorf("%w: --seeds and --topic are required, --partition at least 0", cli.ErrUsage)
	}
	n, err := consumeToEnd(context.Background(), strings.Split(f.seeds, ","), f.topic, int32(f.partition))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	fmt.Fprintf(out, "%d bytes\n", n)
	return nil
}

func consumeToEnd(ctx context.Context, seeds []string, topic string, p int32) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	end, err := endOffsetsOf(ctx, seeds, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return n, err
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			n += int64(len(r.Value))
			if r.Offset+1 >= end[p] {
				done = true
			}
		})
		if done {
			break
		}
	}
	return n, nil
}

// catFiles reads files with one `cat` process per file (in this process's
// cgroup) until they finish or ctx ends, and returns the bytes in them.
func catFiles(ctx context.Context, files []string) (int64, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer devnull.Close()
	var total int64
	cmds := make([]*exec.Cmd, 0, len(files))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errBench, err)
		}
		total += st.Size()
		cmd := exec.CommandContext(ctx, "cat", f)
		cmd.Stdout = devnull // a file, so no goroutine of this process copies
		if err := cmd.Start(); err != nil {
			return 0, fmt.Errorf("%w: cat: %v", errBench, err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		cmd.Wait()
	}
	return total, nil
}
