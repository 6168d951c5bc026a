package brokerd_test

// A franz-go group consumer across a restart of the whole cluster: the
// coordinator restores the group's members from __consumer_offsets, so the
// consumer keeps its generation and assignment with no rebalance.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

func TestGroupConsumerKeepsAssignmentAcrossRestart(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"eager", kgo.RangeBalancer()},
		{"cooperative", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			groupConsumerAcrossRestart(t, bal.b)
		})
	}
}

func groupConsumerAcrossRestart(t *testing.T, balancer kgo.GroupBalancer) {
	dir := t.TempDir()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 3, Listen: "127.0.0.1:0"})
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
	const topic, group = "restart-keep", "restart-keep-group"
	confCreateTopic(t, addrs, topic, 3)
	produceN(t, confClient(t, addrs), topic, 0, 300, 11)

	var assigned, revoked, lost atomic.Int32
	hb := &heartbeatReads{}
	count := func(n *atomic.Int32) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(context.Context, *kgo.Client, map[string][]int32) { n.Add(1) }
	}
	cons := confClient(t, addrs,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(100*time.Millisecond),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.WithHooks(hb),
		kgo.OnPartitionsAssigned(count(&assigned)),
		kgo.OnPartitionsRevoked(count(&revoked)),
		kgo.OnPartitionsLost(count(&lost)))
	seenAll, stopPoll := pollValues(cons)
	defer stopPoll()
	confWait(t, time.Minute, "the first 300 records", seenAll(300))
	member1, gen1 := cons.GroupMetadata()
	a1, r1, l1 := assigned.Load(), revoked.Load(), lost.Load()
	if a1 == 0 || gen1 < 1 {
		t.Fatalf("before restart: %d assignments, generation %d", a1, gen1)
	}

	c.Close()
	closed = true
	c2, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 3, Listen: addrs[0]})
	if err != nil {
		t.Fatalf("restart on %s: %v", addrs[0], err)
	}
	hbAtRestart := hb.reads.Load()
	t.Cleanup(func() { c2.Close() })
	produceN(t, confClient(t, c2.Addrs()), topic, 300, 300, 11)
	confWait(t, 2*time.Minute, "the 300 records produced after the restart", seenAll(600))

	// A heartbeat answered with an error makes the consumer revoke (or
	// lose) its partitions before it heartbeats again, so three heartbeat
	// answers after the restart (one may have been read just before it)
	// prove the restored coordinator accepted the member as it was.
	confWait(t, 30*time.Second, "heartbeats answered by the restarted cluster", func() error {
		if n := hb.reads.Load() - hbAtRestart; n < 3 {
			return fmt.Errorf("%d heartbeat answers since the restart", n)
		}
		return nil
	})
	if a, r, l := assigned.Load(), revoked.Load(), lost.Load(); a != a1 || r != r1 || l != l1 {
		t.Fatalf("callbacks after restart: assigned %d→%d, revoked %d→%d, lost %d→%d; want no change", a1, a, r1, r, l1, l)
	}
	member2, gen2 := cons.GroupMetadata()
	if member2 != member1 || gen2 != gen1 {
		t.Fatalf("member/generation %s/%d after restart, %s/%d before", member2, gen2, member1, gen1)
	}
}

// heartbeatReads counts Heartbeat responses the client read.
type heartbeatReads struct{ reads atomic.Int64 }

func (h *heartbeatReads) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 12 && err == nil {
		h.reads.Add(1)
	}
}
