package drill

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The fault scenarios share one shape: a numbered stream produced to a
// cluster while something breaks, then both sides read back in full and
// every acknowledged sequence number checked: present exactly once, and in
// order within its partition.

// stream produces numbered records to one topic and remembers which seqs
// were acknowledged.
type stream struct {
	topic string
	mu    sync.Mutex
	acked map[uint64]bool
}

func newStream(topic string) *stream { return &stream{topic: topic, acked: make(map[uint64]bool)} }

func (s *stream) ackedCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.acked))
}

// produce sends seqs from first on at rate records per second until ctx
// ends, then waits for the in-flight ones; it returns the next seq. A
// record that fails is simply not acknowledged (the producer retries
// within its own limits).
func (s *stream) produce(ctx context.Context, cl *kgo.Client, first uint64, rate int) uint64 {
	const tick = 20 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	begin := time.Now()
	seq := first
	for {
		select {
		case <-ctx.Done():
			return seq
		case now := <-t.C:
			due := first + uint64(now.Sub(begin).Seconds()*float64(rate))
			for ; seq < due; seq++ {
				n := seq
				wg.Add(1)
				// context.Background: stopping the stream must not turn
				// records the broker took into "not acknowledged".
				cl.Produce(context.Background(), &kgo.Record{Topic: s.topic, Key: keyOf(n), Value: encodeValue(n, 128)}, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err == nil {
						s.mu.Lock()
						s.acked[n] = true
						s.mu.Unlock()
					}
				})
			}
		}
	}
}

// start runs produce in a goroutine; the returned stop ends it and waits
// for its acknowledgements (later calls return at once).
func (s *stream) start(ctx context.Context, cl *kgo.Client, first uint64, rate int) (stop func()) {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.produce(pctx, cl, first, rate) }()
	return func() { cancel(); <-done }
}

// producerFor is a producer client for a cluster's addresses, retrying
// long enough to ride out a cluster restart.
func producerFor(addrs []string, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordDeliveryTimeout(2 * time.Minute), kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: producer: %w", ErrScenario, err)
	}
	return cl, nil
}

// readAll reads a topic of a cluster from start to end and returns the
// seqs per partition in log order.
func readAll(ctx context.Context, addrs []string, topic string) (map[int32][]uint64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: end offsets of %s: %w", ErrScenario, topic, err)
	}
	out := make(map[int32][]uint64)
	parts := map[string]map[int32]kgo.Offset{topic: {}}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			parts[topic][o.Partition] = kgo.NewOffset().AtStart()
			left++
		}
	})
	if left == 0 {
		return out, nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	next := make(map[int32]int64)
	deadline := time.Now().Add(2 * time.Minute)
	for left > 0 {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%w: reading %s back did not finish", ErrScenario, topic)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := rd.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(topic, r.Partition)
			if r.Offset >= end.Offset || r.Offset < next[r.Partition] {
				return
			}
			next[r.Partition] = r.Offset + 1
			if seq, ok := decodeValue(r.Value); ok {
				out[r.Partition] = append(out[r.Partition], seq)
			}
			if r.Offset+1 == end.Offset {
				left--
			}
		})
	}
	return out, nil
}

// check compares what a cluster holds with the acknowledged seqs: lost (an
// acked seq absent), duplicated (present more than once) and reordered (a
// seq after a higher one of the same class in its partition; class
// separates streams produced to different clusters, by seq range).
func check(got map[int32][]uint64, acked map[uint64]bool, class func(uint64) int) (lost, dup, reordered int64) {
	seen := make(map[uint64]int)
	for _, seqs := range got {
		last := map[int]uint64{}
		for _, s := range seqs {
			seen[s]++
			c := class(s)
			if s < last[c] {
				reordered++
			}
			last[c] = max(last[c], s)
		}
	}
	for s := range acked {
		switch n := seen[s]; {
		case n == 0:
			lost++
		case n > 1:
			dup += int64(n - 1)
		}
	}
	return lost, dup, reordered
}

// waitCount polls until a topic holds at least n records on a cluster.
func waitCount(ctx context.Context, addrs []string, topic string, n int64, within time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(within)
	var have int64
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			have = 0
			ends.Each(func(o kadm.ListedOffset) { have += o.Offset })
			if have >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s holds %d records after %v, want %d", ErrScenario, topic, have, within, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// verdict fills res from a check and returns ErrVerify when it failed.
func verdict(res *Result, lost, dup, reordered int64) error {
	res.Lost += lost
	res.Duplicated += dup
	res.Reordered += reordered
	if res.Lost+res.Duplicated+res.Reordered > 0 {
		return fmt.Errorf("%w: %d lost, %d duplicated, %d out of order", ErrVerify, res.Lost, res.Duplicated, res.Reordered)
	}
	return nil
}
