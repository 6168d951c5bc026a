package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/pipelines"
)

func offsetsTranslateReadOnly(t *testing.T, cluster string) {
	ctx := context.Background()
	srcAddrs, dstAddrs := testClusters(t, cluster)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
pipelines:
  - {name: p, source: east, destination: west, topics: {include: ["orders"]}}
`, srcAddrs[0], dstAddrs[0])
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 7, LeaderEpoch: -1})
	if err := kadm.NewClient(src).CommitAllOffsets(ctx, "billing", commits); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := offsets(ctx, []string{"--config", cfgPath, "--pipeline", "p", "--group", "billing"}, &out, &errb); err != nil {
		t.Fatalf("offsets: %v\n%s", err, errb.String())
	}
	if want := "TOPIC   PARTITION  COMMITTED  DEST TOPIC  DEST OFFSET  RE-READ  MISSED  NOTE\n" +
		"orders  0          7          orders      -            -        -       not checkpointed yet\n" +
		"total                                                  0        0\n" +
		"failing over now, group billing would re-read 0 records and miss 0\n"; out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	dst, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	topics, err := kadm.NewClient(dst).ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(checkpoint.DefaultTopic) {
		t.Fatalf("the read-only command created %s", checkpoint.DefaultTopic)
	}
}

func TestFailoverImpact(t *testing.T) {
	pos := checkpoint.Position{Source: 20, Dest: 15}
	for _, c := range []struct {
		name                    string
		committed, srcEnd, dEnd int64
		reread, missed          int64
	}{
		{"caught up, commit behind the checkpoint", 12, 20, 15, 0, 0},
		{"caught up past the checkpoint, commit at it", 20, 25, 20, 0, 0},
		{"commit past the checkpoint re-reads what was mirrored since", 23, 25, 20, 3, 0},
		{"commit past everything mirrored", 30, 40, 20, 5, 10},
		{"lagging: records past the mirrored end are missed", 12, 40, 18, 0, 17},
		{"commit at the source end: nothing left to miss", 40, 40, 20, 5, 0},
		{"source emptied below the checkpoint", 12, 5, 15, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, m := failoverImpact(c.committed, pos, c.srcEnd, c.dEnd)
			if r != c.reread || m != c.missed {
				t.Fatalf("failoverImpact(%d, %+v, %d, %d) = %d re-read, %d missed; want %d, %d",
					c.committed, pos, c.srcEnd, c.dEnd, r, m, c.reread, c.missed)
			}
		})
	}
}

// TestOffsetsFailoverImpact: on a pair of brokerd clusters whose
// destination lags its source, the command's predicted re-reads and misses
// match what a consumer resuming at the translated offsets would really
// see.
func TestOffsetsFailoverImpact(t *testing.T) {
	ctx := context.Background()
	srcAddrs, dstAddrs := testClusters(t, "brokerd")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q}
pipelines:
  - {name: p, source: east, destination: west, topics: {include: ["orders"]}, rename: "east.{topic}"}
`, srcAddrs[0], dstAddrs[0], filepath.Join(dir, "ckpt"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	client := func(addrs []string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	src := client(srcAddrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	dst := client(dstAddrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(dst).CreateTopic(ctx, 2, 1, nil, "east.orders"); err != nil {
		t.Fatal(err)
	}
	// Source: 40 records in partition 0, 10 in partition 1. The
	// destination holds copies of the first 25 and 6: the checkpoint
	// says 20 and 4, the rest was mirrored after it.
	srcN, dstN := map[int32]int{0: 40, 1: 10}, map[int32]int{0: 25, 1: 6}
	for p := int32(0); p < 2; p++ {
		var srcRecs, dstRecs []*kgo.Record
		for i := range srcN[p] {
			v := fmt.Appendf(nil, "o%d-%d", p, i)
			srcRecs = append(srcRecs, &kgo.Record{Topic: "orders", Partition: p, Value: v})
			if i < dstN[p] {
				dstRecs = append(dstRecs, &kgo.Record{Topic: "east.orders", Partition: p, Value: v})
			}
		}
		if err := src.ProduceSync(ctx, srcRecs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := dst.ProduceSync(ctx, dstRecs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	store, err := checkpoint.Open(ctx, cfg.Checkpoints, dst)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[checkpoint.TP]*checkpoint.Partition{}
	for p, at := range map[int32]int64{0: 20, 1: 4} {
		m := &checkpoint.OffsetMap{}
		m.Begin(checkpoint.Position{})
		m.Add(0, 0, at)
		parts[checkpoint.TP{Topic: "orders", Partition: p}] = &checkpoint.Partition{Pos: checkpoint.Position{Source: at, Dest: at}, Map: m, DestTopic: "east.orders"}
	}
	if err := store.Save(ctx, "p", &checkpoint.State{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	committed := map[int32]int64{0: 10, 1: 8}
	commits := kadm.Offsets{}
	for p, at := range committed {
		commits.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1})
	}
	if err := kadm.NewClient(src).CommitAllOffsets(ctx, "billing", commits); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if err := offsets(ctx, []string{"--json", "--config", cfgPath, "--pipeline", "p", "--group", "billing"}, &out, &errb); err != nil {
		t.Fatalf("offsets: %v\n%s", err, errb.String())
	}
	var res translateResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	// Partition 0: commit 10 translates exactly, nothing re-read; source
	// 25..39 are not mirrored: 15 missed. Partition 1: commit 8 is past
	// the checkpoint (4), so the group resumes at 4 and re-reads 4 and 5;
	// 8 and 9 are not mirrored: 2 missed.
	if res.Reread != 2 || res.Missed != 17 || len(res.Partitions) != 2 {
		t.Fatalf("impact: %s", out.String())
	}

	// What a consumer moved to the destination would really see.
	for _, row := range res.Partitions {
		if row.DestOffset == nil || row.Reread == nil || row.Missed == nil {
			t.Fatalf("partition %d: %s", row.Partition, out.String())
		}
		onDest := readValues(t, dstAddrs, "east.orders", row.Partition, *row.DestOffset, int64(dstN[row.Partition]))
		consumed := map[string]bool{}
		for i := range committed[row.Partition] {
			consumed[fmt.Sprintf("o%d-%d", row.Partition, i)] = true
		}
		seen := map[string]bool{}
		var reread, missed int64
		for _, v := range onDest {
			seen[v] = true
			if consumed[v] {
				reread++
			}
		}
		for i := committed[row.Partition]; i < int64(srcN[row.Partition]); i++ {
			if !seen[fmt.Sprintf("o%d-%d", row.Partition, i)] {
				missed++
			}
		}
		if *row.Reread != reread || *row.Missed != missed {
			t.Errorf("partition %d: predicted %d re-read, %d missed; a consumer at %d sees %d, %d",
				row.Partition, *row.Reread, *row.Missed, *row.DestOffset, reread, missed)
		}
	}

	out.Reset()
	if err := offsets(ctx, []string{"--config", cfgPath, "--pipeline", "p", "--group", "billing"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "failing over now, group billing would re-read 2 records and miss 17\n") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// readValues reads the values of topic/partition in [from, to).
func readValues(t *testing.T, addrs []string, topic string, partition int32, from, to int64) []string {
	t.Helper()
	var out []string
	if from >= to {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for int64(len(out)) < to-from {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s/%d: %v after %d records", topic, partition, err, len(out))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < to {
				out = append(out, string(r.Value))
			}
		})
	}
	return out
}
