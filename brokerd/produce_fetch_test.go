package brokerd

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func createTopic(t testing.TB, cl *kgo.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func TestMetadataLeadersSpread(t *testing.T) {
	c := startCluster(t, Config{Brokers: 3})
	cl := newClient(t, c)
	createTopic(t, cl, "spread", 6, nil)
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(context.Background(), "spread")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("%d brokers, want 3", len(md.Brokers))
	}
	if md.Cluster != c.ClusterID() || md.Cluster == "" {
		t.Fatalf("cluster id %q, want %q", md.Cluster, c.ClusterID())
	}
	perLeader := map[int32]int{}
	for _, p := range md.Topics["spread"].Partitions {
		perLeader[p.Leader]++
		if len(p.Replicas) != 1 || p.Replicas[0] != p.Leader {
			t.Fatalf("partition %d replicas %v", p.Partition, p.Replicas)
		}
	}
	for id := int32(0); id < 3; id++ {
		if perLeader[id] != 2 {
			t.Fatalf("leaders %v: want 2 partitions per broker", perLeader)
		}
	}
	// Unknown topics: an error without auto-creation.
	md, err = adm.Metadata(context.Background(), "nope")
	if err != nil {
		t.Fatal(err)
	}
	if md.Topics["nope"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("unknown topic: %v", md.Topics["nope"].Err)
	}
}

func TestAutoCreate(t *testing.T) {
	c := startCluster(t, Config{Brokers: 2, AutoCreateTopics: true, Partitions: 4})
	cl := newClient(t, c, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.topicPartitions("auto")); n != 4 {
		t.Fatalf("%d partitions, want 4", n)
	}
}

// roundTripCount is the produce/consume size; STRAIT_FULL=1 runs the
// acceptance size of 1,000,000.
func roundTripCount() int {
	if os.Getenv("STRAIT_FULL") != "" {
		return 1_000_000
	}
	return 60_000
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	for _, copyPath := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy=%v", copyPath), func(t *testing.T) {
			n := roundTripCount()
			if copyPath {
				n /= 4
			}
			c := startCluster(t, Config{Brokers: 3, CopyFetch: copyPath})
			cl := newClient(t, c, kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			createTopic(t, cl, "rt", 12, nil)
			base := time.UnixMilli(1_700_000_000_000)
			ctx := context.Background()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var perr error
			for i := 0; i < n; i++ {
				r := &kgo.Record{
					Topic:     "rt",
					Partition: int32(i % 12),
					Key:       []byte("k" + strconv.Itoa(i)),
					Value:     []byte(fmt.Sprintf("value-%d", i)),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i * 7))}},
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				wg.Add(1)
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						mu.Lock()
						perr = err
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if perr != nil {
				t.Fatal(perr)
			}

			cons := newClient(t, c, kgo.ConsumeTopics("rt"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			seen := make([]bool, n)
			next := map[int32]int64{}
			got := 0
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			for got < n {
				fs := cons.PollFetches(cctx)
				if err := cctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d: %v", got, n, err)
				}
				fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
				fs.EachRecord(func(r *kgo.Record) {
					i, err := strconv.Atoi(string(r.Key[1:]))
					if err != nil || i < 0 || i >= n || seen[i] {
						t.Fatalf("bad or repeated key %q", r.Key)
					}
					seen[i] = true
					got++
					if r.Partition != int32(i%12) || string(r.Value) != fmt.Sprintf("value-%d", i) ||
						len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != strconv.Itoa(i*7) ||
						!r.Timestamp.Equal(base.Add(time.Duration(i)*time.Millisecond)) {
						t.Fatalf("record %d altered: %+v", i, r)
					}
					if r.Offset != next[r.Partition] {
						t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
					}
					next[r.Partition]++
				})
			}
			st := c.Stats()
			if copyPath {
				if st.SendfileBytes != 0 || st.CopyBytes == 0 {
					t.Fatalf("copy path used sendfile: %+v", st)
				}
			} else if st.SendfileBytes == 0 || st.CopyBytes != 0 {
				t.Fatalf("sendfile path not used: %+v", st)
			}
			t.Logf("stats %+v", st)
		})
	}
}

