package mirror

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// BenchmarkDiscovery measures how long a topic created on the source
// while the mirror runs takes to appear, with records, on the
// destination, in refresh intervals (the claim: within two). It is a
// benchmark, not a test, because the answer is a time.
func BenchmarkDiscovery(b *testing.B) {
	src, dst := clusterPair(b)
	cfg := config(b, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, ".*")
	refresh := cfg.Pipelines[0].Refresh.D()
	_, stop := runEngine(b, cfg, Options{})
	defer stop()
	admin := client(b, src.Addrs())
	pr := producer(b, src.Addrs(), kgo.NoCompression())
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		topic := "d" + strconv.Itoa(i)
		start := time.Now()
		createTopic(b, admin, topic, 1, nil)
		if err := pr.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 30*time.Second, "topic mirrored", func() bool { return endOffsets(b, dst.Addrs(), topic)[0] == 1 })
		total += time.Since(start)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(refresh), "refreshes/op")
}
