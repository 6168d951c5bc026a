package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"strait/checkpoint"
)

// task mirrors one source partition into the same partition of the
// destination topic. Its goroutine is the driver: it writes fetched chunks
// and feeds outcomes to the pure lifecycle. The goroutine runs only while
// the task has work (a start, chunks to write, a failure to back off from):
// notify starts it when none runs, and it ends once nothing is left, so an
// idle partition holds no goroutine, stack or timer.
type task struct {
	p    *pipeline
	tp   checkpoint.TP
	dest string
	omap *checkpoint.OffsetMap
	w    writer       // the pipeline mode's, built once
	errs atomic.Int64 // failures counted for the errors metric

	// stopping is set once by stop; the driver and the fetchers check it.
	stopping atomic.Bool
	finished bool // under ch's lock; here, where it packs with stopping
	// ch holds the channels that wait on a stop: made only when something
	// selects on them (a waiting driver, a handoff), so an idle task, the
	// common case at 10,000 partitions, holds none.
	ch struct {
		sync.Mutex
		quit chan struct{} // closed once stopping
		// done is closed once the task has stopped for good (quit or
		// the pipeline's end seen by its driver), so a handoff can wait
		// for the write in flight.
		done chan struct{}
	}

	mu struct {
		sync.Mutex
		lc lifecycle
		// signal (cap 1) wakes a waiting driver; made by its first wait.
		signal    chan struct{}
		running   bool  // the driver goroutine is alive
		kicked    bool  // work arrived since the goroutine last looked
		settled   bool  // the first start's outcome went to the summary
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

		rateAt              time.Time
		rateRecs, rateBytes int64
		rps, bps            float64
	}
}

func newTask(p *pipeline, tp checkpoint.TP, dest string) *task {
	t := &task{p: p, tp: tp, dest: dest, omap: &checkpoint.OffsetMap{}}
	t.mu.lc = newLifecycle(p.e.opts.maxFailures(), p.e.opts.cooldown(), p.mu.paused)
	t.mu.leader = -1
	t.w = newWriter(t)
	return t
}

// notify says the task has something to look at (a chunk arrived, an ack
// landed, an operator acted): it wakes the task's goroutine, or starts one.
func (t *task) notify() {
	t.mu.Lock()
	t.notifyLocked()
	t.mu.Unlock()
}

func (t *task) notifyLocked() {
	t.mu.kicked = true
	if t.mu.signal != nil {
		select {
		case t.mu.signal <- struct{}{}:
		default:
		}
	}
	if t.mu.running {
		return
	}
	if t.p.goTask(t) {
		t.mu.running = true
		return
	}
	// The pipeline stopped: no driver will run again.
	t.finish()
}

// finish marks the task stopped for good.
func (t *task) finish() {
	t.ch.Lock()
	if !t.finished {
		t.finished = true
		if t.ch.done != nil {
			close(t.ch.done)
		}
	}
	t.ch.Unlock()
}

// doneChan is closed once the task has stopped for good.
func (t *task) doneChan() <-chan struct{} {
	t.ch.Lock()
	defer t.ch.Unlock()
	if t.ch.done == nil {
		t.ch.done = make(chan struct{})
		if t.finished {
			close(t.ch.done)
		}
	}
	return t.ch.done
}

// quitChan is closed once the task is stopping.
func (t *task) quitChan() <-chan struct{} {
	t.ch.Lock()
	defer t.ch.Unlock()
	if t.ch.quit == nil {
		t.ch.quit = make(chan struct{})
		if t.stopping.Load() {
			close(t.ch.quit)
		}
	}
	return t.ch.quit
}

// signalChan is the channel that wakes the driver's waits. Made by the
// first wait; it holds a wake-up when work arrived since the driver last
// looked, as it would had it existed all along.
func (t *task) signalChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.signal == nil {
		t.mu.signal = make(chan struct{}, 1)
		if t.mu.kicked {
			t.mu.signal <- struct{}{}
		}
	}
	return t.mu.signal
}

// park ends the driver goroutine unless work arrived since it last looked;
// false: look again.
func (t *task) park() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.kicked {
		return false
	}
	t.mu.running = false
	return true
}

// stop ends the task: a goroutine starts, if none runs, to drop what it
// had fetched.
func (t *task) stop() {
	t.ch.Lock()
	if !t.stopping.Swap(true) && t.ch.quit != nil {
		close(t.ch.quit)
	}
	t.ch.Unlock()
	t.notify()
}

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

