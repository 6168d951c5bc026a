package brokerd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCreateTopics creates 1,000 topics × 10 partitions in one
// CreateTopics request, as the mirror does when it starts a wide pipeline.
// Each iteration starts from an empty cluster (its start is not timed).
// Profile with -cpuprofile to see where topic creation spends its time.
func BenchmarkCreateTopics(b *testing.B) {
	const topics, parts = 1000, 10
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 60_000
	for i := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = fmt.Sprintf("bench.%04d", i)
		rt.NumPartitions, rt.ReplicationFactor = parts, 1
		req.Topics = append(req.Topics, rt)
	}
	for b.Loop() {
		b.StopTimer()
		c := startCluster(b, Config{})
		cl := newClient(b, c, kgo.RequestTimeoutOverhead(5*time.Minute))
		if err := cl.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		resp, err := req.RequestWith(context.Background(), cl)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range resp.Topics {
			if st.ErrorCode != 0 {
				b.Fatalf("%s: error %d", st.Topic, st.ErrorCode)
			}
		}
		cl.Close()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
}
