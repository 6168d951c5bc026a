package brokerd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListOffsets(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c, kgo.ProducerLinger(0))
	createTopic(t, cl, "lo", 1, nil)
	ctx := context.Background()
	base := time.UnixMilli(1_700_000_000_000)
	// Timestamps 0s, 10s, …, 90s except that record 5 is the newest.
	for i := 0; i < 10; i++ {
		ts := base.Add(time.Duration(i) * 10 * time.Second)
		if i == 5 {
			ts = base.Add(time.Hour)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lo", Value: []byte(fmt.Sprint(i)), Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	start, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := start.Lookup("lo", 0); s.Offset != 0 {
		t.Fatalf("earliest %d", s.Offset)
	}
	if e, _ := end.Lookup("lo", 0); e.Offset != 10 {
		t.Fatalf("latest %d", e.Offset)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(25*time.Second).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := after.Lookup("lo", 0); a.Offset != 3 {
		t.Fatalf("by timestamp: offset %d, want 3", a.Offset)
	}
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	for _, ts := range []int64{-3, base.Add(2 * time.Hour).UnixMilli()} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
		req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
		p := rc.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		switch ts {
		case -3:
			if p.ErrorCode != 0 || p.Offset != 5 || p.Timestamp != base.Add(time.Hour).UnixMilli() {
				t.Fatalf("max timestamp: %+v", p)
			}
		default:
			if p.ErrorCode != 0 || p.Offset != -1 {
				t.Fatalf("timestamp after every record: %+v", p)
			}
		}
	}
}

// The background loop applies retention: old segments go and the log
// start offset moves.
func TestMaintainAppliesRetention(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, MaintainInterval: 20 * time.Millisecond})
	cl := newClient(t, c, kgo.ProducerLinger(0))
	createTopic(t, cl, "ret", 1, map[string]*string{"retention.ms": strp("1"), "segment.bytes": strp("1024")})
	old := time.Now().Add(-time.Hour)
	for i := 0; i < 20; i++ {
		r := &kgo.Record{Topic: "ret", Value: make([]byte, 200), Timestamp: old}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := c.topicPartitions("ret")[0]
	waitFor(t, 30*time.Second, "retention to advance the log start", func() bool {
		return p.log.LogStartOffset() > 0
	})
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "ep", 1, nil)
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "ep", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, c.Addrs()[0])
	ask := func(current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version = 4
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "ep"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	if p := ask(0, 0); p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 3 {
		t.Fatalf("epoch 0: %+v", p)
	}
	if p := ask(-1, 7); p.ErrorCode != 0 || p.LeaderEpoch != -1 || p.EndOffset != -1 {
		t.Fatalf("epoch 7: %+v", p)
	}
	if p := ask(2, 0); p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("current epoch 2: %+v", p)
	}
}
