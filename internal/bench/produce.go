package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/internal/cli"
)

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

// ChildEnv marks a process started by the bench as its producer, so a
// test binary standing in for strait-bench knows to run Main.
const ChildEnv = "STRAIT_BENCH_CHILD"

// produceChild runs one produce measurement in a `strait bench producer`
// child (the running strait-bench binary, re-executed) with procs CPUs and
// returns the MB/s it reports.
func produceChild(ctx context.Context, seeds []string, topic string, n, valueBytes, procs int) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("%w: find the strait-bench binary: %v", errBench, err)
	}
	cmd := exec.CommandContext(ctx, exe, "producer", "--seeds", strings.Join(seeds, ","), "--topic", topic,
		"--records", strconv.Itoa(n), "--value-bytes", strconv.Itoa(valueBytes))
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs), ChildEnv+"=1")
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

// producerFlags are bench producer's flags.
type producerFlags struct {
	seeds, topic        string
	records, valueBytes int
}

func newProducerFlags(f *producerFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	fs.StringVar(&f.seeds, "seeds", "", "bootstrap addresses, comma-separated (required)")
	fs.StringVar(&f.topic, "topic", "", "topic to write, which must exist (required)")
	fs.IntVar(&f.records, "records", 1_000_000, "records to write")
	fs.IntVar(&f.valueBytes, "value-bytes", 1000, "bytes per record value")
	return fs
}

// benchProducer is `strait bench producer`: one produce run with the
// bench's producer settings against any cluster, printing "<rate> MB/s".
// bench broker runs it as its load generator; it works against any Kafka
// cluster and an existing topic.
func benchProducer(args []string, out io.Writer) error {
	var f producerFlags
	if _, err := cli.Parse(newProducerFlags(&f), args, 0); err != nil {
		return err
	}
	if f.seeds == "" || f.topic == "" || f.records < 1 || f.valueBytes < 1 {
		return fmt.Errorf("%w: bench producer needs --seeds, --topic and positive sizes", cli.ErrUsage)
	}
	mbps, err := produceRun(context.Background(), strings.Split(f.seeds, ","), f.topic, f.records, f.valueBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%.1f MB/s\n", mbps)
	return nil
}
