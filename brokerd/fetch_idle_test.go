package brokerd

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A quiet session's long poll waits on the broker's idle waiters, with no
// watch on any partition, and still wakes on an append (answering that
// partition) and on the topic's deletion (answering the error).
func TestFetchSessionQuietPoll(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "quiet", 8, nil)
	rc := dialRaw(t, c.Addrs()[0])
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		t.Helper()
		return rc.roundTrip(req).(*kmsg.FetchResponse)
	}
	var all []fetchAt
	for p := int32(0); p < 8; p++ {
		all = append(all, fetchAt{"quiet", p, 0})
	}
	id := fetch(sessionFetch(0, 0, 0, all...)).SessionID
	if id <= 0 {
		t.Fatalf("no session: id %d", id)
	}
	idle := c.idle[0]
	parked := func() bool { return idle.n.Load() > 0 }
	watched := func() bool {
		for _, p := range c.topicPartitions("quiet") {
			p.wmu.Lock()
			n := len(p.waiters)
			p.wmu.Unlock()
			if n > 0 {
				return true
			}
		}
		return false
	}

	// Quiet and the wait runs out: answered with no partition.
	if r := fetch(sessionFetch(id, 1, 50)); r.ErrorCode != 0 || r.SessionID != id || len(r.Topics) != 0 {
		t.Fatalf("quiet poll: error %d session %d topics %d", r.ErrorCode, r.SessionID, len(r.Topics))
	}

	// Quiet, then an append to partition 4 wakes it.
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- fetch(sessionFetch(id, 2, 30_000)) }()
	waitFor(t, 10*time.Second, "the poll to park on the idle waiters", parked)
	if watched() {
		t.Fatal("a quiet poll registered on a partition")
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "quiet", Partition: 4, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if got := answered(t, r); !sameAnswer(got, map[string]bool{"quiet/4": true}) {
			t.Fatalf("after the append: answered %v", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the append did not wake the quiet poll")
	}
	waitFor(t, 10*time.Second, "the poll to leave the idle waiters", func() bool { return !parked() })

	// The client moved partition 4 to offset 1: listed, so answered once.
	if r := fetch(sessionFetch(id, 3, 0, fetchAt{"quiet", 4, 1})); len(answered(t, r)) != 1 {
		t.Fatalf("moved offset: answered %v", answered(t, r))
	}

	// Quiet again; deleting the topic wakes it with the error.
	go func() { done <- fetch(sessionFetch(id, 4, 30_000)) }()
	waitFor(t, 10*time.Second, "the poll to park again", parked)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"quiet"}
	if r := newRaw(t, c).roundTrip(del).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: error %d", r.Topics[0].ErrorCode)
	}
	select {
	case r := <-done:
		n := 0
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				n++
				if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					t.Errorf("%s/%d after deletion: error %d", rt.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
		if n != 8 {
			t.Fatalf("after deletion %d partitions answered, want 8", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the deletion did not wake the quiet poll")
	}
}

func newRaw(t *testing.T, c *Cluster) *rawConn { return dialRaw(t, c.Addrs()[0]) }
