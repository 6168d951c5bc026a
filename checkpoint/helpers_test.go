package checkpoint

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newKfake starts a kfake cluster and returns a plain client of it: a
// second, independent implementation of the protocol beside brokerd, and
// one whose compaction a test can run on demand.
func newKfake(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, newClient(t, c.ListenAddrs())
}

// newBrokerd starts an embedded brokerd cluster of one broker (with
// transactions: a source with control records and aborted data).
func newBrokerd(t *testing.T) (*brokerd.Cluster, *kgo.Client) {
	t.Helper()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, newClient(t, c.Addrs())
}

func newClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeAll reads topic[partition] from offset from to its high
// watermark, committed records only.
func consumeAll(t *testing.T, seeds []string, topic string, partition int32, from int64) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	cl := newClient(t, seeds,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, partition)
	var out []*kgo.Record
	next := from
	for next < end.Offset {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if idle {
			t.Fatalf("consuming %s[%d]: stuck at %d of %d", topic, partition, next, end.Offset)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= next {
				next = r.Offset + 1
			}
			if !r.Attrs.IsControl() && r.Offset < end.Offset {
				out = append(out, r)
			}
		})
	}
	return out
}

// recBase is recent, so that no retention policy removes test records.
var recBase = time.Now().Truncate(time.Second)

func rec(topic string, partition int32, i int) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: partition,
		Key:       fmt.Appendf(nil, "k%d", i%7),
		Value:     fmt.Appendf(nil, "value-%d", i),
		Timestamp: recBase.Add(time.Duration(i) * time.Millisecond),
		Headers:   []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
	}
}
