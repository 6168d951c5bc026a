package bench

// strait bench mirror: mirror throughput of batch mode, record mode and a
// plain franz-go consume-and-produce loop written the obvious way, on
// zstd-compressed 1 KiB records, from one run on two embedded brokerd
// clusters, printed as ratios; then end-to-end latency (produce at the
// source to readable at the destination) at a fixed moderate rate.
//
// Each contender copies the same source topic into its own destination
// topic; a run ends when every destination partition holds as many records
// as its source partition (for the engine: when every task's position,
// which only passes acknowledged records, reaches the source end; the
// destination is checked after). The source is written once, up front.
// Contenders run in rotated order for --rounds rounds and the best round of
// each counts, since the machine is shared. Record mode runs twice: with
// producer.compression's default (none) and with snappy, the plain loop's
// codec. The latency run skips its first second (connections, producer
// ids) and also reports the source producer's own ack latency, which the
// end-to-end figure includes.

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/internal/cli"
	"strait/mirror"
	"strait/pipelines"
)

type mirrorBenchConfig struct {
	records     int
	valueBytes  int
	partitions  int
	rate        int
	latencyTime time.Duration
	dir         string
	cpuprofile  string
	rounds      int
}

func newMirrorFlags(bc *mirrorBenchConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	fs.IntVar(&bc.records, "records", 200_000, "records in the source topic")
	fs.IntVar(&bc.valueBytes, "value-bytes", 1024, "bytes per record value")
	fs.IntVar(&bc.partitions, "partitions", 8, "source partitions")
	fs.IntVar(&bc.rate, "rate", 2000, "records per second for the latency run")
	fs.DurationVar(&bc.latencyTime, "latency-time", 5*time.Second, "length of each latency run")
	fs.StringVar(&bc.dir, "dir", "", "folder for the clusters' data (default: a temporary folder)")
	fs.StringVar(&bc.cpuprofile, "cpuprofile", "", "write a CPU profile of the strait runs to this file")
	fs.IntVar(&bc.rounds, "rounds", 3, "rounds; each contender's best round counts")
	return fs
}

// benchMirror is `strait bench mirror`.
func benchMirror(args []string, out io.Writer) error {
	var bc mirrorBenchConfig
	if _, err := cli.Parse(newMirrorFlags(&bc), args, 0); err != nil {
		return err
	}
	if bc.records <= 0 || bc.valueBytes <= 0 || bc.partitions <= 0 || bc.rate <= 0 || bc.rounds <= 0 {
		return fmt.Errorf("%w: sizes must be positive", cli.ErrUsage)
	}
	return runMirrorBench(bc, out)
}

