package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"strait/checkpoint"
	"strait/pipelines"
)

// task mirrors one source partition into the same partition of the
// destination topic. Its goroutine is the driver: it waits for fetched
// chunks, writes them, and feeds outcomes to the pure lifecycle.
type task struct {
	p     *pipeline
	tp    checkpoint.TP
	dest  string
	omap  *checkpoint.OffsetMap
	attrs metric.MeasurementOption

	signal   chan struct{} // cap 1: a chunk arrived, an ack landed or an operator acted
	quit     chan struct{}
	quitOnce sync.Once

	mu struct {
		sync.Mutex
		lc        *lifecycle
		leader    int32 // source leader
		haveStart bool
		// Invariant: pos.Source <= writePos <= fetchPos. pos only moves
		// past records the destination acknowledged.
		pos      checkpoint.Position
		writePos int64  // next source offset to hand to the destination
		fetchPos int64  // next source offset to fetch
		gen      uint64 // bumps whenever queued chunks become stale
		inflight bool
		claimGen uint64
		queue    []*chunk
		hw       int64
		logStart int64
		dirty    bool

		lastTs       time.Time // timestamp of the newest acknowledged record
		lastProgress time.Time
		records      int64
		bytes        int64
		gapRecords   int64
		lastErr      string

		seq  int32 // batch mode: next base sequence for the session pgen
		pgen uint64

		pending []*ackEntry // record mode: writes in source order, from phead
		phead   int
		ackIdx  int  // next produced entry whose promise is due
		resync  bool // record mode: a write failed; reconcile

		rateAt              time.Time
		rateRecs, rateBytes int64
		rps, bps            float64
	}
}

// ackEntry is one record-mode write (or a skip) awaiting its turn.
type ackEntry struct {
	src, dst int64
	skipTo   int64 // a skip entry: position moves to skipTo
	produced bool  // handed to the producer; its promise completes it
	size     int64
	release  int64 // budget bytes to return when drained
	ts       time.Time
	done     bool
	err      error
}

func newTask(p *pipeline, tp checkpoint.TP, dest string) *task {
	t := &task{p: p, tp: tp, dest: dest, omap: &checkpoint.OffsetMap{},
		attrs:  p.e.attrs(p.cfg.Name, tp.Topic, tp.Partition),
		signal: make(chan struct{}, 1), quit: make(chan struct{})}
	t.mu.lc = newLifecycle(p.e.opts.maxFailures(), p.e.opts.cooldown(), p.mu.paused)
	t.mu.leader = -1
	return t
}

