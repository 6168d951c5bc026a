package brokerd

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A cluster restarted on 10,000 idle partitions (over 10 topics) costs at
// most 8 KiB of heap per partition, brokerd's tables included, and holds
// few file descriptors. The default run uses 2,000 partitions;
// STRAIT_FULL=1 runs the acceptance size.
func TestIdlePartitionsCluster(t *testing.T) {
	n := 2000
	if os.Getenv("STRAIT_FULL") != "" {
		n = 10_000
	}
	dir := t.TempDir()
	c, err := Start(context.Background(), Config{Dir: dir, Brokers: 3, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	for i := 0; i < 10; i++ {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = "idle-" + string(rune('a'+i))
		rt.NumPartitions = int32(n / 10)
		rt.ReplicationFactor = 1
		req.Topics = append(req.Topics, rt)
	}
	for _, st := range rc.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("%s: %d", st.Topic, st.ErrorCode)
		}
	}
	rc.nc.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	fdsBefore := countFDs(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c = startCluster(t, Config{Dir: dir, Brokers: 3})
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapInuse) - int64(before.HeapInuse)) / int64(n)
	fds := countFDs(t) - fdsBefore
	t.Logf("%d idle partitions: %d heap bytes each, %d new descriptors", n, per, fds)
	if per > 8<<10 {
		t.Errorf("heap per idle partition %d bytes, limit 8 KiB", per)
	}
	if fds > 64 {
		t.Errorf("%d descriptors for idle partitions", fds)
	}
	// Plus __consumer_offsets and __transaction_state.
	if got := len(c.allPartitions()); got != n+2 {
		t.Fatalf("%d partitions after restart, want %d", got, n+2)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}
