package brokerd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// TestOffsetsRetention runs offset retention with real clients: offsets a
// tool committed with no membership expire and stay gone across a restart;
// a running consumer group's older commit stays while it has members and
// expires once it leaves.
func TestOffsetsRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := brokerd.Config{Dir: dir, Brokers: 1, Listen: "127.0.0.1:0",
		OffsetsRetention: 300 * time.Millisecond, OffsetsRetentionCheckInterval: 50 * time.Millisecond}
	c, err := brokerd.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			c.Close()
		}
	})
	addrs := c.Addrs()
	const topic = "retained"
	confCreateTopic(t, addrs, topic, 3)
	produceN(t, confClient(t, addrs), topic, 0, 30, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The consumer group commits what it read once, then only heartbeats.
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup("members"),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	readThenCommit(t, ctx, cons, 30)

	adm := kadm.NewClient(confClient(t, addrs))
	simple := kadm.Offsets{}
	simple.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "tool", simple); err != nil || resp.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, resp.Error())
	}
	committed := func(adm *kadm.Client, group string) (int, error) {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return 0, err
		}
		n := 0
		offs.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 {
				n++
			}
		})
		return n, offs.Error()
	}
	gone := func(adm *kadm.Client, group string) func() error {
		return func() error {
			if n, err := committed(adm, group); err != nil || n != 0 {
				return fmt.Errorf("%d offsets of %s, err %v", n, group, err)
			}
			return nil
		}
	}
	n0, err := committed(adm, "members")
	if err != nil || n0 == 0 {
		t.Fatalf("the member's commit: %d offsets, err %v", n0, err)
	}
	confWait(t, 30*time.Second, "the tool's offsets to expire", gone(adm, "tool"))
	// The members' commit is older than the tool's: only membership kept it.
	if n, err := committed(adm, "members"); err != nil || n != n0 {
		t.Fatalf("running group's offsets: %d, err %v; want all %d kept", n, err, n0)
	}

	c.Close()
	closed = true
	cfg.Listen = addrs[0]
	c2, err := brokerd.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { c2.Close() })
	adm2 := kadm.NewClient(confClient(t, c2.Addrs()))
	if err := gone(adm2, "tool")(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	groups, err := adm2.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups["tool"]; ok {
		t.Fatal("the expired group is listed after the restart")
	}
	if n, err := committed(adm2, "members"); err != nil || n != n0 {
		t.Fatalf("running group's offsets after restart: %d, err %v; want %d", n, err, n0)
	}

	// Once the consumer leaves, the Empty group's offsets expire too.
	cons.Close()
	confWait(t, 30*time.Second, "the left group's offsets to expire", gone(adm2, "members"))
}