func runMirrorBench(bc mirrorBenchConfig, out io.Writer) error {
	dir := bc.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "strait-bench-mirror-")
		if err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx := context.Background()
	src, err := brokerd.Start(ctx, brokerd.Config{Dir: dir + "/src", Brokers: 1})
	if err != nil {
		return fmt.Errorf("%w: source cluster: %v", errBench, err)
	}
	defer src.Close()
	dst, err := brokerd.Start(ctx, brokerd.Config{Dir: dir + "/dst", Brokers: 1})
	if err != nil {
		return fmt.Errorf("%w: destination cluster: %v", errBench, err)
	}
	defer dst.Close()

	fmt.Fprintf(out, "strait bench mirror: %d records × %d B values, zstd by the producer, %d partitions, two 1-broker brokerd clusters\n",
		bc.records, bc.valueBytes, bc.partitions)
	if err := fillSource(ctx, src.Addrs(), "bench", bc); err != nil {
		return err
	}

	names := []string{"plain loop (franz-go defaults)", "plain loop (zstd producer)", "strait batch mode",
		"strait record mode", "strait record mode (snappy)"}
	best := make([]time.Duration, len(names))
	ends, err := endOffsetsOf(ctx, src.Addrs(), "bench")
	if err != nil {
		return err
	}
	if bc.cpuprofile != "" {
		f, err := os.Create(bc.cpuprofile)
		if err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("%w: %v", errBench, err)
		}
		defer pprof.StopCPUProfile()
	}
	// Rounds rotate the order, so a burst of load from elsewhere on the
	// machine does not always hit the same contender; the best counts.
	for round := 0; round < bc.rounds; round++ {
		for k := range names {
			i := (k + round) % len(names)
			start := time.Now()
			var took time.Duration
			stop := func() { took = time.Since(start) }
			suffix := fmt.Sprintf("c%d-r%d", i, round)
			var err error
			switch i {
			case 0:
				err = plainLoop(ctx, src.Addrs(), dst.Addrs(), "bench", "bench."+suffix, ends, nil)
				stop()
			case 1:
				err = plainLoop(ctx, src.Addrs(), dst.Addrs(), "bench", "bench."+suffix, ends, []kgo.Opt{kgo.ProducerBatchCompression(kgo.ZstdCompression())})
				stop()
			case 2:
				err = engineCopy(ctx, src.Addrs(), dst.Addrs(), "bench", suffix, pipelines.ModeBatch, "none", ends, dir, stop)
			case 3:
				err = engineCopy(ctx, src.Addrs(), dst.Addrs(), "bench", suffix, pipelines.ModeRecord, "none", ends, dir, stop)
			case 4:
				err = engineCopy(ctx, src.Addrs(), dst.Addrs(), "bench", suffix, pipelines.ModeRecord, "snappy", ends, dir, stop)
			}
			if err != nil {
				return fmt.Errorf("%w: %s: %v", errBench, names[i], err)
			}
			if best[i] == 0 || took < best[i] {
				best[i] = took
			}
			// Drop this copy so the disk holds at most one at a time.
			if err := deleteTopic(ctx, dst.Addrs(), "bench."+suffix); err != nil {
				return err
			}
		}
	}
	type result struct {
		name string
		took time.Duration
	}
	var results []result
	for i, n := range names {
		results = append(results, result{n, best[i]})
	}
	base := results[0].took
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\trecords/s\tMiB/s (values)\tvs plain loop (defaults)\t")
	for _, r := range results {
		secs := r.took.Seconds()
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f×\t\n", r.name, float64(bc.records)/secs,
			float64(bc.records*bc.valueBytes)/(1<<20)/secs, base.Seconds()/secs)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nbest of %d rounds; targets: batch ≥ 3× the plain loop, record ≥ 1×\n", bc.rounds)

	fmt.Fprintf(out, "\nend-to-end latency at %d records/s for %v (produce at source → readable at destination):\n", bc.rate, bc.latencyTime)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\trecords\tp50\tp99\tmax\tsource produce ack p99\t")
	for _, mode := range []pipelines.Mode{pipelines.ModeBatch, pipelines.ModeRecord} {
		lat, acks, err := latencyRun(ctx, src.Addrs(), dst.Addrs(), "lat-"+string(mode), mode, bc, dir)
		if err != nil {
			return fmt.Errorf("%w: latency %s: %v", errBench, mode, err)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
		sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
		ackP99 := time.Duration(0)
		if len(acks) > 0 {
			ackP99 = acks[min(len(acks)-1, int(0.99*float64(len(acks))))]
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\t%v\t\n", mode, len(lat), q(0.50).Round(10*time.Microsecond),
			q(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), ackP99.Round(10*time.Microsecond))
	}
	tw.Flush()
	return nil
}

// benchValue is text-like (words from a small vocabulary), so zstd shrinks
// it roughly as it would real payloads.
func benchValue(rng *rand.Rand, n int) []byte {
	words := []string{"order", "payment", "customer", "shipped", "pending", "amount", "currency", "EUR", "USD",
		"warehouse", "berlin", "lisbon", "status", "created", "updated", "id", "true", "false", "null", "sku"}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[rng.Intn(len(words))]...)
		b = append(b, ' ')
		b = binary.AppendUvarint(b, uint64(rng.Intn(100000)))
	}
	return b[:n]
}

