package mirror

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

func partStatus(e *Engine, topic string, part int32) (PartitionStatus, bool) {
	for _, ps := range e.Status() {
		for _, p := range ps.Partitions {
			if p.Topic == topic && p.Partition == part {
				return p, true
			}
		}
	}
	return PartitionStatus{}, false
}

// TestTransactions: with a transactional producer on the source, control
// batches and aborted data never reach the destination. The source is
// brokerd, and kfake as a second, independent implementation of
// transactions.
func TestTransactions(t *testing.T) {
	sources := []struct {
		name  string
		start func(t *testing.T) []string
	}{
		{"brokerd", func(t *testing.T) []string {
			src := startCluster(t, t.TempDir(), "", 3)
			t.Cleanup(func() { src.Close() })
			createTopic(t, client(t, src.Addrs()), "txn", 2, nil)
			return src.Addrs()
		}},
		{"kfake", func(t *testing.T) []string {
			src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "txn"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(src.Close)
			return src.ListenAddrs()
		}},
	}
	for _, source := range sources {
		for _, mode := range modes {
			t.Run(source.name+"/"+string(mode), func(t *testing.T) {
				testTransactions(t, source.start(t), mode)
			})
		}
	}
}

func testTransactions(t *testing.T, srcAddrs []string, mode pipelines.Mode) {
	dst := startCluster(t, t.TempDir(), "", 1)
	defer dst.Close()
	tx := client(t, srcAddrs, kgo.TransactionalID("tx-"+string(mode)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	var want [2][]string
	for round := 0; round < 6; round++ {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			p := int32(i % 2)
			v := fmt.Sprintf("r%d-%d", round, i)
			if err := tx.ProduceSync(ctx, &kgo.Record{Topic: "txn", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if round%2 == 0 {
				want[p] = append(want[p], v)
			}
		}
		commit := kgo.TransactionEndTry(round%2 == 0)
		if err := tx.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	// Plain records after the transactions.
	plain := client(t, srcAddrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 2; p++ {
		v := "plain-" + strconv.Itoa(int(p))
		if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "txn", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want[p] = append(want[p], v)
	}
	e, stop := runEngine(t, config(t, srcAddrs, dst.Addrs(), mode, "txn"), Options{})
	waitFor(t, 60*time.Second, "catch up", func() bool { return caughtUp(e, 2) })
	stop()
	for p := int32(0); p < 2; p++ {
		got := readAll(t, dst.Addrs(), "txn", p)
		if len(got) != len(want[p]) {
			t.Fatalf("partition %d: %d records on the destination, want %d", p, len(got), len(want[p]))
		}
		for i, r := range got {
			if string(r.Value) != want[p][i] {
				t.Fatalf("partition %d record %d: %q, want %q", p, i, r.Value, want[p][i])
			}
			if r.Attrs.IsTransactional() || r.Attrs.IsControl() {
				t.Fatalf("partition %d record %d: transactional or control on the destination", p, i)
			}
		}
	}
}

// TestDiscovery: a topic created while the mirror runs is mirrored (how
// soon: BenchmarkDiscovery); partitions added to a source topic are added on
// the destination and mirrored.
func TestDiscovery(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			admin := client(t, src.Addrs())
			createTopic(t, admin, "a", 1, nil)
			cfg := config(t, src.Addrs(), dst.Addrs(), mode, ".*")
			e, stop := runEngine(t, cfg, Options{})
			waitFor(t, 30*time.Second, "topic a running", func() bool { return caughtUp(e, 1) })

			retention := "3600000"
			createTopic(t, admin, "b", 2, map[string]*string{"retention.ms": &retention})
			produceData(t, producer(t, src.Addrs(), kgo.ZstdCompression()), "b", 2, 50, kgo.ZstdCompression())
			// How soon (in refresh intervals) is BenchmarkDiscovery's
			// question; a wall-clock bound here would flake on a busy
			// machine.
			waitFor(t, 30*time.Second, "topic b mirrored", func() bool {
				return endOffsets(t, dst.Addrs(), "b")[1] == 50 && endOffsets(t, dst.Addrs(), "b")[0] == 50
			})
			rcs, err := kadm.NewClient(client(t, dst.Addrs())).DescribeTopicConfigs(context.Background(), "b")
			if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
				t.Fatalf("describe configs: %v %v", err, rcs)
			}
			found := false
			for _, c := range rcs[0].Configs {
				if c.Key == "retention.ms" && c.MaybeValue() == retention {
					found = true
				}
			}
			if !found {
				t.Errorf("retention.ms not copied to the destination topic")
			}

			if _, err := kadm.NewClient(admin).UpdatePartitions(context.Background(), 4, "b"); err != nil {
				t.Fatal(err)
			}
			pr := producer(t, src.Addrs(), kgo.Lz4Compression())
			for p := int32(2); p < 4; p++ {
				for i := 0; i < 30; i++ {
					pr.Produce(context.Background(), &kgo.Record{Topic: "b", Partition: p, Value: []byte(strconv.Itoa(i))}, nil)
				}
			}
			if err := pr.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "new partitions mirrored", func() bool {
				ends := endOffsets(t, dst.Addrs(), "b")
				return ends[2] == 30 && ends[3] == 30
			})
			stop()
			sameTopic(t, src, dst, "b", 4)
		})
	}
}

