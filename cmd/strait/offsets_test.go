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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/checkpoint"
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
	// Nothing produced: the source is empty, so failing over costs
	// nothing where the offset translates.
	want := "TOPIC   PARTITION  COMMITTED  DEST TOPIC   DEST OFFSET  RE-READ  MISSED  NOTE\n" +
		"orders  0          12         east.orders  10           0        0\n" +
		"orders  1          40         east.orders  -            -        -       below the earliest offset the checkpoint maps\n" +
		"total                                                   0        0\n" +
		"failing over now, group billing would re-read 0 records and miss 0\n"
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
