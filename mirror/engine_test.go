package mirror

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

var modes = []pipelines.Mode{pipelines.ModeBatch, pipelines.ModeRecord}

// TestFidelity: many topics × partitions, keys, headers, timestamps,
// tombstones, zstd and lz4 compressed by the producer: every destination
// partition equals its source partition record for record, in both modes.
// STRAIT_LONG=1 runs the acceptance size (20 topics × 8 partitions ×
// 2,000,000 records in all).
func TestFidelity(t *testing.T) {
	topics, parts, perPart := 4, int32(3), 300
	if os.Getenv("STRAIT_LONG") != "" {
		topics, parts, perPart = 20, 8, 2_000_000/(20*8)
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			codecs := []kgo.CompressionCodec{kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression(), kgo.SnappyCompression()}
			admin := client(t, src.Addrs())
			for i := 0; i < topics; i++ {
				name := fmt.Sprintf("orders.%02d", i)
				createTopic(t, admin, name, parts, nil)
				produceData(t, producer(t, src.Addrs(), codecs[i%len(codecs)]), name, parts, perPart, codecs[i%len(codecs)])
			}
			createTopic(t, admin, "other", 1, nil) // not matched
			e, stop := runEngine(t, config(t, src.Addrs(), dst.Addrs(), mode, `orders\..*`), Options{})
			waitFor(t, 5*time.Minute, "mirror to catch up", func() bool { return caughtUp(e, topics*int(parts)) })
			stop()
			for i := 0; i < topics; i++ {
				name := fmt.Sprintf("orders.%02d", i)
				for p := int32(0); p < parts; p++ {
					if err := sameRecords(readAll(t, src.Addrs(), name, p), readAll(t, dst.Addrs(), name, p)); err != nil {
						t.Fatalf("%s/%d: %v", name, p, err)
					}
				}
			}
			if _, ok := endOffsets(t, dst.Addrs(), "other")[0]; ok {
				t.Fatalf("unmatched topic was mirrored")
			}
		})
	}
}
