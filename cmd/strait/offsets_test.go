package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// TestOffsetsTranslate stores checkpoints the way the mirror does, commits
// a group on the source, and checks the command's answer in both stores.
func TestOffsetsTranslate(t *testing.T) {
	for _, cluster := range []string{"kfake", "brokerd"} {
		for _, store := range []string{"file", "kafka"} {
			t.Run(cluster+"/"+store, func(t *testing.T) { offsetsTranslate(t, cluster, store) })
		}
	}
}

// testClusters starts a source and a destination cluster of one broker
// each: franz-go's kfake, or brokerd (what strait ships). The source has
// topics orders (2 partitions) and other (1).
func testClusters(t *testing.T, kind string) (srcAddrs, dstAddrs []string) {
	t.Helper()
	switch kind {
	case "kfake":
		srcC, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "other"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srcC.Close)
		dstC, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dstC.Close)
		return srcC.ListenAddrs(), dstC.ListenAddrs()
	case "brokerd":
		start := func() []string {
			c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1, Partitions: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c.Addrs()
		}
		srcAddrs, dstAddrs = start(), start()
		cl, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		for topic, n := range map[string]int32{"orders": 2, "other": 1} {
			resp, err := adm.CreateTopic(context.Background(), n, 1, nil, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("create %s: %v", topic, err)
			}
		}
		return srcAddrs, dstAddrs
	}
	t.Fatalf("unknown cluster kind %q", kind)
	return nil, nil
}

func offsetsTranslate(t *testing.T, cluster, store string) {
	ctx := context.Background()
	srcAddrs, dstAddrs := testClusters(t, cluster)

	dir := t.TempDir()
	storeYAML := "{store: kafka}"
	if store == "file" {
		storeYAML = fmt.Sprintf("{store: file, dir: %q}", filepath.Join(dir, "ckpt"))
	}
	cfgPath := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: %s
pipelines:
  - name: east-to-west
    source: east
    destination: west
    topics: {include: ["orders"]}
    rename: "east.{topic}"
`, srcAddrs[0], dstAddrs[0], storeYAML)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	// Partition 0: source 0..9 landed at 0..9, then a gap of 5
	// offsets (e.g. aborted data), 15..19 landed at 10..14.
	// Partition 1 has a checkpoint too; "other" is not mirrored.
	dst, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	s, err := checkpoint.Open(ctx, cfg.Checkpoints, dst)
	if err != nil {
		t.Fatal(err)
	}
	m := &checkpoint.OffsetMap{}
	m.Begin(checkpoint.Position{})
	m.Add(0, 0, 10)
	m.Add(15, 10, 5)
	m1 := &checkpoint.OffsetMap{}
	m1.Begin(checkpoint.Position{Source: 100, Dest: 0})
	m1.Add(100, 0, 50)
	err = s.Save(ctx, "east-to-west", &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{
		{Topic: "orders", Partition: 0}: {Pos: checkpoint.Position{Source: 20, Dest: 15}, Map: m, DestTopic: "east.orders"},
		{Topic: "orders", Partition: 1}: {Pos: checkpoint.Position{Source: 150, Dest: 50}, Map: m1, DestTopic: "east.orders"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	src, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 12, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 40, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1})
	if err := kadm.NewClient(src).CommitAllOffsets(ctx, "billing", commits); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if err := offsets(ctx, []string{"--config", cfgPath, "--pipeline", "east-to-west", "--group", "billing"}, &out, &errb); err != nil {
		t.Fatalf("offsets: %v\n%s", err, errb.String())
	}
	want := "orders 0 12 → east.orders 10\n" +
		"orders 1 40 → east.orders - (below the earliest offset the checkpoint maps)\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	if err := offsets(ctx, []string{"--json", "--config", cfgPath, "--pipeline", "east-to-west", "--group", "billing"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var res translateResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if len(res.Partitions) != 2 || res.Partitions[0].DestOffset == nil || *res.Partitions[0].DestOffset != 10 || res.Partitions[1].DestOffset != nil {
		t.Fatalf("json result: %s", out.String())
	}

	// Read-only: a kafka store's topic is not created by the command
	// when it is missing, and a file store's folder is not written.
	if store == "file" {
		entries, _ := os.ReadDir(filepath.Join(dir, "ckpt"))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("temp file %s written", e.Name())
			}
		}
	}
}

func TestOffsetsUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		nil,
		{"--config", "x.yaml"},
		{"--config", "x.yaml", "--pipeline", "p", "--group", "g", "extra"},
		{"--bogus"},
		{"nonsense"},
	} {
		var out, errb bytes.Buffer
		if err := offsets(ctx, args, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
}

// TestOffsetsTranslateReadOnly: against a destination that never held a
// checkpoint, the command reports each partition as not checkpointed and
// creates nothing there.
func TestOffsetsTranslateReadOnly(t *testing.T) {
	for _, cluster := range []string{"kfake", "brokerd"} {
		t.Run(cluster, func(t *testing.T) { offsetsTranslateReadOnly(t, cluster) })
	}
}

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
	if want := "orders 0 7 → orders - (not checkpointed yet)\n"; out.String() != want {
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
	wantOut := "orders 0 15 → east.orders 10\norders 1 20 → east.orders 20\n"
	poll(t, "the command to agree with the sync", func() error {
		var out, errb bytes.Buffer
		if err := offsets(ctx, []string{"--config", cfgPath, "--pipeline", "east-to-west", "--group", "billing"}, &out, &errb); err != nil {
			return fmt.Errorf("%v: %s", err, errb.String())
		}
		if out.String() != wantOut {
			return fmt.Errorf("output %q, want %q", out.String(), wantOut)
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
