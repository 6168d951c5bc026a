package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/mirror"
	"strait/pipelines"
)

// TestOffsetsTranslateMatchesSync runs the real engine between two brokerd
// clusters with group offset sync on and the default (kafka) checkpoint
// store. The source lost its first records to retention before the mirror
// started, so translation is not identity. The command's answer, read from
// the checkpoints the engine saved, must equal what the engine's sync
// committed to the group on the destination.
func TestOffsetsTranslateMatchesSync(t *testing.T) {
	ctx := context.Background()
	srcAddrs, dstAddrs := testClusters(t, "brokerd")
	src, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(dst)
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 30; i++ {
			r := &kgo.Record{Topic: "orders", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}
			if err := src.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 5})
	if dr, err := srcAdm.DeleteRecords(ctx, del); err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	if resp, err := dstAdm.CreateTopic(ctx, 2, 1, nil, "east.orders"); err != nil || resp.Err != nil {
		t.Fatalf("create east.orders: %v %v", err, resp.Err)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: kafka, interval: 100ms}
pipelines:
  - name: east-to-west
    source: east
    destination: west
    topics: {include: ["orders"]}
    rename: "east.{topic}"
    mode: record
    sync: {topic_configs: false, groups: ["billing"], interval: 200ms}
`, srcAddrs[0], dstAddrs[0])
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := mirror.New(cfg, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() { stop(); <-done }()

	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 15, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 20, LeaderEpoch: -1})
	if err := srcAdm.CommitAllOffsets(ctx, "billing", commits); err != nil {
		t.Fatal(err)
	}
	// Source 5..29 of partition 0 land at 0..24; partition 1 is identity.
	want := map[int32]int64{0: 10, 1: 20}
	poll(t, "the engine to sync billing", func() error {
		os, err := dstAdm.FetchOffsets(ctx, "billing")
		if err != nil {
			return err
		}
		for p, at := range want {
			if o, ok := os.Lookup("east.orders", p); !ok || o.At != at {
				return fmt.Errorf("partition %d: %+v, want %d", p, o, at)
			}
		}
		return nil
	})
	// Caught up, the predicted failover impact is nothing re-read and
	// nothing missed.
	poll(t, "the command to agree with the sync", func() error {
		var out, errb bytes.Buffer
		if err := offsets(ctx, []string{"--json", "--config", cfgPath, "--pipeline", "east-to-west", "--group", "billing"}, &out, &errb); err != nil {
			return fmt.Errorf("%v: %s", err, errb.String())
		}
		var res translateResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return err
		}
		if len(res.Partitions) != 2 || res.Reread != 0 || res.Missed != 0 {
			return fmt.Errorf("output %s", out.String())
		}
		for _, r := range res.Partitions {
			if r.DestTopic != "east.orders" || r.DestOffset == nil || *r.DestOffset != want[r.Partition] ||
				r.Reread == nil || *r.Reread != 0 || r.Missed == nil || *r.Missed != 0 {
				return fmt.Errorf("output %s, want offsets %v and no impact", out.String(), want)
			}
		}
		return nil
	})
	// The destination copy at the translated offset is the source record
	// the group would read next.
	cl, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"east.orders": {0: kgo.NewOffset().At(10)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fs := cl.PollRecords(pctx, 1)
	if err := pctx.Err(); err != nil {
		t.Fatalf("no record at east.orders[0]@10: %v", err)
	}
	if r := fs.Records()[0]; r.Offset != 10 || string(r.Value) != "0-15" {
		t.Fatalf("east.orders[0]@%d is %q, want 0-15 at 10", r.Offset, r.Value)
	}
}

// poll waits up to a minute for cond to hold.
func poll(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOffsetsTranslateUnknownGroup: brokerd, like Kafka, answers an
// OffsetFetch for a group it never saw with no offsets; the command says so
// rather than failing.
func TestOffsetsTranslateUnknownGroup(t *testing.T) {
	srcAddrs, dstAddrs := testClusters(t, "brokerd")
	cfgPath := filepath.Join(t.TempDir(), "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
pipelines:
  - {name: p, source: east, destination: west, topics: {include: ["orders"]}}
`, srcAddrs[0], dstAddrs[0])
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := offsets(context.Background(), []string{"--config", cfgPath, "--pipeline", "p", "--group", "nobody"}, &out, &errb); err != nil {
		t.Fatalf("offsets: %v\n%s", err, errb.String())
	}
	if want := "group nobody has no committed offsets on topics of pipeline p\n"; out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
}
