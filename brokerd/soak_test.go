package brokerd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSoakHostile (STRAIT_LONG=1; STRAIT_SOAK=duration, default 3m) runs a
// franz-go producer and consumer while hostile clients send garbage,
// trickle bytes (slowloris), announce oversized frames and ask for
// amplified Metadata. The good clients must keep working, every
// acknowledged record must be read back, and the heap in use must stay
// under 300 MiB throughout.
func TestSoakHostile(t *testing.T) {
	if os.Getenv("STRAIT_LONG") == "" {
		t.Skip("STRAIT_LONG=1 runs the hostile soak")
	}
	dur := 3 * time.Minute
	if v := os.Getenv("STRAIT_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	c := startCluster(t, Config{Brokers: 1, AutoCreateTopics: true, Limits: Limits{FrameTimeout: 2 * time.Second}})
	addr := c.Addrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	hostile := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fn()
			}
		}()
	}
	dial := func() net.Conn {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			return nil
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		return nc
	}
	for range 4 {
		hostile(func() { // garbage
			if nc := dial(); nc != nil {
				b := make([]byte, 4096)
				rand.Read(b)
				nc.Write(b)
				nc.Close()
			}
		})
		hostile(func() { // slowloris
			if nc := dial(); nc != nil {
				for i := 0; i < 10 && ctx.Err() == nil; i++ {
					if _, err := nc.Write([]byte{0}); err != nil {
						break
					}
					time.Sleep(300 * time.Millisecond)
				}
				nc.Close()
			}
		})
		hostile(func() { // oversized headers
			if nc := dial(); nc != nil {
				nc.Write(binary.BigEndian.AppendUint32(nil, 100<<20))
				nc.Write([]byte{0, 0, 0, 9})
				time.Sleep(100 * time.Millisecond)
				nc.Close()
			}
		})
	}
	hostile(func() { // amplification
		if nc := dial(); nc != nil {
			nc.Write(metadataOfEmptyNames(2_500_000))
			nc.Close()
		}
	})

	var peak atomic.Uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()

	prod := newClient(t, c, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("soak"))
	acked := map[string]bool{}
	var mu sync.Mutex
	for i := 0; ctx.Err() == nil; i++ {
		v := strconv.Itoa(i)
		pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := prod.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr()
		pcancel()
		if err != nil {
			t.Fatalf("produce %d while under attack: %v", i, err)
		}
		mu.Lock()
		acked[v] = true
		mu.Unlock()
	}
	wg.Wait()

	cons := newClient(t, c, kgo.ConsumeTopics("soak"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	for len(seen) < len(acked) && rctx.Err() == nil {
		cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for v := range acked {
		if !seen[v] {
			t.Fatalf("acknowledged record %s lost (%d acked, %d read)", v, len(acked), len(seen))
		}
	}
	t.Logf("%d records acknowledged and read back; peak heap in use %d MiB", len(acked), peak.Load()>>20)
	if peak.Load() > 300<<20 {
		t.Fatalf("peak heap in use %d MiB, bound 300 MiB", peak.Load()>>20)
	}
}