func (t *task) notify() {
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

func (t *task) stop() { t.quitOnce.Do(func() { close(t.quit) }) }

func (t *task) setLeader(l int32) {
	t.mu.Lock()
	t.mu.leader = l
	t.mu.Unlock()
}

func (t *task) pause() {
	t.mu.Lock()
	t.mu.lc.pause()
	t.mu.Unlock()
	t.notify()
}

func (t *task) resume() {
	t.mu.Lock()
	wasGap, wasFailed := t.mu.lc.resume()
	if wasGap {
		// Continue from the source log start; the offset map records the
		// jump as a breakpoint on the next acknowledged write.
		from := max(t.mu.logStart, t.mu.pos.Source)
		if t.mu.pos.Source > t.mu.hw {
			from = t.mu.logStart // the log was re-created below our position
		}
		t.p.log.Warn("resuming after a gap", "topic", t.tp.Topic, "partition", t.tp.Partition, "from", from)
		t.mu.pos.Source, t.mu.writePos, t.mu.fetchPos = from, from, from
		t.mu.dirty = true
		t.dropQueueLocked()
	}
	if wasFailed {
		t.mu.haveStart = false
	}
	t.mu.Unlock()
	t.notify()
	t.p.wakeFetchers()
}

// dropQueueLocked discards fetched chunks (they were read for a position
// that no longer holds) and returns their bytes to the budget.
func (t *task) dropQueueLocked() {
	t.mu.gen++
	var n int64
	for _, c := range t.mu.queue {
		n += c.size
	}
	t.mu.queue = nil
	t.mu.fetchPos = t.mu.writePos
	if n > 0 {
		t.p.budget.add(-n)
	}
}

// claimFetch: the fetcher asks whether to fetch this partition now. busy
// reports a partition left out that will want data within moments: one
// still starting, or one holding enough unwritten chunks.
func (t *task) claimFetch(broker int32, now time.Time) (off int64, ok, busy bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.leader != broker {
		return 0, false, false
	}
	if !t.mu.haveStart {
		// Starting now: it will want data within a moment, and a long
		// poll without it cannot be interrupted.
		return 0, false, t.mu.lc.state == StateStarting
	}
	if t.mu.inflight || t.mu.resync || !t.mu.lc.canCopy(now) {
		return 0, false, false
	}
	if len(t.mu.queue) >= queueDepth {
		return 0, false, true
	}
	select {
	case <-t.quit:
		return 0, false, false
	default:
	}
	t.mu.inflight, t.mu.claimGen = true, t.mu.gen
	return t.mu.fetchPos, true, false
}

// fetchDone: the fetcher hands over this partition's response (nil: none).
func (t *task) fetchDone(c *chunk) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.inflight = false
	if c == nil || t.mu.claimGen != t.mu.gen {
		return
	}
	if c.hw >= 0 {
		t.mu.hw = c.hw
	}
	if c.logStart > t.mu.logStart {
		t.mu.logStart = c.logStart
		t.omap.TrimBelow(c.logStart)
	}
	c.gen, c.from = t.mu.gen, t.mu.fetchPos
	switch c.errCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		c.data = nil
		t.mu.queue = append(t.mu.queue, c)
		t.notify()
		return
	default:
		t.mu.lastErr = kerr.ErrorForCode(c.errCode).Error()
		return
	}
	batches, err := splitBatches(c.data)
	if err != nil {
		t.mu.lastErr = err.Error()
	}
	if len(batches) == 0 {
		return
	}
	last := batches[len(batches)-1]
	c.end = last.End()
	n := 0
	for _, b := range batches {
		n += len(b.Bytes)
	}
	c.data = c.data[:n]
	c.size = int64(n)
	t.p.budget.add(c.size)
	t.mu.fetchPos = c.end
	t.mu.queue = append(t.mu.queue, c)
	t.notify()
}