// TestPauseResume: a paused partition copies nothing; the others go on;
// resume catches it up.
func TestPauseResume(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			createTopic(t, client(t, src.Addrs()), "p", 2, nil)
			e, stop := runEngine(t, config(t, src.Addrs(), dst.Addrs(), mode, "p"), Options{})
			waitFor(t, 30*time.Second, "tasks running", func() bool {
				_, ok0 := partStatus(e, "p", 0)
				_, ok1 := partStatus(e, "p", 1)
				return ok0 && ok1
			})
			if err := e.Pause("east-to-west", "p", 1); err != nil {
				t.Fatal(err)
			}
			if err := e.Pause("nope", "", 0); err == nil {
				t.Fatal("pausing an unknown pipeline worked")
			}
			if err := e.Pause("east-to-west", "p", 9); err == nil {
				t.Fatal("pausing an unknown partition worked")
			}
			produceData(t, producer(t, src.Addrs(), kgo.ZstdCompression()), "p", 2, 40, kgo.ZstdCompression())
			waitFor(t, 30*time.Second, "partition 0 mirrored", func() bool { return endOffsets(t, dst.Addrs(), "p")[0] == 40 })
			if s, _ := partStatus(e, "p", 1); s.State != StatePaused || s.SourceOffset != 0 {
				t.Fatalf("paused partition: %+v", s)
			}
			if n := endOffsets(t, dst.Addrs(), "p")[1]; n != 0 {
				t.Fatalf("paused partition wrote %d records", n)
			}
			if err := e.Resume("east-to-west", "p", 1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "partition 1 mirrored", func() bool { return endOffsets(t, dst.Addrs(), "p")[1] == 40 })
			// Whole-pipeline pause.
			if err := e.Pause("east-to-west", "", 0); err != nil {
				t.Fatal(err)
			}
			if st := e.Status()[0]; st.State != StatePaused {
				t.Fatalf("pipeline state %q after pause", st.State)
			}
			if err := e.Resume("east-to-west", "", 0); err != nil {
				t.Fatal(err)
			}
			stop()
			sameTopic(t, src, dst, "p", 2)
		})
	}
}

