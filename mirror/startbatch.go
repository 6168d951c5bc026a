package mirror

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.opentelemetry.io/otel/attribute"

	"strait/checkpoint"
	"strait/pipelines"
)

// Starting many tasks at once. Tasks that discovery creates without a
// checkpoint have their start resolved together: one ListOffsets per
// source broker for where they begin, one per destination broker for the
// destination's ends, and one checkpoint save for all of them; each task
// is then running without a request of its own. A task whose offsets did
// not come back (an error for its partition, a failed request) starts by
// itself through task.start, as a task with a checkpoint always does.
//
// Each start is logged at DEBUG; each round of starts (the tasks one
// discovery created) ends with one INFO line per pipeline: how many tasks
// started and how long the round took.

// startRound counts the starts of the tasks discovery created, for the
// summary line. A leaf lock.
type startRound struct {
	sync.Mutex
	pending, started, failed int
	began                    time.Time
}

// startsAdded: discovery created n tasks.
func (p *pipeline) startsAdded(n int, now time.Time) {
	if n == 0 {
		return
	}
	p.starts.Lock()
	if p.starts.pending == 0 {
		p.starts.began = now
	}
	p.starts.pending += n
	p.starts.Unlock()
}

// settleLocked reports the task's first start outcome, once: ok when it
// runs, false when it stopped (a gap, a stranger) or was removed first.
func (t *task) settleLocked(ok bool) {
	if t.mu.settled {
		return
	}
	t.mu.settled = true
	p := t.p
	p.starts.Lock()
	defer p.starts.Unlock()
	if ok {
		p.starts.started++
	} else {
		p.starts.failed++
	}
	p.starts.pending--
	if p.starts.pending > 0 {
		return
	}
	took := time.Since(p.starts.began).Round(time.Millisecond)
	if p.starts.failed > 0 {
		p.log.Info("partition tasks started", "partitions", p.starts.started, "not_started", p.starts.failed, "took", took.String())
	} else {
		p.log.Info("partition tasks started", "partitions", p.starts.started, "took", took.String())
	}
	p.starts.started, p.starts.failed, p.starts.pending = 0, 0, 0
}

// begin makes the task run from pos with offset map m, unless it started
// meanwhile (an operator's resume woke it first); false then.
func (t *task) begin(pos checkpoint.Position, m *checkpoint.OffsetMap, fromCheckpoint bool) bool {
	t.mu.Lock()
	if t.mu.haveStart {
		t.mu.Unlock()
		return false
	}
	t.omap = m
	t.mu.pos, t.mu.writePos, t.mu.fetchPos = pos, pos.Source, pos.Source
	t.mu.haveStart, t.mu.dirty = true, true
	t.mu.gen++
	t.mu.lc.started()
	t.mu.lc.success()
	t.settleLocked(true)
	t.mu.Unlock()
	t.p.log.Debug("partition task started", "topic", t.tp.Topic, "partition", t.tp.Partition,
		"source_offset", pos.Source, "dest_offset", pos.Dest, "from_checkpoint", fromCheckpoint)
	return true
}

// startFresh resolves the start of tasks without a checkpoint in batches
// and returns those it could not start, for their own goroutines.
func (p *pipeline) startFresh(ctx context.Context, ts []*task) (left []*task) {
	if len(ts) == 0 {
		return nil
	}
	ctx, span := startSpan(ctx, "mirror.tasks.start", attribute.String("pipeline", p.cfg.Name),
		attribute.Int("partitions", len(ts)))
	defer func() { span.SetAttributes(attribute.Int("left", len(left))); endSpan(span, nil) }()
	var topics, dests []string
	seen := map[string]bool{}
	for _, t := range ts {
		if !seen[t.tp.Topic] {
			seen[t.tp.Topic] = true
			topics, dests = append(topics, t.tp.Topic), append(dests, t.dest)
		}
	}
	src, err := p.sourceStarts(ctx, topics)
	if err != nil {
		p.log.Debug("listing source start offsets failed; tasks start one by one", "err", err)
		return ts
	}
	dst, err := p.dadm.ListEndOffsets(ctx, dests...)
	if err != nil {
		p.log.Debug("listing destination end offsets failed; tasks start one by one", "err", err)
		return ts
	}
	st := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{}}
	type ready struct {
		t   *task
		pos checkpoint.Position
		m   *checkpoint.OffsetMap
	}
	var rs []ready
	for _, t := range ts {
		so, ok := src[t.tp]
		do, dok := dst.Lookup(t.dest, t.tp.Partition)
		if !ok || !dok || do.Err != nil {
			left = append(left, t)
			continue
		}
		pos := checkpoint.Position{Source: so, Dest: do.Offset}
		m := &checkpoint.OffsetMap{}
		m.Begin(pos)
		st.Partitions[t.tp] = &checkpoint.Partition{Pos: pos, Map: m.Clone(), DestTopic: t.dest}
		rs = append(rs, ready{t, pos, m})
	}
	// As for one task (task.start): the starts are saved before the
	// first write, so a crash before the first periodic save still finds
	// them and the next run accounts for what this one wrote.
	if p.store != nil && len(rs) > 0 {
		if err := p.store.Save(ctx, p.cfg.Name, st); err != nil {
			p.log.Debug("saving start positions failed; tasks start one by one", "err", err)
			return ts
		}
	}
	for _, r := range rs {
		r.t.begin(r.pos, r.m, false)
	}
	p.wakeFetchers()
	return left
}

// sourceStarts lists where the pipeline's start puts each partition of
// topics: earliest, latest, or the first offset at or after a time (the
// end when nothing is that recent). Partitions with an error are left out.
func (p *pipeline) sourceStarts(ctx context.Context, topics []string) (map[checkpoint.TP]int64, error) {
	out := map[checkpoint.TP]int64{}
	var lo, ends kadm.ListedOffsets
	var err error
	switch p.cfg.Start.Kind {
	case pipelines.StartLatest:
		lo, err = p.sadm.ListEndOffsets(ctx, topics...)
	case pipelines.StartTime:
		if lo, err = p.sadm.ListOffsetsAfterMilli(ctx, p.cfg.Start.Time.UnixMilli(), topics...); err == nil {
			ends, err = p.sadm.ListEndOffsets(ctx, topics...)
		}
	default:
		lo, err = p.sadm.ListStartOffsets(ctx, topics...)
	}
	if err != nil {
		return nil, err
	}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		off := o.Offset
		if off < 0 { // nothing at or after the start time
			e, ok := ends.Lookup(o.Topic, o.Partition)
			if !ok || e.Err != nil {
				return
			}
			off = e.Offset
		}
		out[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}] = off
	})
	return out, nil
}