// Every version served decodes with kmsg, on both paths, including the
// KIP-74 rule that the first batch comes back even above MaxBytes.
func TestFetchEncodingAllVersions(t *testing.T) {
	for _, copyPath := range []bool{false, true} {
		c := startCluster(t, Config{Brokers: 1, CopyFetch: copyPath})
		cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		createTopic(t, cl, "enc", 2, nil)
		var rs []*kgo.Record
		for i := 0; i < 50; i++ {
			rs = append(rs, &kgo.Record{Topic: "enc", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("v%03d", i))})
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		rc := dialRaw(t, c.Addrs()[0])
		for v := int16(4); v <= 12; v++ {
			for _, maxBytes := range []int32{1, 1 << 20} {
				req := kmsg.NewPtrFetchRequest()
				req.Version = v
				req.MaxBytes = maxBytes
				req.MaxWaitMillis = 0
				req.ReplicaID = -1
				for _, topic := range []string{"enc", "missing"} {
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic = topic
					for p := int32(0); p < 2; p++ {
						rp := kmsg.NewFetchRequestTopicPartition()
						rp.Partition = p
						rp.PartitionMaxBytes = 1 << 20
						rt.Partitions = append(rt.Partitions, rp)
					}
					req.Topics = append(req.Topics, rt)
				}
				resp := rc.roundTrip(req).(*kmsg.FetchResponse)
				if len(resp.Topics) != 2 || resp.Topics[0].Topic != "enc" || resp.Topics[1].Topic != "missing" {
					t.Fatalf("v%d: topics %+v", v, resp.Topics)
				}
				var records int
				for _, p := range resp.Topics[0].Partitions {
					if p.ErrorCode != 0 || p.HighWatermark != 25 {
						t.Fatalf("v%d: partition %d error %d hw %d", v, p.Partition, p.ErrorCode, p.HighWatermark)
					}
					fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "enc", Partition: p.Partition, KeepControlRecords: true}, &p, kgo.DefaultDecompressor(), nil)
					if fp.Err != nil {
						t.Fatalf("v%d: %v", v, fp.Err)
					}
					records += len(fp.Records)
				}
				if maxBytes > 1 && records != 50 {
					t.Fatalf("v%d: %d records, want 50", v, records)
				}
				if maxBytes == 1 && records == 0 {
					t.Fatalf("v%d: MaxBytes 1 returned nothing; KIP-74 wants the first batch", v)
				}
				for _, p := range resp.Topics[1].Partitions {
					if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
						t.Fatalf("v%d: missing topic error %d", v, p.ErrorCode)
					}
				}
			}
		}
	}
}

func TestLongPollWakesOnAppend(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "poll", 1, nil)
	rc := dialRaw(t, c.Addrs()[0])
	req := fetchOne(12, "poll", 30_000, 1, 1<<20)

	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- rc.roundTrip(req).(*kmsg.FetchResponse) }()
	// Nothing to return yet: the fetch must still be waiting.
	select {
	case r := <-done:
		t.Fatalf("fetch answered before any append: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "poll", Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		p := r.Topics[0].Partitions[0]
		if p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
			t.Fatalf("woken fetch: hw %d, %d bytes", p.HighWatermark, len(p.RecordBatches))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll not woken by the append")
	}
}

// MaxWaitMillis ends an empty poll with an empty answer.
func TestLongPollTimesOut(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "idle", 1, nil)
	rc := dialRaw(t, c.Addrs()[0])
	req := fetchOne(11, "idle", 100, 1, 1<<20)
	r := rc.roundTrip(req).(*kmsg.FetchResponse)
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("idle fetch: %+v", p)
	}
}

func TestNotLeader(t *testing.T) {
	c := startCluster(t, Config{Brokers: 2})
	cl := newClient(t, c)
	createTopic(t, cl, "lead", 2, nil)
	p := c.topicPartitions("lead")[0]
	other := c.Addrs()[1-p.leader]
	rc := dialRaw(t, other)
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lead"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r := rc.roundTrip(req).(*kmsg.ListOffsetsResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("error %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
}

// A fetch waits until MinBytes are there, not just any byte.
func TestLongPollMinBytes(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "minb", 1, nil)
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "minb", Value: []byte("small")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, c.Addrs()[0])
	req := fetchOne(12, "minb", 30_000, 5000, 1<<20)
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- rc.roundTrip(req).(*kmsg.FetchResponse) }()
	select {
	case r := <-done:
		t.Fatalf("answered below MinBytes: %+v", r.Topics[0].Partitions[0].HighWatermark)
	case <-time.After(300 * time.Millisecond):
	}
	big := make([]byte, 6000)
	rand.Read(big) // incompressible, so the batch really is large
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "minb", Value: big}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if p := r.Topics[0].Partitions[0]; p.HighWatermark != 2 || len(p.RecordBatches) < 6000 {
			t.Fatalf("hw %d, %d bytes", p.HighWatermark, len(p.RecordBatches))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("MinBytes fetch not woken")
	}
}

// fetchOne is a Fetch request of the given version for partition 0 of
// topic, maxBytes for the request and the partition.
func fetchOne(version int16, topic string, maxWaitMillis, minBytes, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = maxWaitMillis
	req.MinBytes = minBytes
	req.MaxBytes = maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