// TestGap: records deleted on the source before they were copied are
// reported (state gap, GapRecords, metric) and nothing is skipped until an
// operator resumes; then the task continues from the log start.
func TestGap(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			admin := client(t, src.Addrs())
			createTopic(t, admin, "g", 1, nil)
			cfg := config(t, src.Addrs(), dst.Addrs(), mode, "g")
			pr := producer(t, src.Addrs(), kgo.NoCompression())
			produce := func(from, to int) {
				for i := from; i < to; i++ {
					pr.Produce(context.Background(), &kgo.Record{Topic: "g", Value: []byte(strconv.Itoa(i))}, nil)
				}
				if err := pr.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			produce(0, 10)
			e, stop := runEngine(t, cfg, Options{})
			waitFor(t, 30*time.Second, "first records", func() bool { return caughtUp(e, 1) })
			stop()

			// While the mirror is down, retention (here DeleteRecords)
			// removes records it has not copied.
			produce(10, 100)
			del := kadm.Offsets{}
			del.Add(kadm.Offset{Topic: "g", Partition: 0, At: 50})
			dr, err := kadm.NewClient(admin).DeleteRecords(context.Background(), del)
			if err != nil || dr.Error() != nil {
				t.Fatal(err, dr.Error())
			}
			e, stop = runEngine(t, cfg, Options{})
			waitFor(t, 30*time.Second, "gap reported", func() bool {
				s, _ := partStatus(e, "g", 0)
				return s.State == StateGap
			})
			s, _ := partStatus(e, "g", 0)
			if s.GapRecords != 40 || s.PausedReason == "" {
				t.Fatalf("gap status: %+v", s)
			}
			if n := endOffsets(t, dst.Addrs(), "g")[0]; n != 10 {
				t.Fatalf("destination holds %d records, want 10 before resume", n)
			}
			if err := e.Resume("east-to-west", "g", 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "rest mirrored", func() bool { return endOffsets(t, dst.Addrs(), "g")[0] == 60 })
			stop()
			got := readAll(t, dst.Addrs(), "g", 0)
			if string(got[9].Value) != "9" || string(got[10].Value) != "50" || string(got[59].Value) != "99" {
				t.Fatalf("after the gap: %q %q %q", got[9].Value, got[10].Value, got[59].Value)
			}
		})
	}
}

// TestDestinationOutage: the destination cluster stops mid-stream and
// comes back on the same folder and ports; the mirror resumes by itself,
// nothing is lost or repeated, and the heap stays under the buffer limit
// plus a fixed overhead while the destination is away.
func TestDestinationOutage(t *testing.T) {
	outage := 3 * time.Second
	if os.Getenv("STRAIT_LONG") != "" {
		outage = 30 * time.Second
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src := startCluster(t, t.TempDir(), "", 1)
			defer src.Close()
			ddir := t.TempDir()
			dst := startCluster(t, ddir, "", 1)
			daddr := dst.Addrs()
			createTopic(t, client(t, src.Addrs()), "o", 2, nil)
			// bulk has enough partitions that the engine's per-partition
			// read-ahead alone could hold all of outageBytes: only the
			// pipeline's buffer limit keeps the heap down.
			createTopic(t, client(t, src.Addrs()), "bulk", bulkPartitions, nil)
			cfg := config(t, src.Addrs(), daddr, mode, "o", "bulk")
			cfg.Pipelines[0].Limits.Buffer = 4 << 20
			// Default options: an unreachable destination must not
			// auto-pause partitions, so the mirror resumes at once.
			e, stop := runEngine(t, cfg, Options{})
			pr := producer(t, src.Addrs(), kgo.ZstdCompression())
			produceData(t, pr, "o", 2, 2000, kgo.ZstdCompression())
			waitFor(t, 60*time.Second, "first half", func() bool { return caughtUp(e, 2+bulkPartitions) })

			if err := dst.Close(); err != nil {
				t.Fatal(err)
			}
			// While the destination is away the source takes far more
			// than the buffer (outageBytes of incompressible values):
			// an engine that kept fetching would hold it all, so the
			// live heap would pass the baseline by outageBytes.
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			base := heap()
			var peak uint64
			done := make(chan struct{})
			go func() {
				defer close(done)
				produceData(t, pr, "o", 2, 3000, kgo.ZstdCompression())
				produceBulk(t, src.Addrs(), "bulk", bulkPartitions, outageBytes)
			}()
			// Sample through the production and the outage, then a few
			// more rounds once the source holds everything, when an
			// unbounded engine would be fetching it.
			deadline := time.Now().Add(outage)
			after := 0
			for after < 10 {
				peak = max(peak, heap())
				time.Sleep(100 * time.Millisecond)
				select {
				case <-done:
					if time.Now().After(deadline) {
						after++
					}
				default:
				}
			}
			<-done
			dst = startCluster(t, ddir, daddr[0], 1)
			defer dst.Close()
			waitFor(t, 120*time.Second, "resume after the outage", func() bool { return caughtUp(e, 2+bulkPartitions) })
			stop()
			for p := int32(0); p < 2; p++ {
				sr, dr := readAll(t, src.Addrs(), "o", p), readAll(t, dst.Addrs(), "o", p)
				if err := sameRecords(sr, dr); err != nil {
					if len(dr) > 0 {
						t.Logf("dst first %d %q last %d %q; status %+v", dr[0].Offset, dr[0].Value[:min(10, len(dr[0].Value))], dr[len(dr)-1].Offset, dr[len(dr)-1].Value[:min(10, len(dr[len(dr)-1].Value))], e.Status())
					}
					t.Fatalf("o/%d: %v", p, err)
				}
			}
			if se, de := endOffsets(t, src.Addrs(), "bulk"), endOffsets(t, dst.Addrs(), "bulk"); fmt.Sprint(se) != fmt.Sprint(de) {
				t.Fatalf("bulk: source ends %v, destination ends %v", se, de)
			}
			// The whole test process (two clusters, clients, engine)
			// against its own baseline: the engine's share is bounded
			// by the 4 MiB buffer, the rest is the clients' and
			// brokers' working memory, well under outageBytes.
			if limit := base + uint64(cfg.Pipelines[0].Limits.Buffer) + outageBytes/2; peak > limit {
				t.Errorf("heap peaked at %d MiB during the outage (baseline %d MiB, limit %d MiB)", peak>>20, base>>20, limit>>20)
			}
			t.Logf("heap during outage: baseline %d MiB, peak %d MiB", base>>20, peak>>20)
		})
	}
}