// run is the task's driver loop.
func (t *task) run(ctx context.Context) {
	defer func() {
		t.mu.Lock()
		t.dropQueueLocked()
		t.mu.Unlock()
		t.p.wakeFetchers()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.quit:
			return
		default:
		}
		t.mu.Lock()
		haveStart, state := t.mu.haveStart, t.mu.lc.state
		t.mu.Unlock()
		if !haveStart && state != StateFailed {
			if err := t.start(ctx); err != nil {
				if !t.wait(ctx, t.failure("start", err)) {
					return
				}
			}
			continue
		}
		if t.p.mode() == pipelines.ModeRecord && t.needResync() {
			t.mu.Lock()
			werr := t.mu.lastErr
			t.mu.Unlock()
			t.p.rprod.ForceMetadataRefresh()
			if !t.wait(ctx, t.failure("write", errors.New(werr))) {
				return
			}
			if err := t.resyncRecords(ctx); err != nil && !t.wait(ctx, t.failure("reconcile", err)) {
				return
			}
			continue
		}
		c := t.next()
		if c == nil {
			if !t.wait(ctx, time.Second) {
				return
			}
			continue
		}
		if c.errCode == kerr.OffsetOutOfRange.Code {
			t.outOfRange(ctx)
			continue
		}
		var err error
		if t.p.mode() == pipelines.ModeRecord {
			err = t.copyRecords(ctx, c)
		} else {
			err = t.copyBatches(ctx, c)
		}
		if err != nil {
			if errors.Is(err, ErrProducerSession) {
				if err := t.resyncBatches(ctx); err != nil && !t.wait(ctx, t.failure("reconcile", err)) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// wait sleeps up to d, waking early for signals; false when stopping.
func (t *task) wait(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.quit:
		return false
	case <-t.signal:
	case <-tm.C:
	}
	return true
}

// failure feeds a failure to the lifecycle and returns the wait.
func (t *task) failure(what string, err error) time.Duration {
	t.p.e.met.errors.Add(context.Background(), 1, t.attrs)
	t.mu.Lock()
	t.mu.lastErr = fmt.Sprintf("%s: %v", what, err)
	d := t.mu.lc.failure(t.mu.lastErr, time.Now())
	t.mu.Unlock()
	if d.AutoPause {
		t.p.log.Warn("partition auto-paused", "topic", t.tp.Topic, "partition", t.tp.Partition, "reason", t.mu.lastErr)
	}
	return d.Wait
}

func (t *task) success() {
	t.mu.Lock()
	t.mu.lc.success()
	t.mu.Unlock()
}

// next pops the oldest current chunk, if any and if copying is allowed.
func (t *task) next() *chunk {
	t.mu.Lock()
	if !t.mu.lc.canCopy(time.Now()) {
		t.mu.Unlock()
		return nil
	}
	for len(t.mu.queue) > 0 {
		c := t.mu.queue[0]
		t.mu.queue = t.mu.queue[1:]
		if c.gen == t.mu.gen {
			t.mu.Unlock()
			t.p.wakeFetchers() // room for another chunk
			return c
		}
		t.p.budget.add(-c.size)
	}
	t.mu.Unlock()
	return nil
}

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
		np, err := checkpoint.ReconcileWith(ctx, p.src, p.dst, t.tp, t.dest, cp.Pos, m, t.reconcileOptions())
		switch {
		case errors.Is(err, checkpoint.ErrStranger):
			t.mu.Lock()
			t.mu.lc.fail(err.Error())
			t.mu.lastErr = err.Error()
			t.mu.Unlock()
			p.e.met.errors.Add(ctx, 1, t.attrs)
			p.log.Error("destination partition written by another producer; not writing", "topic", t.tp.Topic,
				"partition", t.tp.Partition, "dest_topic", t.dest, "err", err)
			return nil
		case errors.Is(err, checkpoint.ErrSourceTruncated):
			// The source lost records after the checkpoint: the same
			// loud gap as a fetch below the log start.
			t.mu.Lock()
			t.mu.pos, t.mu.writePos, t.mu.fetchPos = cp.Pos, cp.Pos.Source, cp.Pos.Source
			t.omap = m
			t.mu.haveStart = true
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
			st := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{
				t.tp: {Pos: pos, Map: m.Clone(), DestTopic: t.dest},
			}}
			if err := p.store.Save(ctx, p.cfg.Name, st); err != nil {
				return err
			}
		}
	}
	t.mu.Lock()
	t.omap = m
	t.mu.pos, t.mu.writePos, t.mu.fetchPos = pos, pos.Source, pos.Source
	t.mu.haveStart, t.mu.dirty = true, true
	t.mu.gen++
	t.mu.lc.started()
	t.mu.lc.success()
	t.mu.Unlock()
	p.log.Info("partition task started", "topic", t.tp.Topic, "partition", t.tp.Partition,
		"source_offset", pos.Source, "dest_offset", pos.Dest, "from_checkpoint", cp != nil)
	p.wakeFetchers()
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
	t.p.e.met.gapRecords.Add(ctx, lost, t.attrs)
	t.p.e.met.errors.Add(ctx, 1, t.attrs)
	t.p.log.Error("source records lost before they were mirrored; partition stopped until resumed",
		"topic", t.tp.Topic, "partition", t.tp.Partition, "position", pos, "log_start", ls, "high_watermark", hw, "lost", lost)
}

