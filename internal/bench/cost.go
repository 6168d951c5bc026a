package bench

// strait bench cost: throughput and CPU cost per byte against physical
// floors measured in the same run.
//
//   - Mirror against the floor. A source brokerd and a destination brokerd
//     run as child processes (this binary in the brokerd role: brokerd as
//     `strait broker` runs it, one broker each). The source topic is filled
//     once with zstd-compressed records. Then, in a rotated order each
//     round: the floor (floor.go: the source's segment files through
//     sendfile → splice relay → discarding sink, three child processes),
//     batch mode and record mode, each mode a mirror child process copying
//     the whole topic into a fresh destination topic. Throughput is the
//     source's segment bytes over the wall time; CPU-seconds per GB are
//     the processes' own user+system time (/proc/<pid>/stat for the
//     brokers and the mirror, read before and after; rusage at exit for
//     the floor's three) over the same bytes. The whole pipeline is
//     mirror + source broker + destination broker.
//   - brokerd produce cost. A franz-go producer in the bench process (bench
//     broker's settings) writes the same records to a brokerd child and a
//     null broker child (nullbroker.go); each broker's CPU time over the
//     run, per GB of record values, against the null broker's and against
//     the floor of any broker that stores what it receives: one memcpy and
//     one CRC-32C pass per byte, timed on one locked thread of this
//     process with getrusage(RUSAGE_THREAD).
//
// The harness's own work (filling the source, polling the destination,
// the producer) runs in the bench process and is in none of the counters.

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"strait/internal/cli"
	"strait/pipelines"
)

// costConfig sizes one run of bench cost.
type costConfig struct {
	records, valueBytes, partitions int
	floorMB                         int
	produceRecords, produceValue    int
	rounds, produceRounds           int
	modes                           string
	profileDir                      string
	dir                             string
	verbose                         bool
}

func newCostFlags(c *costConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.IntVar(&c.records, "records", 1_000_000, "records in the mirrored source topic (zstd-compressed by the producer)")
	fs.IntVar(&c.valueBytes, "value-bytes", 1024, "bytes per mirrored record value")
	fs.IntVar(&c.partitions, "partitions", 8, "partitions of the mirrored topic")
	fs.IntVar(&c.floorMB, "floor-mb", 1024, "MB the floor moves per run at least (the segment files are sent again until then)")
	fs.StringVar(&c.modes, "modes", "batch,record", "mirror modes to measure, comma-separated")
	fs.IntVar(&c.rounds, "rounds", 1, "rounds of floor and mirror runs, rotated (the best of each counts)")
	fs.IntVar(&c.produceRecords, "produce-records", 1_000_000, "records per produce run (0 skips the produce cost)")
	fs.IntVar(&c.produceValue, "produce-value-bytes", 1000, "bytes per produced record value")
	fs.IntVar(&c.produceRounds, "produce-rounds", 3, "produce runs per broker, rotated (the cheapest counts)")
	fs.StringVar(&c.profileDir, "profile-dir", "", "write CPU profiles of the mirror and both brokers, per mode, into this folder")
	fs.StringVar(&c.dir, "dir", "", "folder for the brokers' data (default: a temporary folder, removed afterwards)")
	fs.BoolVar(&c.verbose, "v", false, "print every run's result on stderr")
	return fs
}

// benchCost is `strait bench cost`.
func benchCost(args []string, out io.Writer) error {
	var c costConfig
	if _, err := cli.Parse(newCostFlags(&c), args, 0); err != nil {
		return err
	}
	if c.records < 1 || c.valueBytes < 1 || c.partitions < 1 || c.floorMB < 1 || c.rounds < 1 ||
		c.produceRecords < 0 || c.produceValue < 1 || c.produceRounds < 1 {
		return fmt.Errorf("%w: sizes must be positive", cli.ErrUsage)
	}
	var modes []pipelines.Mode
	for _, m := range strings.Split(c.modes, ",") {
		switch mode := pipelines.Mode(strings.TrimSpace(m)); mode {
		case pipelines.ModeBatch, pipelines.ModeRecord:
			modes = append(modes, mode)
		default:
			return fmt.Errorf("%w: --modes: %q is neither batch nor record", cli.ErrUsage, m)
		}
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "strait-bench-cost-")
		if err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		defer os.RemoveAll(d)
		c.dir = d
	}
	if c.profileDir != "" {
		if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
	}
	ctx := context.Background()
	fmt.Fprintf(out, "strait bench cost: %d CPUs; every process measured from its own CPU counters (user+system)\n", runtime.NumCPU())
	if err := mirrorCost(ctx, c, modes, out); err != nil {
		return err
	}
	if c.produceRecords > 0 {
		return produceCost(ctx, c, out)
	}
	return nil
}