// outageBytes is what TestDestinationOutage writes to the source while the
// destination is away, over bulkPartitions partitions.
const (
	outageBytes    = 48 << 20
	bulkPartitions = 24
)

// produceBulk writes total bytes of random, incompressible 16 KiB values
// over the partitions of topic, with a client of its own that compresses
// nothing and buffers little.
func produceBulk(t testing.TB, addrs []string, topic string, partitions int32, total int) {
	t.Helper()
	// The producer holds at most 2 MiB unacknowledged, so its own
	// buffer does not count against the engine's.
	pr := client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(2<<20))
	defer pr.Close()
	const size = 16 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < total/size; i++ {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		pr.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := pr.Flush(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestRestartNoDuplicates: the engine stops and starts again while records
// flow; its checkpoint and reconciliation give no loss and no repeat.
func TestRestartNoDuplicates(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			createTopic(t, client(t, src.Addrs()), "r", 2, nil)
			cfg := config(t, src.Addrs(), dst.Addrs(), mode, "r")
			pr := producer(t, src.Addrs(), kgo.Lz4Compression())
			for round := 0; round < 3; round++ {
				e, stop := runEngine(t, cfg, Options{})
				produceData(t, pr, "r", 2, 500, kgo.Lz4Compression())
				waitFor(t, 60*time.Second, "catch up", func() bool { return caughtUp(e, 2) })
				stop()
			}
			sameTopic(t, src, dst, "r", 2)
		})
	}
}

var _ = pipelines.ModeBatch

// TestStrictDestination: kfake validates produced batches the way Kafka does
// (a client batch must carry base offset 0), so mirroring into it in both
// modes shows the engine's raw batches are what a real Kafka accepts.
func TestStrictDestination(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src := startCluster(t, t.TempDir(), "", 1)
			defer src.Close()
			dst, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			admin := client(t, src.Addrs())
			createTopic(t, admin, "strict", 2, nil)
			// Two rounds, so later batches have a non-zero source base offset.
			pr := producer(t, src.Addrs(), kgo.Lz4Compression())
			produceData(t, pr, "strict", 2, 400, kgo.Lz4Compression())
			produceData(t, pr, "strict", 2, 400, kgo.Lz4Compression())
			e, stop := runEngine(t, config(t, src.Addrs(), dst.ListenAddrs(), mode, "strict"), Options{})
			waitFor(t, 60*time.Second, "catch up", func() bool { return caughtUp(e, 2) })
			stop()
			for p := int32(0); p < 2; p++ {
				if err := sameRecords(readAll(t, src.Addrs(), "strict", p), readAll(t, dst.ListenAddrs(), "strict", p)); err != nil {
					t.Fatalf("partition %d: %v", p, err)
				}
			}
		})
	}
}
