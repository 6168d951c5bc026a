package brokerd

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/internal/recordbatch"
)

// BenchmarkFetch reads one partition with back-to-back Fetch requests on
// one connection, through sendfile and through the copy path, at several
// fetch sizes. Compare the paths within one run (-bench Fetch).
func BenchmarkFetch(b *testing.B) {
	for _, copyPath := range []bool{false, true} {
		c := startCluster(b, Config{Brokers: 1, CopyFetch: copyPath})
		cl := newClient(b, c, kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
		createTopic(b, cl, "bench", 1, nil)
		val := make([]byte, 1000)
		rand.Read(val)
		var rs []*kgo.Record
		for i := 0; i < 64<<10; i++ { // ~64 MiB
			rs = append(rs, &kgo.Record{Topic: "bench", Value: val})
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		for _, size := range []int32{16 << 10, 64 << 10, 1 << 20} {
			name := fmt.Sprintf("copy=%v/size=%dKiB", copyPath, size>>10)
			b.Run(name, func(b *testing.B) {
				rc := dialRaw(b, c.Addrs()[0])
				req := fetchOne(11, "bench", 0, 1, size)
				var offset, bytes int64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					req.Topics[0].Partitions[0].FetchOffset = offset
					rc.send(req)
					f, err := rc.readFrame()
					if err != nil {
						b.Fatal(err)
					}
					bytes += int64(len(f))
					// Walking the batches' headers finds the next offset; a
					// torn last batch ends the walk.
					recs := f[4+4+2+4+4+len("bench")+2+4+4+2+8+8+8+4+4+4:]
					next := offset
					for len(recs) >= recordbatch.HeaderSize {
						h, err := recordbatch.ParseHeader(recs)
						if err != nil || h.Size() > int64(len(recs)) {
							break
						}
						next = h.NextOffset()
						recs = recs[h.Size():]
					}
					offset = next
					if offset >= 64<<10 || next == 0 {
						offset = 0
					}
				}
				b.SetBytes(bytes / int64(b.N))
			})
		}
	}
}