// cost is one measured run: bytes over wall time, CPU time by process.
type cost struct {
	bytes int64
	wall  time.Duration
	cpu   []time.Duration // by process: the floor's three together, or mirror, source, destination
	irq   time.Duration   // interrupt time of the whole machine over the run (irqTime)
}

func (r cost) mbps() float64 { return float64(r.bytes) / 1e6 / r.wall.Seconds() }

func (r cost) totalCPU() time.Duration {
	var t time.Duration
	for _, d := range r.cpu {
		t += d
	}
	return t
}

// perGB is CPU-seconds per GB (1e9 bytes) of d.
func (r cost) perGB(d time.Duration) float64 { return d.Seconds() / (float64(r.bytes) / 1e9) }

func (r cost) cpuPerGB() float64 { return r.perGB(r.totalCPU()) }

func (c costConfig) logf(format string, args ...any) {
	if c.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// mirrorCost measures the floor and each mode and prints their table.
func mirrorCost(ctx context.Context, c costConfig, modes []pipelines.Mode, out io.Writer) error {
	const topic = "bench"
	srcDir, dstDir := filepath.Join(c.dir, "src"), filepath.Join(c.dir, "dst")
	src, err := startChild(ctx, "brokerd", []string{"--dir", srcDir, "--partitions", strconv.Itoa(c.partitions)})
	if err != nil {
		return err
	}
	defer src.stop()
	dst, err := startChild(ctx, "brokerd", []string{"--dir", dstDir, "--partitions", strconv.Itoa(c.partitions)})
	if err != nil {
		return err
	}
	defer dst.stop()
	srcAddrs := strings.Split(src.info, ",")
	if err := fillSource(ctx, srcAddrs, topic, mirrorBenchConfig{records: c.records, valueBytes: c.valueBytes, partitions: c.partitions}); err != nil {
		return fmt.Errorf("%w: fill the source: %v", errBench, err)
	}
	ends, err := endOffsetsOf(ctx, srcAddrs, topic)
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	unix.Sync()
	files, err := segmentFiles(srcDir, topic)
	if err != nil {
		return err
	}
	size, err := filesSize(files)
	if err != nil {
		return err
	}
	passes := max(1, int((int64(c.floorMB)*1e6+size-1)/size))
	fmt.Fprintf(out, "source: %d records × %d B values, zstd, %d partitions: %.0f MB of segments; brokerd source and destination, one broker each, in processes of their own\n",
		c.records, c.valueBytes, c.partitions, float64(size)/1e6)
	fmt.Fprintf(out, "floor: the segment files, %d× over, sendfile → relay (splice through a pipe) → sink (read, discard); three processes\n\n", passes)

	type contender struct {
		name string
		run  func(round int) (cost, error)
		best cost
	}
	contenders := []*contender{{name: "floor", run: func(int) (cost, error) {
		irq0, err := irqTime()
		if err != nil {
			return cost{}, err
		}
		r, err := floorRun(files, passes)
		if err != nil {
			return cost{}, err
		}
		irq1, err := irqTime()
		return cost{bytes: r.bytes, wall: r.wall, cpu: []time.Duration{r.cpu}, irq: irq1 - irq0}, err
	}}}
	for _, mode := range modes {
		contenders = append(contenders, &contender{name: string(mode), run: func(round int) (cost, error) {
			return mirrorRun(ctx, c, src, dst, topic, mode, round, ends, size)
		}})
	}
	for round := 0; round < c.rounds; round++ {
		for k := range contenders {
			ct := contenders[(round+k)%len(contenders)]
			r, err := ct.run(round)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", errBench, ct.name, err)
			}
			c.logf("round %d %s: %.0f MB/s, %.2f CPU-s/GB", round, ct.name, r.mbps(), r.cpuPerGB())
			if ct.best.bytes == 0 || r.mbps() > ct.best.mbps() {
				ct.best = r
			}
			unix.Sync()
		}
	}
	floor := contenders[0].best
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tMB/s\tvs floor\ttarget\tCPU-s/GB\tvs floor\ttarget\tmirror\tsource\tdestination\tCPUs busy\tinterrupts\t")
	fmt.Fprintf(tw, "floor\t%.0f\t1.00×\t\t%.2f\t1.00×\t\t\t\t\t%.2f\t%.2f\t\n", floor.mbps(), floor.cpuPerGB(), floor.totalCPU().Seconds()/floor.wall.Seconds(), floor.perGB(floor.irq))
	for _, ct := range contenders[1:] {
		r := ct.best
		tput, cpu := r.mbps()/floor.mbps(), r.cpuPerGB()/floor.cpuPerGB()
		tputTarget, cpuTarget := "", ""
		switch pipelines.Mode(ct.name) {
		case pipelines.ModeBatch:
			tputTarget, cpuTarget = targetMin(tput, 0.7), targetMax(cpu, 1.5)
		case pipelines.ModeRecord:
			cpuTarget = targetMax(cpu, 4)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f×\t%s\t%.2f\t%.2f×\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", ct.name, r.mbps(), tput, tputTarget,
			r.cpuPerGB(), cpu, cpuTarget, r.perGB(r.cpu[0]), r.perGB(r.cpu[1]), r.perGB(r.cpu[2]), r.totalCPU().Seconds()/r.wall.Seconds(), r.perGB(r.irq))
	}
	tw.Flush()
	fmt.Fprintf(out, "\nMB = 10^6 bytes of source segments; CPU-s/GB = CPU-seconds per 10^9 of them, whole pipeline (mirror + source + destination broker), split in the next columns;\n"+
		"interrupts: the whole machine's irq+softirq time over the run, per GB, in none of the processes' counters (loopback receive work runs there) and in no ratio; best of %d rounds by throughput\n\n", c.rounds)
	return nil
}

