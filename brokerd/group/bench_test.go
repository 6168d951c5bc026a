package group

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCommit measures OffsetCommit through Handle and the single-owner
// loop from parallel callers (one group each), with an in-memory journal:
// the coordinator's own cost per commit, without the log behind it.
func BenchmarkCommit(b *testing.B) {
	c, err := New(Config{Journal: &memJournal{}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		group := fmt.Sprintf("g%d", next.Add(1))
		ctx := context.Background()
		for i := int64(0); pb.Next(); i++ {
			if _, err := c.Handle(ctx, commitReq(group, "", -1, "t", int32(i%12), i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHeartbeat measures Heartbeat through Handle for members of 100
// stable groups, the steady-state load of a busy coordinator.
func BenchmarkHeartbeat(b *testing.B) {
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	ids := make([]string, 100)
	for i := range ids {
		g := fmt.Sprintf("g%d", i)
		jr := joinReq(g, "", nil)
		resp, _ := c.Handle(ctx, jr)
		jr.MemberID = resp.(*kmsg.JoinGroupResponse).MemberID
		c.Handle(ctx, jr)
		c.Handle(ctx, syncReq(g, jr.MemberID, 1, nil))
		ids[i] = jr.MemberID
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) % len(ids)
			resp, err := c.Handle(ctx, heartbeatReq(fmt.Sprintf("g%d", i), ids[i], 1))
			if err != nil || resp.(*kmsg.HeartbeatResponse).ErrorCode != 0 {
				b.Fatalf("heartbeat: %v %+v", err, resp)
			}
		}
	})
}
