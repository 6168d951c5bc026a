package drill

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The workload: a keyed, numbered, checksummed stream (layout in doc.go),
// produced as a backlog before the mirror starts and at Rate after.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// value layout: seq (8 bytes, big endian) | crc32c over seq and body (4) | body.
func encodeValue(seq uint64, size int) []byte {
	v := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(v, seq)
	x := seq*0x9e3779b97f4a7c15 + 1
	for i := 12; i < len(v); i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = 'a' + byte(x%26)
	}
	binary.BigEndian.PutUint32(v[8:], checksum(v))
	return v
}

func checksum(v []byte) uint32 {
	c := crc32.Update(0, castagnoli, v[:8])
	return crc32.Update(c, castagnoli, v[12:])
}

// decodeValue returns the sequence number, or ok=false when the value is
// not a scenario record or fails its checksum.
func decodeValue(v []byte) (uint64, bool) {
	if len(v) < 16 {
		return 0, false
	}
	if binary.BigEndian.Uint32(v[8:]) != checksum(v) {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func keyOf(seq uint64) []byte { return fmt.Appendf(nil, "customer-%04d", (seq*7919)%1000) }

// createTopics creates the scenario's topics on the source; one already
// there is used as it is.
func createTopics(ctx context.Context, adm *kadm.Client, topics []TopicSpec) error {
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, nil, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("%w: creating topic %s: %w", ErrScenario, t.Name, err)
		}
	}
	return nil
}

// record is the record seq: its topic by turns, a key from a thousand
// customers, the value of the layout in doc.go.
func (r *run) record(seq uint64) *kgo.Record {
	topics := r.sc.Topics
	t := topics[int(seq%uint64(len(topics)))]
	return &kgo.Record{
		Topic:   t.Name,
		Key:     keyOf(seq),
		Value:   encodeValue(seq, r.sc.RecordSize),
		Headers: []kgo.RecordHeader{{Key: "strait-demo-seq", Value: fmt.Appendf(nil, "%d", seq)}},
	}
}

// onAck records where the source stored seq, and when it acknowledged it.
func (r *run) onAck(seq uint64, rec *kgo.Record, err error) {
	if err != nil {
		r.nacked.Add(1)
		return
	}
	w := where{rec.Topic, rec.Partition, rec.Offset}
	r.mu.Lock()
	r.mu.acked[seq] = acked{at: w, ack: time.Now()}
	r.mu.bySource[w] = seq
	r.mu.Unlock()
}

// produceBacklog produces n records and waits for all of them; one failed
// record fails the backlog.
func (r *run) produceBacklog(ctx context.Context, cl *kgo.Client, n int) error {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		seq := uint64(r.produced.Add(1))
		wg.Add(1)
		cl.Produce(ctx, r.record(seq), func(rec *kgo.Record, err error) {
			defer wg.Done()
			r.onAck(seq, rec, err)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%w: producing the backlog: %w", ErrScenario, err)
	}
	return nil
}

// produceSteady produces Rate records per second in small bursts until ctx
// ends, then waits for the in-flight ones to settle.
func (r *run) produceSteady(ctx context.Context, cl *kgo.Client) {
	const tick = 20 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	begin := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(begin).Seconds() * float64(r.sc.Rate))
			for ; sent < due; sent++ {
				seq := uint64(r.produced.Add(1))
				wg.Add(1)
				// context.Background: a cut must not turn records the
				// broker already took into "not acknowledged".
				cl.Produce(context.Background(), r.record(seq), func(rec *kgo.Record, err error) {
					defer wg.Done()
					r.onAck(seq, rec, err)
				})
			}
		}
	}
}