// throttle waits for the pipeline's byte-rate bucket.
func (t *task) throttle(ctx context.Context, n int) bool {
	t.p.bucket.Lock()
	d := t.p.bucket.b.take(n, time.Now())
	t.p.bucket.Unlock()
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.quit:
		return false
	case <-tm.C:
		return true
	}
}

// acked records an acknowledged write of source [src, end) at dst.
func (t *task) ackedLocked(end, dstEnd int64, recs int64, bytes int64, ts time.Time, now time.Time) {
	t.mu.pos = checkpoint.Position{Source: end, Dest: dstEnd}
	if t.mu.writePos < end {
		t.mu.writePos = end
	}
	t.mu.dirty = true
	if recs > 0 {
		t.mu.records += recs
		t.mu.bytes += bytes
		t.mu.lastProgress = now
		if ts.After(t.mu.lastTs) {
			t.mu.lastTs = ts
		}
	}
}

func (t *task) status(now time.Time) PartitionStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	if dt := now.Sub(t.mu.rateAt); dt >= time.Second || t.mu.rateAt.IsZero() {
		if !t.mu.rateAt.IsZero() {
			t.mu.rps = float64(t.mu.records-t.mu.rateRecs) / dt.Seconds()
			t.mu.bps = float64(t.mu.bytes-t.mu.rateBytes) / dt.Seconds()
		}
		t.mu.rateAt, t.mu.rateRecs, t.mu.rateBytes = now, t.mu.records, t.mu.bytes
	}
	lag := max(t.mu.hw-t.mu.pos.Source, 0)
	var tl time.Duration
	if lag > 0 && !t.mu.lastTs.IsZero() {
		tl = max(now.Sub(t.mu.lastTs), 0)
	}
	s := PartitionStatus{Topic: t.tp.Topic, Partition: t.tp.Partition, DestTopic: t.dest,
		State: t.mu.lc.shown(), SourceOffset: t.mu.pos.Source, DestOffset: t.mu.pos.Dest,
		HighWatermark: t.mu.hw, Lag: lag, TimeLag: tl, RecordsPerSec: t.mu.rps, BytesPerSec: t.mu.bps,
		RecordsTotal: t.mu.records, LastError: t.mu.lastErr, GapRecords: t.mu.gapRecords,
		LastProgressAt: t.mu.lastProgress}
	if s.State == StateAutoPaused || s.State == StateGap || s.State == StateFailed {
		s.PausedReason = t.mu.lc.reason
	} else if s.State == StatePaused {
		s.PausedReason = "paused by operator"
	}
	return s
}

// ---- batch mode ----

