package mirror

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/checkpoint"
	"strait/pipelines"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCluster starts an in-process brokerd cluster in dir.
func startCluster(t testing.TB, dir, listen string, brokers int) *brokerd.Cluster {
	t.Helper()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Listen: listen, Brokers: brokers,
		MaintainInterval: 200 * time.Millisecond, GroupMinSessionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("STRAIT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// config builds a one-pipeline configuration between two clusters.
func config(t testing.TB, src, dst []string, mode pipelines.Mode, include ...string) *pipelines.Config {
	return &pipelines.Config{
		Clusters: map[string]*pipelines.Cluster{
			"east": {Name: "east", Bootstrap: src},
			"west": {Name: "west", Bootstrap: dst},
		},
		Checkpoints: pipelines.Checkpoints{Store: "file", Dir: t.TempDir(), Interval: pipelines.Duration(200 * time.Millisecond)},
		Pipelines: []*pipelines.Pipeline{{
			Name: "east-to-west", Source: "east", Destination: "west",
			Topics: pipelines.Topics{Include: include},
			Rename: "{topic}", Mode: mode,
			Sync:    pipelines.Sync{TopicConfigs: true, Partitions: true, Interval: pipelines.Duration(time.Second)},
			Limits:  pipelines.Limits{Buffer: 16 << 20},
			Refresh: pipelines.Duration(500 * time.Millisecond),
		}},
	}
}

// runEngine starts an engine and returns it with a stop function that
// waits for Run to return.
func runEngine(t testing.TB, cfg *pipelines.Config, opts Options) (*Engine, func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("Run did not return after stop")
		}
	}
	t.Cleanup(stop)
	return e, stop
}

func client(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, cl *kgo.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, -1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// produceData writes n records to every partition of topic: keys, headers,
// explicit timestamps, and every 7th record a tombstone. The compression is
// the client's: codec says which one the test means, and a client set up
// with another (or none) fails the test rather than quietly producing
// batches the test did not intend.
func produceData(t testing.TB, cl *kgo.Client, topic string, partitions int32, n int, codec kgo.CompressionCodec) {
	t.Helper()
	if got := cl.OptValue(kgo.ProducerBatchCompression); !sameCodec(got, codec) {
		t.Fatalf("produceData: client compresses with %v, the test asks for %v", got, codec)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond) // recent: retention must not delete it
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: topic, Partition: p,
				Key:       []byte("k" + strconv.Itoa(i%97)),
				Value:     []byte(fmt.Sprintf("%s/%d/%d %s", topic, p, i, bytes.Repeat([]byte{'v'}, i%50))),
				Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}},
				Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			}
			if i%7 == 6 {
				r.Value = nil
			}
			cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sameCodec reports whether a client's ProducerBatchCompression option
// value puts codec first.
func sameCodec(opt any, codec kgo.CompressionCodec) bool {
	cs, ok := opt.([]kgo.CompressionCodec)
	return ok && len(cs) > 0 && cs[0] == codec
}

func producer(t testing.TB, addrs []string, codec kgo.CompressionCodec) *kgo.Client {
	return client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(5*time.Millisecond))
}

// readAll reads a partition from its start to its current end.
func readAll(t testing.TB, addrs []string, topic string, part int32) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, addrs))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ends.Lookup(topic, part)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := starts.Lookup(topic, part)
	if e.Offset <= s.Offset {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s/%d: timed out at %d records", topic, part, len(out))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if len(out) > 0 && out[len(out)-1].Offset >= e.Offset-1 {
			return out
		}
		if fs.NumRecords() == 0 {
			// The end may be occupied by control records only.
			hw := int64(-1)
			fs.EachPartition(func(p kgo.FetchTopicPartition) { hw = p.HighWatermark })
			_ = hw
		}
	}
}

// sameRecords compares two partitions record for record: key, value,
// headers (minus the provenance header), timestamp, order.
func sameRecords(src, dst []*kgo.Record) error {
	if len(src) != len(dst) {
		return fmt.Errorf("source has %d records, destination %d", len(src), len(dst))
	}
	for i := range src {
		s, d := src[i], dst[i]
		if !bytes.Equal(s.Key, d.Key) || !bytes.Equal(s.Value, d.Value) || (s.Value == nil) != (d.Value == nil) {
			return fmt.Errorf("record %d (src offset %d, dst %d): key/value differ", i, s.Offset, d.Offset)
		}
		if !s.Timestamp.Equal(d.Timestamp) {
			return fmt.Errorf("record %d: timestamp %v != %v", i, s.Timestamp, d.Timestamp)
		}
		var dh []kgo.RecordHeader
		for _, h := range d.Headers {
			if h.Key != checkpoint.ProvenanceHeader {
				dh = append(dh, h)
			}
		}
		if len(dh) != len(s.Headers) {
			return fmt.Errorf("record %d: %d headers != %d", i, len(dh), len(s.Headers))
		}
		for j := range dh {
			if dh[j].Key != s.Headers[j].Key || !bytes.Equal(dh[j].Value, s.Headers[j].Value) {
				return fmt.Errorf("record %d: header %d differs", i, j)
			}
		}
	}
	return nil
}

// caughtUp reports whether at least want partitions run and each has
// copied up to the source end offset it last saw, and that end is the
// source's current end (so nothing produced earlier is still unseen).
func caughtUp(e *Engine, want int) bool {
	st := e.Status()
	n := 0
	for _, ps := range st {
		for _, p := range ps.Partitions {
			if p.State != StateRunning || p.SourceOffset < p.HighWatermark || p.HighWatermark != srcEnd(e, ps.Name, p.Topic, p.Partition) {
				return false
			}
			n++
		}
	}
	return n >= want
}

// srcEnd lists a partition's end offset on the pipeline's source.
func srcEnd(e *Engine, pipeline, topic string, part int32) int64 {
	r := e.run(pipeline)
	if r == nil {
		return -1
	}
	o, err := listOffset(context.Background(), r.p.sadm, topic, part, -1)
	if err != nil {
		return -1
	}
	return o
}

func tp(topic string, part int32) checkpoint.TP { return checkpoint.TP{Topic: topic, Partition: part} }

func endOffsets(t testing.TB, addrs []string, topic string) map[int32]int64 {
	lo, err := kadm.NewClient(client(t, addrs)).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// clusterPair starts a source and a destination cluster, closed when the
// test ends (after the engine runEngine started, whose stop is registered
// later and so runs first).
func clusterPair(t testing.TB) (src, dst *brokerd.Cluster) {
	t.Helper()
	src = startCluster(t, t.TempDir(), "", 1)
	t.Cleanup(func() { src.Close() })
	dst = startCluster(t, t.TempDir(), "", 1)
	t.Cleanup(func() { dst.Close() })
	return src, dst
}

// sameTopic fails the test unless partitions 0..parts-1 of topic hold the
// same records on both clusters.
func sameTopic(t testing.TB, src, dst *brokerd.Cluster, topic string, parts int32) {
	t.Helper()
	for p := int32(0); p < parts; p++ {
		if err := sameRecords(readAll(t, src.Addrs(), topic, p), readAll(t, dst.Addrs(), topic, p)); err != nil {
			t.Fatalf("%s/%d: %v", topic, p, err)
		}
	}
}