// irqTime is the machine's time in hard and soft interrupts so far
// (/proc/stat, every CPU). With interrupt time accounting (what the
// kernel reports there), this time is charged to no process.
func irqTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq ...
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("%w: unreadable /proc/stat", errBench)
	}
	var ticks int64
	for _, s := range f[6:8] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: /proc/stat: %v", errBench, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

func targetMin(got, want float64) string {
	if got >= want {
		return fmt.Sprintf("≥ %.1f× ok", want)
	}
	return fmt.Sprintf("≥ %.1f× MISSED", want)
}

func targetMax(got, want float64) string {
	if got <= want {
		return fmt.Sprintf("≤ %.1f× ok", want)
	}
	return fmt.Sprintf("≤ %.1f× MISSED", want)
}

// mirrorRun copies topic once with a mirror child in mode and returns its
// cost: mirror, source broker, destination broker.
func mirrorRun(ctx context.Context, c costConfig, src, dst *child, topic string, mode pipelines.Mode, round int, want map[int32]int64, size int64) (cost, error) {
	suffix := fmt.Sprintf("%s-r%d", mode, round)
	m, err := startChild(ctx, "mirror", []string{"--src", src.info, "--dst", dst.info, "--topic", topic, "--suffix", suffix,
		"--mode", string(mode), "--dir", filepath.Join(c.dir, "mirror-"+suffix)})
	if err != nil {
		return cost{}, err
	}
	defer m.kill()
	procs := []*child{m, src, dst}
	if c.profileDir != "" {
		for i, p := range procs {
			name := []string{"mirror", "source", "destination"}[i]
			if err := p.command("profile " + filepath.Join(c.profileDir, fmt.Sprintf("%s-%s.pprof", suffix, name))); err != nil {
				return cost{}, err
			}
		}
	}
	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		if before[i], err = p.cpu(); err != nil {
			return cost{}, err
		}
	}
	irq0, err := irqTime()
	if err != nil {
		return cost{}, err
	}
	start := time.Now()
	if err := m.command("run"); err != nil {
		return cost{}, err
	}
	if err := waitCopied(ctx, strings.Split(dst.info, ","), topic+"."+suffix, want); err != nil {
		return cost{}, err
	}
	r := cost{bytes: size, wall: time.Since(start), cpu: make([]time.Duration, len(procs))}
	for i, p := range procs {
		after, err := p.cpu()
		if err != nil {
			return cost{}, err
		}
		r.cpu[i] = after - before[i]
	}
	irq1, err := irqTime()
	if err != nil {
		return cost{}, err
	}
	r.irq = irq1 - irq0
	if c.profileDir != "" {
		for _, p := range procs {
			if err := p.command("unprofile"); err != nil {
				return cost{}, err
			}
		}
	}
	if err := m.stop(); err != nil {
		return cost{}, err
	}
	if err := deleteTopic(ctx, strings.Split(dst.info, ","), topic+"."+suffix); err != nil {
		return cost{}, err
	}
	return r, nil
}