func fillSource(ctx context.Context, addrs []string, topic string, bc mirrorBenchConfig) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, int32(bc.partitions), -1, nil, topic); err != nil || r.Err != nil {
		return fmt.Errorf("%w: create %s: %v %v", errBench, topic, err, r.Err)
	}
	rng := rand.New(rand.NewSource(1))
	var failed error
	for i := 0; i < bc.records; i++ {
		r := &kgo.Record{Topic: topic, Partition: int32(i % bc.partitions),
			Key:     []byte(fmt.Sprintf("key-%d", i%10000)),
			Value:   benchValue(rng, bc.valueBytes),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprint(i))}}}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	return nil
}

func endOffsetsOf(ctx context.Context, addrs []string, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// waitCopied polls the destination until topic holds want per partition.
func waitCopied(ctx context.Context, addrs []string, topic string, want map[int32]int64) error {
	// A short metadata age, or the client would hold on to "no such
	// topic" for its default 5 s when polling starts before the topic is
	// created (bench cost polls from the mirror's start).
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			done := true
			for p, n := range want {
				o, ok := lo.Lookup(topic, p)
				if !ok || o.Err != nil || o.Offset < n {
					done = false
					break
				}
			}
			if done {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("destination %s did not catch up", topic)
}

// plainLoop is the baseline: consume the source topic with franz-go and
// produce every record to the same partition of the destination topic.
func plainLoop(ctx context.Context, srcAddrs, dstAddrs []string, topic, dest string, want map[int32]int64, popts []kgo.Opt) error {
	cons, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(dstAddrs...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, popts...)...)
	if err != nil {
		return err
	}
	defer prod.Close()
	if r, err := kadm.NewClient(prod).CreateTopic(ctx, int32(len(want)), -1, nil, dest); err != nil || r.Err != nil {
		return fmt.Errorf("create %s: %v %v", dest, err, r.Err)
	}
	var total, copied int64
	for _, n := range want {
		total += n
	}
	var failed error
	for copied < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			copied++
			prod.Produce(ctx, &kgo.Record{Topic: dest, Partition: r.Partition, Key: r.Key, Value: r.Value,
				Headers: r.Headers, Timestamp: r.Timestamp}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed = err
				}
			})
		})
	}
	if err := prod.Flush(ctx); err != nil {
		return err
	}
	return failed
}

func benchPipelineConfig(srcAddrs, dstAddrs []string, topic, suffix string, mode pipelines.Mode, dir, compression string) *pipelines.Config {
	return &pipelines.Config{
		Clusters: map[string]*pipelines.Cluster{
			"src": {Name: "src", Bootstrap: srcAddrs},
			"dst": {Name: "dst", Bootstrap: dstAddrs},
		},
		Checkpoints: pipelines.Checkpoints{Store: "file", Dir: dir + "/ckpt-" + suffix, Interval: pipelines.Duration(time.Second)},
		Pipelines: []*pipelines.Pipeline{{
			Name: "bench-" + suffix, Source: "src", Destination: "dst",
			Topics: pipelines.Topics{Include: []string{strings.ReplaceAll(topic, ".", `\.`)}},
			Rename: "{topic}." + suffix, Mode: mode,
			Sync: pipelines.Sync{Partitions: true, Interval: pipelines.Duration(5 * time.Second)},
			// producer.compression's default (none); record mode also
			// runs with snappy, franz-go's default that the plain loop
			// uses. Batch mode never recompresses.
			Producer: pipelines.Producer{Acks: "all", BatchSize: 1 << 20, Compression: compression},
			Limits:   pipelines.Limits{Buffer: 64 << 20},
			Refresh:  pipelines.Duration(time.Second),
		}},
	}
}