// copyBatches writes one chunk's batches in order, one produce request per
// batch (Kafka takes one batch per partition per request), each acknowledged
// before the next so sequence numbers never have a hole.
func (t *task) copyBatches(ctx context.Context, c *chunk) error {
	defer func() {
		t.p.budget.add(-c.size)
		t.p.wakeFetchers()
	}()
	batches, err := splitBatches(c.data)
	if err != nil && len(batches) == 0 {
		return err
	}
	own := func(pid int64) bool { return t.p.e.ownPIDs.has(t.p.srcC.Name, pid) }
	t.mu.Lock()
	from := t.mu.writePos
	t.mu.Unlock()
	for _, s := range planBatches(batches, from, c.aborted, own) {
		if s.Skip {
			t.mu.Lock()
			if s.Batch.End() > t.mu.pos.Source {
				t.ackedLocked(s.Batch.End(), t.mu.pos.Dest, 0, 0, time.Time{}, time.Now())
			}
			t.mu.Unlock()
			continue
		}
		if err := t.writeBatch(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (t *task) writeBatch(ctx context.Context, s step) error {
	id, epoch, gen := t.p.producer()
	t.mu.Lock()
	if t.mu.pgen != gen {
		t.mu.pgen, t.mu.seq = gen, 0
	}
	seq := t.mu.seq
	from := max(s.From, t.mu.writePos)
	t.mu.Unlock()

	var payload []byte
	var recs []*kgo.Record
	var span int32 // offset span written: lastOffsetDelta+1
	if s.Whole {
		rewriteBatch(s.Batch.Bytes, id, epoch, seq)
		payload, span = s.Batch.Bytes, s.Batch.LastDelta+1
	} else {
		var err error
		recs, err = decodeBatch(s.Batch, from, t.tp.Topic, t.tp.Partition)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			t.mu.Lock()
			t.ackedLocked(s.Batch.End(), t.mu.pos.Dest, 0, 0, time.Time{}, time.Now())
			t.mu.Unlock()
			return nil
		}
		payload, span = encodeBatch(recs, id, epoch, seq), int32(len(recs))
	}
	if !t.throttle(ctx, len(payload)) {
		return ErrStopped
	}
	base, err := t.produce(ctx, payload)
	if err != nil {
		return err
	}
	now := time.Now()
	t.mu.Lock()
	t.mu.seq = nextSeq(seq, span)
	var n int64
	if s.Whole {
		t.omap.Add(s.Batch.Base, base, int64(span))
		n = int64(s.Batch.Count)
	} else {
		for _, r := range runs(recs) {
			t.omap.Add(r[0], base+r[1], r[2])
		}
		n = int64(len(recs))
	}
	t.ackedLocked(s.Batch.End(), base+int64(span), n, int64(len(payload)), time.UnixMilli(s.Batch.MaxTs), now)
	t.mu.Unlock()
	t.p.e.met.records.Add(ctx, n, t.attrs)
	t.p.e.met.bytes.Add(ctx, int64(len(payload)), t.attrs)
	return nil
}

// produce sends one batch to the destination leader, retrying the same
// bytes (same sequence: the broker drops a duplicate) until acknowledged.
func (t *task) produce(ctx context.Context, payload []byte) (int64, error) {
	for {
		leader := t.p.destLeader(t.dest, t.tp.Partition)
		var code int16
		var base int64
		var err error
		if leader < 0 {
			err = kerr.LeaderNotAvailable
		} else {
			req := kmsg.NewPtrProduceRequest()
			req.Acks = -1
			req.TimeoutMillis = 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = t.dest
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = t.tp.Partition
			rp.Records = payload
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			// The request in flight is waited for even when stopping, so
			// its outcome is known and checkpointed.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
			var resp *kmsg.ProduceResponse
			resp, err = req.RequestWith(rctx, t.p.dst.Broker(int(leader)))
			cancel()
			if err == nil {
				if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
					err = fmt.Errorf("produce: malformed response")
				} else {
					rp := resp.Topics[0].Partitions[0]
					code, base = rp.ErrorCode, rp.BaseOffset
					err = kerr.ErrorForCode(code)
				}
			}
		}
		switch {
		case err == nil:
			t.p.connected.Store(true)
			t.success()
			return base, nil
		case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID),
			errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping),
			errors.Is(err, kerr.DuplicateSequenceNumber):
			t.failure("produce", err)
			return 0, fmt.Errorf("%w: %v", ErrProducerSession, err)
		case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge), errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
			t.p.e.met.errors.Add(ctx, 1, t.attrs)
			t.mu.Lock()
			t.mu.lastErr = fmt.Sprintf("%v: %v (%d bytes)", ErrTooLarge, err, len(payload))
			d := t.mu.lc.hardPause(t.mu.lastErr, time.Now())
			t.mu.Unlock()
			t.p.log.Error("partition auto-paused: destination refuses a batch", "topic", t.tp.Topic,
				"partition", t.tp.Partition, "bytes", len(payload), "err", err)
			if !t.waitCopy(ctx, d.Wait) {
				return 0, ErrStopped
			}
		default:
			if kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) || leader < 0 {
				t.p.refreshDestLeaders(ctx, t.dest)
			}
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				// No answer from the destination (down, unreachable,
				// timed out): not this partition's fault.
				t.p.connected.Store(false)
				t.p.e.met.errors.Add(ctx, 1, t.attrs)
				t.mu.Lock()
				t.mu.lastErr = "produce: " + err.Error()
				d := t.mu.lc.unreachable()
				t.mu.Unlock()
				if !t.waitCopy(ctx, d.Wait) {
					return 0, ErrStopped
				}
			} else if !t.waitCopy(ctx, t.failure("produce", err)) {
				return 0, ErrStopped
			}
		}
		select {
		case <-ctx.Done():
			return 0, ErrStopped
		case <-t.quit:
			return 0, ErrStopped
		default:
		}
	}
}

