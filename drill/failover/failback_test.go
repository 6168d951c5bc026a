package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// startCycle starts east and west with a forward pipeline ew and its
// reverse we, both loop-protected, in mode.
func startCycle(t *testing.T, mode string) *pair {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	east, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "east"), Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = east.Close() })
	west, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "west"), Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = west.Close() })
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: kafka, interval: 200ms}
pipelines:
  - name: ew
    source: east
    destination: west
    topics: {include: [%q]}
    mode: %s
    refresh: 500ms
    loop_protection: true
  - name: we
    source: west
    destination: east
    topics: {include: [%q]}
    mode: %s
    refresh: 500ms
    loop_protection: true
`, east.Addrs()[0], west.Addrs()[0], topic, mode, topic, mode)
	path := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{east: east, west: west, cfg: cfg}
}

// produceTo writes values to topic on a cluster, alternating partitions.
func produceTo(t *testing.T, addrs []string, values ...string) {
	t.Helper()
	cl := client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// contents reads every value of topic on a cluster, per partition.
func contents(t *testing.T, addrs []string, tpc string) map[int32][]string {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(client(t, addrs))
	ends, err := adm.ListEndOffsets(ctx, tpc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]string{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		cl := client(t, addrs, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tpc: {o.Partition: kgo.NewOffset().AtStart()}}))
		for int64(len(out[o.Partition])) < o.Offset {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { out[o.Partition] = append(out[o.Partition], string(r.Value)) })
		}
	})
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ends(t *testing.T, addrs []string) map[int32]int64 {
	t.Helper()
	l, err := kadm.NewClient(client(t, addrs)).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestFailback: east is mirrored to west, the mirror stops (the failover),
// east acknowledges a tail the mirror never copied, west takes writes of
// its own. A dry run changes nothing; failback copies the tail once (a
// second run copies nothing); the reverse pipeline then brings east up to
// date without echoing anything back and forth.
func TestFailback(t *testing.T) {
	for _, mode := range []string{"batch", "record"} {
		t.Run(mode, func(t *testing.T) {
			p := startCycle(t, mode)
			ctx := context.Background()
			seed(t, p, 40)
			// Only the forward pipeline runs before the failover: a
			// paused reverse pipeline brought along would resolve its
			// start (and checkpoint it) whenever its discovery got there,
			// and failback keeps a reverse checkpoint that exists.
			w, err := StartEngine(ctx, forwardOnly(p.cfg), "ew", nil)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the mirror to copy the seed", func() bool {
				e := ends(t, p.west.Addrs())
				return e[0] == 20 && e[1] == 20
			})
			if err := w.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			produceTo(t, p.east.Addrs(), "tail0", "tail1", "tail2", "tail3", "tail4", "tail5")
			produceTo(t, p.west.Addrs(), "west0", "west1", "west2", "west3")

			eastBefore, westBefore := snapshot(t, p.east.Addrs()), snapshot(t, p.west.Addrs())
			rep, err := Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew", DryRun: true})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if a, b := snapshot(t, p.east.Addrs()), snapshot(t, p.west.Addrs()); a != eastBefore || b != westBefore {
				t.Fatalf("dry run changed the clusters:\n%s\n---\n%s\n=== west before\n%s\n--- after\n%s", eastBefore, a, westBefore, b)
			}
			if rep.Copied != 6 || rep.Reverse != "we" || len(rep.Partition) != 2 {
				t.Fatalf("dry run report %+v", rep)
			}
			for _, part := range rep.Partition {
				if part.Mirrored != 20 || part.SourceEnd != 23 || part.Divergent != 3 || part.ReverseAction != "would-seed" || part.ReverseFrom != 20 {
					t.Errorf("dry run partition %+v", part)
				}
			}

			rep, err = Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew"})
			if err != nil {
				t.Fatalf("failback: %v (%+v)", err, rep)
			}
			if rep.Copied != 6 {
				t.Fatalf("copied %d, want 6: %+v", rep.Copied, rep)
			}
			for _, part := range rep.Partition {
				if part.ReverseAction != "seeded" || part.ReverseFrom != 20 {
					t.Errorf("partition %+v", part)
				}
			}
			again, err := Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew"})
			if err != nil || again.Copied != 0 {
				t.Fatalf("second failback copied %d: %v", again.Copied, err)
			}
			for _, part := range again.Partition {
				if part.ReverseAction != "kept" {
					t.Errorf("second run partition %+v", part)
				}
			}

			// The reverse pipeline, with the forward one paused in the
			// same configuration (its producers are loop markers).
			c := *p.cfg
			fwd := *p.cfg.Pipeline("ew")
			fwd.Paused = true
			c.Pipelines = []*pipelines.Pipeline{&fwd, p.cfg.Pipeline("we")}
			eng, err := mirror.New(&c, mirror.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- eng.Run(rctx) }()
			waitFor(t, "the reverse pipeline to copy west's writes", func() bool {
				e := ends(t, p.east.Addrs())
				return e[0] >= 25 && e[1] >= 25
			})
			// Give an echo the time to show, then compare record by record.
			produceTo(t, p.west.Addrs(), "west4", "west5")
			waitFor(t, "the reverse pipeline to copy the last writes", func() bool {
				e := ends(t, p.east.Addrs())
				return e[0] >= 26 && e[1] >= 26
			})
			cancel()
			<-done

			east, west := contents(t, p.east.Addrs(), topic), contents(t, p.west.Addrs(), topic)
			for part := int32(0); part < 2; part++ {
				want := map[string]bool{}
				for i := int(part); i < 40; i += 2 {
					want[fmt.Sprintf("v%d", i)] = true
				}
				for i := int(part); i < 6; i += 2 {
					want[fmt.Sprintf("tail%d", i)] = true
				}
				for i := int(part); i < 6; i += 2 {
					want[fmt.Sprintf("west%d", i)] = true
				}
				for side, got := range map[string][]string{"east": east[part], "west": west[part]} {
					seen := map[string]int{}
					for _, v := range got {
						seen[v]++
					}
					for v := range want {
						if seen[v] != 1 {
							t.Errorf("%s[%d]: %q present %d times", side, part, v, seen[v])
						}
					}
					if len(got) != len(want) {
						t.Errorf("%s[%d] holds %d records, want %d: %v", side, part, len(got), len(want), got)
					}
				}
			}
		})
	}
}

// TestFailbackRecoveryTopicAndIdentity: the tail goes into a recovery
// topic, once; a cluster that is not the recorded one is refused.
func TestFailbackRecoveryTopicAndIdentity(t *testing.T) {
	p := startCycle(t, "batch")
	ctx := context.Background()
	seed(t, p, 10)
	w, err := StartEngine(ctx, p.cfg, "ew", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mirror", func() bool { e := ends(t, p.west.Addrs()); return e[0] == 5 && e[1] == 5 })
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	produceTo(t, p.east.Addrs(), "tail0", "tail1", "tail2")
	for run := 0; run < 2; run++ {
		rep, err := Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew", RecoveryTopic: "orders.recovered"})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(3 * (1 - run)); rep.Copied != want {
			t.Fatalf("run %d copied %d, want %d", run, rep.Copied, want)
		}
	}
	got := contents(t, p.west.Addrs(), "orders.recovered")
	if len(got[0]) != 2 || len(got[1]) != 1 || got[0][0] != "tail0" || got[0][1] != "tail2" || got[1][0] != "tail1" {
		t.Fatalf("recovery topic %v", got)
	}

	st, err := checkpoint.Open(ctx, p.cfg.Checkpoints, client(t, p.west.Addrs()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := checkpoint.SaveClusters(ctx, st, "ew", checkpoint.Clusters{Source: "rebuilt", Dest: p.west.ClusterID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew", DryRun: true}); !errors.Is(err, ErrIdentity) {
		t.Fatalf("err = %v, want ErrIdentity", err)
	}
	if _, err := Failback(ctx, FailbackOptions{Config: p.cfg, Pipeline: "ew", DryRun: true, Force: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
}

// forwardOnly is cfg without the reverse pipeline "we".
func forwardOnly(cfg *pipelines.Config) *pipelines.Config {
	c := *cfg
	c.Pipelines = nil
	for _, q := range cfg.Pipelines {
		if q.Name != "we" {
			c.Pipelines = append(c.Pipelines, q)
		}
	}
	return &c
}
