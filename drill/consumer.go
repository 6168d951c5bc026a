package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
)

// consumeSource is the application on the source: a consumer group that
// reads at about 70% of the produce rate (so it trails and has records left
// to read after the failover) and commits synchronously; a record counts as
// consumed only once its offset commit is acknowledged.
func (r *run) consumeSource(ctx context.Context) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.srcOpts...),
		kgo.ConsumerGroup(r.sc.Group),
		kgo.ConsumeTopics(r.topics()...),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
	)...)
	if err != nil {
		return err
	}
	defer closeBounded(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	})
	perSec := max(r.sc.Rate*7/10, 1)
	begin := time.Now()
	var taken int
	for ctx.Err() == nil {
		allowed := int(time.Since(begin).Seconds()*float64(perSec)) - taken
		if allowed <= 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		fs := cl.PollRecords(ctx, min(allowed, 500))
		if ctx.Err() != nil {
			return nil
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		taken += len(recs)
		r.mu.Lock()
		for _, rec := range recs {
			if seq, ok := decodeValue(rec.Value); ok {
				r.mu.bySource[where{rec.Topic, rec.Partition, rec.Offset}] = seq
			}
		}
		r.mu.Unlock()
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("source consumer commit", "err", err)
			continue
		}
		r.mu.Lock()
		for _, rec := range recs {
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			if rec.Offset+1 > r.mu.committed[tp] {
				r.mu.committed[tp] = rec.Offset + 1
			}
		}
		r.mu.Unlock()
		r.consumed.Add(int64(len(recs)))
	}
	return nil
}

// translate reads the mirror's checkpoint state from its store and maps the
// group's last acknowledged source commits to destination offsets, then
// commits those to the group on the destination (where it has no members).
func (r *run) translate(ctx context.Context, dst *kgo.Client, rep *Report) (map[checkpoint.TP]kgo.EpochOffset, error) {
	store, err := checkpoint.Open(ctx, r.sc.Config.Checkpoints, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: opening the checkpoint store: %w", ErrScenario, err)
	}
	defer store.Close()
	st, err := store.Load(ctx, r.sc.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("%w: loading checkpoints: %w", ErrScenario, err)
	}
	r.mu.Lock()
	committed := make(map[checkpoint.TP]int64, len(r.mu.committed))
	for k, v := range r.mu.committed {
		committed[k] = v
	}
	r.mu.Unlock()

	out := make(map[checkpoint.TP]kgo.EpochOffset)
	offsets := make(kadm.Offsets)
	for _, t := range r.sc.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			tp := checkpoint.TP{Topic: t.Name, Partition: p}
			pr := PartitionReport{Topic: t.Name, Partition: p, DestTopic: r.pl.DestTopic(t.Name), Committed: -1, Translated: -1, Expected: -1}
			if c, ok := committed[tp]; ok {
				pr.Committed = c
				destTopic, d, ok := st.Translate(tp, c)
				if ok {
					if destTopic != "" {
						pr.DestTopic = destTopic
					}
					pr.Translated = d
					out[tp] = kgo.EpochOffset{Epoch: -1, Offset: d}
					offsets.Add(kadm.Offset{Topic: pr.DestTopic, Partition: p, At: d, LeaderEpoch: -1})
				}
			}
			rep.Partitions = append(rep.Partitions, pr)
		}
	}
	if len(offsets) > 0 {
		resp, err := kadm.NewClient(dst).CommitOffsets(ctx, r.sc.Group, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: committing translated offsets on the destination: %w", ErrScenario, err)
		}
	}
	return out, nil
}

// consumeDest is the application after failover: the same group on the
// destination, resuming at its (translated) committed offsets, reading
// until it reaches the end. It returns when the first record arrived and
// how often each seq was read.
func (r *run) consumeDest(ctx context.Context, trans map[checkpoint.TP]kgo.EpochOffset, ends kadm.ListedOffsets) (time.Time, map[uint64]int, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.dstOpts...),
		kgo.ConsumerGroup(r.sc.Group),
		kgo.ConsumeTopics(r.destTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: destination consumer: %w", ErrScenario, err)
	}
	defer closeBounded(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	})
	// Where the group must get to: the end of every destination partition.
	need := make(map[where]bool)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			need[where{o.Topic, o.Partition, o.Offset}] = true
		}
	})
	pos := make(map[checkpoint.TP]int64)
	for tp, eo := range trans {
		pos[checkpoint.TP{Topic: r.pl.DestTopic(tp.Topic), Partition: tp.Partition}] = eo.Offset
	}
	reached := func() bool {
		for w := range need {
			if pos[checkpoint.TP{Topic: w.topic, Partition: w.partition}] < w.offset {
				return false
			}
		}
		return true
	}
	got := make(map[uint64]int)
	var first time.Time
	deadline := time.Now().Add(60 * time.Second)
	for !reached() {
		if time.Now().After(deadline) {
			return first, got, fmt.Errorf("%w: the destination consumer did not reach the end within 60s", ErrScenario)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return first, got, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if first.IsZero() {
				first = time.Now()
			}
			if seq, ok := decodeValue(rec.Value); ok {
				got[seq]++
			}
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			pos[tp] = max(pos[tp], rec.Offset+1)
		})
		if recs := fs.Records(); len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				r.log.Warn("destination consumer commit", "err", err)
			}
		}
	}
	if first.IsZero() {
		first = time.Now() // nothing was left to read: resumed when positioned
	}
	return first, got, nil
}
