package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.opentelemetry.io/otel/attribute"

	"strait/checkpoint"
	"strait/pipelines"
)

// Where a task's position comes from: the pipeline's start or its
// checkpoint when it starts, the destination after a failed write, and the
// source's log start after a gap.

// start decides where the task begins: after reconciling its checkpoint,
// or at the pipeline's start position.
func (t *task) start(ctx context.Context) (err error) {
	p := t.p
	ctx, span := startSpan(ctx, "mirror.task.start", attribute.String("pipeline", p.cfg.Name),
		attribute.String("topic", t.tp.Topic), attribute.Int("partition", int(t.tp.Partition)))
	defer func() { endSpan(span, err) }()
	p.mu.Lock()
	var cp *checkpoint.Partition
	if p.mu.state0 != nil {
		cp = p.mu.state0.Partitions[t.tp]
	}
	p.mu.Unlock()
	var pos checkpoint.Position
	m := &checkpoint.OffsetMap{}
	if cp != nil && cp.DestTopic == t.dest {
		if cp.Map != nil {
			m = cp.Map.Clone()
		}
		np, err := checkpoint.ReconcileWith(ctx, p.src, p.dst, t.tp, t.dest, cp.Pos, m, t.w.reconcileOptions())
		switch {
		case errors.Is(err, checkpoint.ErrStranger):
			t.stranger(ctx, err)
			return nil
		case errors.Is(err, checkpoint.ErrSourceTruncated):
			// The source lost records after the checkpoint: the same
			// loud gap as a fetch below the log start.
			t.mu.Lock()
			t.mu.pos, t.mu.writePos, t.mu.fetchPos = cp.Pos, cp.Pos.Source, cp.Pos.Source
			t.omap = m
			t.mu.haveStart = true
			t.settleLocked(false)
			t.mu.Unlock()
			t.outOfRange(ctx)
			return nil
		case err != nil:
			return err
		}
		pos = np
	} else {
		so, err := t.startOffset(ctx)
		if err != nil {
			return err
		}
		de, err := listOffset(ctx, p.dadm, t.dest, t.tp.Partition, -1)
		if err != nil {
			return err
		}
		pos = checkpoint.Position{Source: so, Dest: de}
		m.Begin(pos)
		// Save the start before the first write: a crash before the first
		// periodic save must still find a checkpoint, or the next start
		// could not account for the records this run wrote and would copy
		// them again.
		if p.store != nil {
			if !p.mayWrite() {
				return ErrStopped // fenced before the first write
			}
			st := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{
				t.tp: {Pos: pos, Map: m.Clone(), DestTopic: t.dest},
			}}
			if err := p.store.Save(ctx, p.cfg.Name, st); err != nil {
				return err
			}
		}
	}
	if t.begin(pos, m, cp != nil) {
		p.wakeFetchers()
	}
	return nil
}

// startOffset resolves the pipeline's start: earliest, latest or a time.
func (t *task) startOffset(ctx context.Context) (int64, error) {
	switch t.p.cfg.Start.Kind {
	case pipelines.StartLatest:
		return listOffset(ctx, t.p.sadm, t.tp.Topic, t.tp.Partition, -1)
	case pipelines.StartTime:
		lo, err := t.p.sadm.ListOffsetsAfterMilli(ctx, t.p.cfg.Start.Time.UnixMilli(), t.tp.Topic)
		if err != nil {
			return 0, err
		}
		o, ok := lo.Lookup(t.tp.Topic, t.tp.Partition)
		if !ok {
			return 0, fmt.Errorf("list offsets: %s/%d missing", t.tp.Topic, t.tp.Partition)
		}
		if o.Err != nil {
			return 0, o.Err
		}
		if o.Offset < 0 { // nothing at or after that time
			return listOffset(ctx, t.p.sadm, t.tp.Topic, t.tp.Partition, -1)
		}
		return o.Offset, nil
	default:
		return listOffset(ctx, t.p.sadm, t.tp.Topic, t.tp.Partition, -2)
	}
}