// produceCost measures brokerd's and the null broker's CPU per GB
// ingested, and the memcpy+CRC-32C floor, and prints their table.
func produceCost(ctx context.Context, c costConfig, out io.Writer) error {
	floor, err := memcpyCRCFloor(1 << 30)
	if err != nil {
		return err
	}
	bd, err := startChild(ctx, "brokerd", []string{"--dir", filepath.Join(c.dir, "produce"), "--partitions", "4"})
	if err != nil {
		return err
	}
	defer bd.stop()
	null, err := startChild(ctx, "null", []string{"--partitions", "4"})
	if err != nil {
		return err
	}
	defer null.stop()
	type broker struct {
		name      string
		c         *child
		ownTopics bool
		best      cost
	}
	brokers := []*broker{{name: "brokerd", c: bd, ownTopics: true}, {name: "null broker", c: null}}
	for round := 0; round < c.produceRounds; round++ {
		for k := range brokers {
			b := brokers[(round+k)%len(brokers)]
			seeds := strings.Split(b.c.info, ",")
			topic := fmt.Sprintf("bench-produce-%d", round)
			if b.ownTopics {
				if err := createTopic(ctx, seeds, topic, 4); err != nil {
					return err
				}
			}
			cpu0, err := b.c.cpu()
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := produceRun(ctx, seeds, topic, c.produceRecords, c.produceValue); err != nil {
				return err
			}
			wall := time.Since(start)
			cpu1, err := b.c.cpu()
			if err != nil {
				return err
			}
			r := cost{bytes: int64(c.produceRecords) * int64(c.produceValue), wall: wall, cpu: []time.Duration{cpu1 - cpu0}}
			c.logf("round %d produce %s: %.0f MB/s, %.3f CPU-s/GB", round, b.name, r.mbps(), r.cpuPerGB())
			if b.best.bytes == 0 || r.cpuPerGB() < b.best.cpuPerGB() {
				b.best = r
			}
			if b.ownTopics {
				if err := deleteTopic(ctx, seeds, topic); err != nil {
					return err
				}
			}
			unix.Sync()
		}
	}
	bdCost, nullCost := brokers[0].best.cpuPerGB(), brokers[1].best.cpuPerGB()
	limit := nullCost + 2*floor
	verdict := "ok"
	if bdCost > limit {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "produce: %d records × %d B, %s, producer in the bench process; broker CPU per GB of record values, cheapest of %d runs\n",
		c.produceRecords, c.produceValue, benchProducerSettings, c.produceRounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tCPU-s/GB\tMB/s\t")
	fmt.Fprintf(tw, "memcpy + CRC-32C, one pass each\t%.3f\t\t\n", floor)
	fmt.Fprintf(tw, "null broker\t%.3f\t%.0f\t\n", nullCost, brokers[1].best.mbps())
	fmt.Fprintf(tw, "brokerd\t%.3f\t%.0f\t\n", bdCost, brokers[0].best.mbps())
	tw.Flush()
	fmt.Fprintf(out, "\nbrokerd %.3f CPU-s/GB ≤ null broker + 2 × memcpy+CRC = %.3f + 2 × %.3f = %.3f: %s (brokerd − null broker = %.2f× the memcpy+CRC floor)\n",
		bdCost, nullCost, floor, limit, verdict, (bdCost-nullCost)/floor)
	return nil
}

// memcpyCRCFloor is the CPU-seconds per GB of one copy and one CRC-32C
// pass over each byte, on one locked OS thread whose own CPU time
// (getrusage RUSAGE_THREAD) is the measure. The buffers (16 MiB) exceed
// the caches, as a broker's stream of batches does.
func memcpyCRCFloor(total int64) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const chunk = 16 << 20
	src, dst := make([]byte, chunk), make([]byte, chunk)
	rand.Read(src)
	copy(dst, src) // fault both in before the clock starts
	table := crc32.MakeTable(crc32.Castagnoli)
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
		return 0, fmt.Errorf("%w: getrusage: %v", errBench, err)
	}
	var sum uint32
	var n int64
	for ; n < total; n += chunk {
		copy(dst, src)
		sum = crc32.Update(sum, table, dst)
	}
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
		return 0, fmt.Errorf("%w: getrusage: %v", errBench, err)
	}
	runtime.KeepAlive(sum)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	return cpu.Seconds() / (float64(n) / 1e9), nil
}