// waitCopy waits d, or until copying is allowed again after an operator
// resume; false when stopping.
func (t *task) waitCopy(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		if !t.wait(ctx, left) {
			return false
		}
		t.mu.Lock()
		ok := t.mu.lc.canCopy(time.Now()) && t.mu.lc.state == StateRunning
		t.mu.Unlock()
		if ok {
			return true
		}
	}
}

// resyncBatches: the destination dropped the producer session. Get a new
// producer id, find out what of the unacknowledged write landed, and
// continue from there.
func (t *task) resyncBatches(ctx context.Context) error {
	_, _, gen := t.p.producer()
	if err := t.p.retry(ctx, "init producer id", func() error { return t.p.initProducer(ctx, gen) }); err != nil {
		return err
	}
	return t.reconcileFromAck(ctx)
}

// reconcileOptions tell checkpoint.ReconcileWith which source records loop
// prevention leaves out (record mode: stamped with the destination's
// provenance; batch mode: written by this mirror's own producers), so
// that it pairs the destination's records past them as the copy did.
//
// With loop protection on (active-active), local producers write the
// destination partitions too; their records are Foreign and not paired.
// Record mode tells the mirror's records by the provenance header every
// copy carries (a local record has none); batch mode by producer id, which
// initProducer stores before the first write with it.
func (t *task) reconcileOptions() checkpoint.ReconcileOptions {
	p := t.p
	var o checkpoint.ReconcileOptions
	if p.mode() == pipelines.ModeRecord {
		o.Skip = func(r *kgo.Record) bool {
			oc, ok := originCluster(r.Headers)
			return ok && oc == p.dstC.Name
		}
		if p.cfg.LoopProtection {
			o.Foreign = func(r *kgo.Record) bool {
				_, ok := originCluster(r.Headers)
				return !ok
			}
		}
		return o
	}
	o.Skip = func(r *kgo.Record) bool {
		return p.e.ownPIDs.has(p.srcC.Name, r.ProducerID)
	}
	if p.cfg.LoopProtection {
		o.Foreign = func(r *kgo.Record) bool {
			return !p.e.ownPIDs.has(p.dstC.Name, r.ProducerID)
		}
	}
	return o
}

func (t *task) reconcileFromAck(ctx context.Context) error {
	t.mu.Lock()
	pos := t.mu.pos
	m := t.omap.Clone()
	t.mu.Unlock()
	np, err := checkpoint.ReconcileWith(ctx, t.p.src, t.p.dst, t.tp, t.dest, pos, m, t.reconcileOptions())
	if err != nil {
		if errors.Is(err, checkpoint.ErrStranger) {
			t.mu.Lock()
			t.mu.lc.fail(err.Error())
			t.mu.lastErr = err.Error()
			t.mu.Unlock()
			t.p.log.Error("destination partition written by another producer; not writing", "topic", t.tp.Topic, "partition", t.tp.Partition, "err", err)
			return nil
		}
		return err
	}
	t.mu.Lock()
	t.omap = m
	t.mu.pos, t.mu.writePos = np, np.Source
	t.mu.dirty = true
	t.dropQueueLocked()
	t.mu.resync = false
	t.mu.pending, t.mu.phead, t.mu.ackIdx = nil, 0, 0
	t.mu.Unlock()
	t.p.log.Info("partition reconciled with the destination", "topic", t.tp.Topic, "partition", t.tp.Partition,
		"source_offset", np.Source, "dest_offset", np.Dest)
	t.p.wakeFetchers()
	return nil
}