// listOffset returns a partition's log start (-2) or end (-1) offset.
func listOffset(ctx context.Context, adm *kadm.Client, topic string, part int32, which int) (int64, error) {
	var lo kadm.ListedOffsets
	var err error
	if which == -2 {
		lo, err = adm.ListStartOffsets(ctx, topic)
	} else {
		lo, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		return 0, err
	}
	o, ok := lo.Lookup(topic, part)
	if !ok {
		return 0, fmt.Errorf("list offsets: %s/%d missing", topic, part)
	}
	if o.Err != nil {
		return 0, o.Err
	}
	return o.Offset, nil
}

// outOfRange: the source refused our fetch offset. If the log start moved
// past it, records were lost before we copied them: report, stop in `gap`.
func (t *task) outOfRange(ctx context.Context) {
	ls, err1 := listOffset(ctx, t.p.sadm, t.tp.Topic, t.tp.Partition, -2)
	hw, err2 := listOffset(ctx, t.p.sadm, t.tp.Topic, t.tp.Partition, -1)
	if err := errors.Join(err1, err2); err != nil {
		t.wait(ctx, t.failure("list offsets", err))
		return
	}
	t.mu.Lock()
	t.mu.logStart, t.mu.hw = ls, hw
	pos := t.mu.writePos
	var lost int64
	var reason string
	switch {
	case pos < ls:
		lost = ls - pos
		reason = fmt.Sprintf("%v: source log start %d passed position %d (%d records)", ErrGap, ls, pos, lost)
	case pos > hw:
		reason = fmt.Sprintf("%v: source log ends at %d, below position %d (topic re-created or truncated)", ErrGap, hw, pos)
	default:
		t.mu.fetchPos = pos // transient; fetch again
		t.mu.Unlock()
		t.p.wakeFetchers()
		return
	}
	t.mu.gapRecords += lost
	t.mu.lc.gap(reason)
	t.mu.lastErr = reason
	t.dropQueueLocked()
	t.mu.Unlock()
	t.errs.Add(1)
	t.p.log.Error("source records lost before they were mirrored; partition stopped until resumed",
		"topic", t.tp.Topic, "partition", t.tp.Partition, "position", pos, "log_start", ls, "high_watermark", hw, "lost", lost)
}

// reconcileFromAck sets the position from the destination after a failed
// write: what of the unacknowledged writes landed, from the last
// acknowledged position on.
func (t *task) reconcileFromAck(ctx context.Context) error {
	t.mu.Lock()
	pos := t.mu.pos
	m := t.omap.Clone()
	t.mu.Unlock()
	np, err := checkpoint.ReconcileWith(ctx, t.p.src, t.p.dst, t.tp, t.dest, pos, m, t.w.reconcileOptions())
	if errors.Is(err, checkpoint.ErrStranger) {
		t.stranger(ctx, err)
		return nil
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.omap = m
	t.mu.pos, t.mu.writePos = np, np.Source
	t.mu.dirty = true
	t.dropQueueLocked()
	t.mu.Unlock()
	t.w.reconciled()
	t.p.log.Info("partition reconciled with the destination", "topic", t.tp.Topic, "partition", t.tp.Partition,
		"source_offset", np.Source, "dest_offset", np.Dest)
	t.p.wakeFetchers()
	return nil
}

// stranger: reconciliation found records on the destination partition that
// no copy accounts for, written by another producer. Writing on could
// interleave the copy with them, so the task fails and writes nothing more
// until an operator resumes it (then it starts over and looks again).
func (t *task) stranger(ctx context.Context, err error) {
	t.mu.Lock()
	t.mu.lc.fail(err.Error())
	t.mu.lastErr = err.Error()
	t.settleLocked(false)
	t.mu.Unlock()
	t.errs.Add(1)
	t.p.log.Error("destination partition written by another producer; not writing", "topic", t.tp.Topic,
		"partition", t.tp.Partition, "dest_topic", t.dest, "err", err)
}
