package drill

import (
	"context"
	"sort"
	"time"
)

// watch looks at the engine every 100ms, so that the catch-up is timed
// finely, and hands Tick a snapshot every second. The first time the
// mirror is caught up it closes caughtUpOnce.
func (r *run) watch(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	backlogStart := int64(-1)
	seen := false
	var lastAcked int64
	last := time.Now()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			snap := r.snapshot()
			if snap.Phase == PhaseBacklog && snap.Lag > backlogStart {
				// The largest lag seen while draining: partitions join
				// the engine's status one by one.
				backlogStart = snap.Lag
			}
			snap.BacklogStart = max(backlogStart, 0)
			if !seen && r.caughtUp(snap) {
				seen = true
				r.caughtUpAt = now
				close(r.caughtUpOnce)
			}
			if n%10 != 0 {
				continue
			}
			snap.ProduceRate = float64(snap.Acked-lastAcked) / now.Sub(last).Seconds()
			lastAcked, last = snap.Acked, now
			if r.sc.Tick != nil {
				r.sc.Tick(snap)
			}
		}
	}
}

func (r *run) snapshot() Snapshot {
	s := Snapshot{
		Elapsed:  time.Since(r.start),
		Phase:    Phase(r.phase.Load()),
		Consumed: r.consumed.Load(),
	}
	r.mu.Lock()
	s.Acked = int64(len(r.mu.acked))
	r.mu.Unlock()
	for _, p := range r.eng.Status() {
		if p.Name != r.sc.Pipeline {
			continue
		}
		for _, t := range p.Partitions {
			s.Partitions = append(s.Partitions, t)
			s.Mirrored += t.RecordsTotal
			s.MirrorRate += t.RecordsPerSec
			s.Lag += t.Lag
		}
	}
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return s
}

// caughtUp: every partition of the scenario's topics is known to the engine
// and it has copied all but half a second of the acknowledged records. The
// count comes from what was copied, not from lag: a task that has not yet
// seen its high watermark reports no lag either. (The scenario's topics are
// new, so everything the engine copied is theirs.)
func (r *run) caughtUp(s Snapshot) bool {
	want := 0
	for _, t := range r.sc.Topics {
		want += int(t.Partitions)
	}
	return len(s.Partitions) >= want && s.Acked-s.Mirrored <= int64(r.sc.Rate/2)
}
