package brokerd

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A produce request large enough to append its partitions concurrently
// (four partitions of 50 KB records, lingering so each request carries all
// of them) stores every record once, in order, with contiguous offsets.
func TestProduceLargeRequestManyPartitions(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c, kgo.ProducerLinger(50*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	createTopic(t, cl, "wide", 4, nil)
	ctx := context.Background()
	const perPartition = 40
	value := func(p, i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%d-%d,", p, i)), 50_000/8) }
	for round := 0; round < 2; round++ {
		var recs []*kgo.Record
		for i := 0; i < perPartition/2; i++ {
			for p := 0; p < 4; p++ {
				recs = append(recs, &kgo.Record{Topic: "wide", Partition: int32(p), Value: value(p, round*perPartition/2+i)})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := newClient(t, c, kgo.ConsumeTopics("wide"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for got := 0; got < 4*perPartition; {
		fs := cons.PollFetches(cctx)
		if err := cctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, 4*perPartition, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			if !bytes.Equal(r.Value, value(int(r.Partition), int(r.Offset))) {
				t.Fatalf("partition %d offset %d: value altered", r.Partition, r.Offset)
			}
			next[r.Partition]++
			got++
		})
	}
}