// run is the task's driver loop; it returns when the task has nothing
// left to do (parked) or stops.
func (t *task) run(ctx context.Context) {
	for {
		if !t.runOnce(ctx) {
			t.mu.Lock()
			t.dropQueueLocked()
			t.mu.running = false
			t.mu.Unlock()
			t.p.wakeFetchers()
			t.finish()
			return
		}
		if t.park() {
			return
		}
	}
}

// runOnce does the work there is until none is left; false when stopping.
func (t *task) runOnce(ctx context.Context) bool {
	for {
		if ctx.Err() != nil || t.stopping.Load() {
			return false
		}
		t.mu.Lock()
		t.mu.kicked = false
		haveStart, state := t.mu.haveStart, t.mu.lc.state
		t.mu.Unlock()
		if !haveStart && state != StateFailed {
			if err := t.start(ctx); err != nil {
				if !t.wait(ctx, t.failure("start", err)) {
					return false
				}
			}
			continue
		}
		if state == StateFailed {
			return true // until an operator resumes it; then it starts over
		}
		if err := t.w.failed(); err != nil {
			if !t.wait(ctx, t.failure("write", err)) || !t.recover(ctx) {
				return false
			}
			continue
		}
		c, retryIn := t.next()
		if c == nil {
			if retryIn <= 0 {
				return true
			}
			// Auto-paused with chunks queued: look again when it may copy.
			if !t.wait(ctx, retryIn) {
				return false
			}
			continue
		}
		if c.errCode == kerr.OffsetOutOfRange.Code {
			t.outOfRange(ctx)
			continue
		}
		err := t.w.write(ctx, c)
		if errors.Is(err, ErrProducerSession) && !t.recover(ctx) {
			return false
		}
		if err != nil && ctx.Err() != nil {
			return false
		}
	}
}

// recover brings the writer back after a failure and reconciles the
// task's position with the destination; false when stopping.
func (t *task) recover(ctx context.Context) bool {
	err := t.w.recover(ctx)
	if err == nil {
		err = t.reconcileFromAck(ctx)
	}
	return err == nil || t.wait(ctx, t.failure("reconcile", err))
}

// wait sleeps up to d, waking early for signals; false when stopping.
func (t *task) wait(ctx context.Context, d time.Duration) bool {
	sig, quit := t.signalChan(), t.quitChan()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-quit:
		return false
	case <-sig:
	case <-tm.C:
	}
	return true
}

// failure feeds a failure to the lifecycle and returns the wait.
func (t *task) failure(what string, err error) time.Duration {
	t.errs.Add(1)
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

// next pops the oldest current chunk, if any and if copying is allowed;
// retryIn > 0: chunks wait for an auto-pause to end in that long.
func (t *task) next() (c *chunk, retryIn time.Duration) {
	t.mu.Lock()
	now := time.Now()
	if !t.mu.lc.canCopy(now) {
		if len(t.mu.queue) > 0 && !t.mu.lc.userPaused && t.mu.lc.state == StateAutoPaused {
			retryIn = max(t.mu.lc.retryAt.Sub(now), time.Millisecond)
		}
		t.mu.Unlock()
		return nil, retryIn
	}
	for len(t.mu.queue) > 0 {
		c := t.mu.queue[0]
		t.mu.queue = t.mu.queue[1:]
		if c.gen == t.mu.gen {
			t.mu.Unlock()
			t.p.wakeFetchers() // room for another chunk
			return c, 0
		}
		t.p.budget.add(-c.size)
	}
	t.mu.Unlock()
	return nil, 0
}

// throttle waits for the pipeline's byte-rate bucket.
func (t *task) throttle(ctx context.Context, n int) bool {
	t.p.bucket.Lock()
	d := t.p.bucket.b.take(n, time.Now())
	t.p.bucket.Unlock()
	if d <= 0 {
		return true
	}
	quit := t.quitChan()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-quit:
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

// writePosition is the next source offset to hand to the destination.
func (t *task) writePosition() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.writePos
}

// passed moves the position to end past source records there is nothing
// to write for (control, aborted, loop-prevented or compacted away).
func (t *task) passed(end int64) {
	t.mu.Lock()
	if end > t.mu.pos.Source {
		t.ackedLocked(end, t.mu.pos.Dest, 0, 0, time.Time{}, time.Now())
	}
	t.mu.Unlock()
}

func (t *task) setLastErr(s string) {
	t.mu.Lock()
	t.mu.lastErr = s
	t.mu.Unlock()
}
