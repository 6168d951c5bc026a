package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
)

// destEnds lists where every destination partition ends after the cut:
// how far the group must read there, and the destination read back.
func (r *run) destEnds(ctx context.Context, dst *kgo.Client) (kadm.ListedOffsets, error) {
	ends, err := kadm.NewClient(dst).ListEndOffsets(ctx, r.destTopics()...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: destination end offsets: %w", ErrScenario, err)
	}
	return ends, nil
}

// readDest reads every destination partition from its start to ends and
// returns where each seq landed (a seq seen twice is a mirror duplicate,
// recorded under the key with a negative offset marker in dups).
func (r *run) readDest(ctx context.Context, dst *kgo.Client, ends kadm.ListedOffsets) (*destContent, error) {
	out := &destContent{at: make(map[uint64]where), seqAt: make(map[where]uint64), ends: make(map[checkpoint.TP]int64), starts: make(map[checkpoint.TP]int64)}
	parts := make(map[string]map[int32]kgo.Offset)
	need := 0
	ends.Each(func(o kadm.ListedOffset) {
		out.ends[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		if o.Offset <= 0 {
			return
		}
		if parts[o.Topic] == nil {
			parts[o.Topic] = make(map[int32]kgo.Offset)
		}
		parts[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		need++
	})
	if need == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.dstOpts...), kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination reader: %w", ErrScenario, err)
	}
	defer cl.Close()
	done := make(map[checkpoint.TP]bool)
	deadline := time.Now().Add(60 * time.Second)
	for len(done) < need {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: reading the destination back took over 60s", ErrScenario)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			w := where{rec.Topic, rec.Partition, rec.Offset}
			seq, ok := decodeValue(rec.Value)
			if !ok {
				out.corrupt++
			} else if _, dup := out.at[seq]; dup {
				out.dups++
			} else {
				out.at[seq] = w
			}
			out.seqAt[w] = seq
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			if s, ok := out.starts[tp]; !ok || rec.Offset < s {
				out.starts[tp] = rec.Offset
			}
			if rec.Offset+1 >= out.ends[tp] {
				done[tp] = true
			}
		})
	}
	return out, nil
}

type destContent struct {
	at      map[uint64]where // seq → its place on the destination
	seqAt   map[where]uint64
	ends    map[checkpoint.TP]int64
	starts  map[checkpoint.TP]int64 // first offset present (log start)
	dups    int64
	corrupt int64
}

// measure compares what was produced, mirrored and consumed.
func (r *run) measure(rep *Report, cut time.Time, dc *destContent, got map[uint64]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Produced = r.produced.Load()
	rep.Acked = int64(len(r.mu.acked))
	rep.Mirrored = int64(len(dc.at))
	rep.MirrorDuplicates = dc.dups
	rep.Corrupt = dc.corrupt
	// What the group had consumed at the cut: every source record below
	// its last acknowledged commit.
	done := make(map[uint64]bool)
	for w, seq := range r.mu.bySource {
		if w.offset < r.mu.committed[checkpoint.TP{Topic: w.topic, Partition: w.partition}] {
			done[seq] = true
		}
	}
	rep.ConsumedSource = int64(len(done))
	for _, n := range got {
		rep.ConsumedDest += int64(n)
	}

	var oldest time.Time
	for seq, a := range r.mu.acked {
		if _, ok := dc.at[seq]; !ok {
			rep.RPORecords++
			if oldest.IsZero() || a.ack.Before(oldest) {
				oldest = a.ack
			}
		}
	}
	if !oldest.IsZero() {
		rep.RPOWindow = max(cut.Sub(oldest), 0)
	}
	for seq, n := range got {
		if done[seq] {
			rep.Duplicates += int64(n)
		} else if n > 1 {
			rep.Duplicates += int64(n - 1)
		}
	}
	for seq := range dc.at {
		if !done[seq] && got[seq] == 0 {
			rep.Lost++
		}
	}

	// Translation: the record at the committed source offset must be the
	// first one the group reads on the destination; past what was
	// mirrored, the group must resume at the destination's end.
	rep.TranslationExact = true
	for i := range rep.Partitions {
		pr := &rep.Partitions[i]
		if pr.Committed < 0 {
			continue
		}
		exp := int64(-1)
		// The first source record at or after the committed offset that
		// reached the destination.
		var bestSrc int64 = -1
		for w, seq := range r.mu.bySource {
			if w.topic != pr.Topic || w.partition != pr.Partition || w.offset < pr.Committed {
				continue
			}
			d, ok := dc.at[seq]
			if !ok {
				continue
			}
			if bestSrc < 0 || w.offset < bestSrc {
				bestSrc, exp = w.offset, d.offset
			}
		}
		if exp < 0 {
			exp = dc.ends[checkpoint.TP{Topic: pr.DestTopic, Partition: pr.Partition}]
		}
		pr.Expected = exp
		pr.Resume = pr.Translated
		if pr.Resume < 0 {
			// Untranslatable (the mirror holds nothing for it): the group
			// resumes by its reset policy, at the destination's start.
			pr.Resume = dc.starts[checkpoint.TP{Topic: pr.DestTopic, Partition: pr.Partition}]
		}
		pr.Exact = pr.Resume == exp
		if !pr.Exact {
			rep.TranslationExact = false
		}
	}

	if rep.Lost > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d mirrored records were never consumed", rep.Lost))
	}
	if rep.Duplicates > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d records were consumed twice", rep.Duplicates))
	}
	if rep.MirrorDuplicates > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d records are on the destination twice", rep.MirrorDuplicates))
	}
	if rep.Corrupt > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d destination records fail their checksum", rep.Corrupt))
	}
	if !rep.TranslationExact {
		rep.Problems = append(rep.Problems, "offset translation was not exact for every partition")
	}
}