// engineCopy runs the mirror engine until it has copied every record: a
// task's source position only passes records the destination acknowledged.
func engineCopy(ctx context.Context, srcAddrs, dstAddrs []string, topic, suffix string, mode pipelines.Mode, compression string, want map[int32]int64, dir string, stop func()) error {
	e, err := mirror.New(benchPipelineConfig(srcAddrs, dstAddrs, topic, suffix, mode, dir, compression), mirror.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(rctx) }()
	err = fmt.Errorf("engine did not catch up")
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got := map[int32]int64{}
		for _, ps := range e.Status() {
			for _, p := range ps.Partitions {
				got[p.Partition] = p.SourceOffset
			}
		}
		caught := true
		for p, n := range want {
			if got[p] < n {
				caught = false
			}
		}
		if caught {
			stop() // timing ends here; the clean stop is not part of it
			err = nil
			break
		}
	}
	cancel()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err == nil {
		// Confirm on the destination itself.
		err = waitCopied(ctx, dstAddrs, topic+"."+suffix, want)
	}
	return err
}

// latencyRun mirrors a fresh topic while a producer writes at a fixed rate
// (each value carries its send time) and a destination consumer measures
// how long each record took to become readable there.
// The second result is the source producer's own acknowledgement latency,
// part of the end-to-end figure.
func latencyRun(ctx context.Context, srcAddrs, dstAddrs []string, topic string, mode pipelines.Mode, bc mirrorBenchConfig, dir string) ([]time.Duration, []time.Duration, error) {
	prod, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...), kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(0))
	if err != nil {
		return nil, nil, err
	}
	defer prod.Close()
	if r, err := kadm.NewClient(prod).CreateTopic(ctx, int32(bc.partitions), -1, nil, topic); err != nil || r.Err != nil {
		return nil, nil, fmt.Errorf("create %s: %v %v", topic, err, r.Err)
	}
	e, err := mirror.New(benchPipelineConfig(srcAddrs, dstAddrs, topic, "m", mode, dir+"/lat-"+string(mode), "none"), mirror.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(rctx) }()
	defer func() { cancel(); <-done }()
	// Wait until the engine runs every partition of the topic.
	for deadline := time.Now().Add(time.Minute); ; {
		n := 0
		for _, ps := range e.Status() {
			for _, p := range ps.Partitions {
				if p.State == "running" {
					n++
				}
			}
		}
		if n == bc.partitions {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("engine did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...), kgo.ConsumeTopics(topic+".m"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	defer cons.Close()
	// The first second warms up (connections, producer ids, the first
	// appends to each partition) and is not counted.
	const warmup = time.Second
	measureFrom := time.Now().Add(warmup)
	total := int(float64(bc.rate) * (bc.latencyTime + warmup).Seconds())
	var ackMu sync.Mutex
	var acks []time.Duration
	go func() {
		rng := rand.New(rand.NewSource(2))
		tick := time.NewTicker(time.Second / time.Duration(bc.rate))
		defer tick.Stop()
		for i := 0; i < total; i++ {
			<-tick.C
			v := benchValue(rng, bc.valueBytes)
			sent := time.Now()
			binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
			prod.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
				if err == nil && sent.After(measureFrom) {
					ackMu.Lock()
					acks = append(acks, time.Since(sent))
					ackMu.Unlock()
				}
			})
		}
	}()
	lat := make([]time.Duration, 0, total)
	cctx, ccancel := context.WithTimeout(ctx, bc.latencyTime+time.Minute)
	defer ccancel()
	for seen := 0; seen < total; {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			return nil, nil, fmt.Errorf("received %d of %d records", seen, total)
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			if len(r.Value) >= 8 {
				if sent := time.Unix(0, int64(binary.BigEndian.Uint64(r.Value))); sent.After(measureFrom) {
					lat = append(lat, now.Sub(sent))
				}
			}
		})
	}
	ackMu.Lock()
	defer ackMu.Unlock()
	return lat, acks, nil
}
