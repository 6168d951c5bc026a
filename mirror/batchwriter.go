package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// batchWriter is batch mode's writer: it forwards the source's record
// batches (producer fields rewritten) under the pipeline's idempotent
// producer session, one produce request per batch, each acknowledged
// before the next, so sequence numbers never have a hole and a retry of
// the same bytes is one the destination drops as a duplicate.
//
// The sequence numbers are the pipeline's, per destination partition
// (producerSession), so that a later task of the same partition goes on
// from where this one stopped.
type batchWriter struct {
	t *task

	mu struct {
		sync.Mutex
		// lost is set when the destination dropped session lostGen, and
		// cleared once the task reconciled: until then the next write
		// could repeat a batch that landed unacknowledged.
		lost    error
		lostGen uint64
	}
}

func (w *batchWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.lost
}

func (w *batchWriter) reconciled() {
	w.mu.Lock()
	w.mu.lost = nil
	w.mu.Unlock()
}

// recover takes a new producer id, unless another task already did so
// after the session this writer lost.
func (w *batchWriter) recover(ctx context.Context) error {
	w.mu.Lock()
	gen := w.mu.lostGen
	w.mu.Unlock()
	p := w.t.p
	return p.retry(ctx, "destination init producer id", func() error { return p.initProducer(ctx, gen) })
}

// reconcileOptions: batch mode leaves out the source batches written by
// the mirror's own producers (loop prevention), and tells its records on
// the destination by producer id, which initProducer stores before the
// first write with it.
func (w *batchWriter) reconcileOptions() checkpoint.ReconcileOptions {
	p := w.t.p
	var o checkpoint.ReconcileOptions
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

// write forwards one chunk's batches in order (planBatches says which to
// skip, forward whole or re-encode from the write position).
func (w *batchWriter) write(ctx context.Context, c *chunk) error {
	t := w.t
	defer func() {
		t.p.budget.add(-c.size)
		t.p.wakeFetchers()
	}()
	t.auditChunk(c)
	batches, err := splitBatches(c.data)
	if err != nil && len(batches) == 0 {
		return err
	}
	own := func(pid int64) bool { return t.p.e.ownPIDs.has(t.p.srcC.Name, pid) }
	for _, s := range planBatches(batches, t.writePosition(), c.aborted, own) {
		if s.Skip {
			t.passed(s.Batch.End())
			continue
		}
		if err := w.writeBatch(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (w *batchWriter) writeBatch(ctx context.Context, s step) error {
	t := w.t
	k := seqKey{topic: t.dest, partition: t.tp.Partition}
	id, epoch, gen, seq, ok := t.p.sequence(k)
	if !ok {
		// An earlier task of this partition stopped waiting for a
		// batch's answer (a handoff or fence while the destination was
		// slow). If it landed, this batch at the same sequence could be
		// taken for its retry and dropped: a new session, then the
		// destination says what landed.
		t.p.log.Info("last batch under this producer session has no known outcome; renewing the session",
			"topic", t.tp.Topic, "partition", t.tp.Partition, "producer_id", id, "sequence", seq)
		return w.lose(gen, fmt.Errorf("%w: batch at sequence %d of %s[%d] has no known outcome", ErrProducerSession, seq, t.dest, t.tp.Partition))
	}
	from := max(s.From, t.writePosition())

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
			t.passed(s.Batch.End())
			return nil
		}
		payload, span = encodeBatch(recs, id, epoch, seq), int32(len(recs))
	}
	if !t.throttle(ctx, len(payload)) {
		return ErrStopped
	}
	// Unsure until answered: a task that stops waiting leaves it so.
	t.p.setSequence(k, partSeq{gen: gen, next: seq, unsure: true})
	base, err := w.produce(ctx, payload)
	if errors.Is(err, ErrProducerSession) {
		return w.lose(gen, err)
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	dest := t.mu.pos.Dest // only this goroutine moves it
	t.mu.Unlock()
	if base < dest {
		// The destination took this batch for the retry of an older one
		// of the session (the same sequence range) and wrote nothing:
		// an acknowledgement below what is already acknowledged cannot
		// be this batch's. The position stays; the session is renewed
		// and the destination reconciled.
		t.p.log.Error("destination acknowledged a batch as a duplicate of an earlier one; renewing the producer session",
			"topic", t.tp.Topic, "partition", t.tp.Partition, "producer_id", id, "sequence", seq, "offset", base, "dest_offset", dest)
		return w.lose(gen, fmt.Errorf("%w: batch at sequence %d of %s[%d] acknowledged at offset %d, below %d", ErrProducerSession, seq, t.dest, t.tp.Partition, base, dest))
	}
	t.p.setSequence(k, partSeq{gen: gen, next: nextSeq(seq, span)})
	now := time.Now()
	t.mu.Lock()
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
	return nil
}

// lose marks producer session gen lost for this writer: until the task has
// recovered (a new session) and reconciled, it writes nothing.
func (w *batchWriter) lose(gen uint64, err error) error {
	w.mu.Lock()
	w.mu.lost, w.mu.lostGen = err, gen
	w.mu.Unlock()
	return err
}

// produce sends one batch to the destination leader, retrying the same
// bytes (same sequence: the broker drops a duplicate) until acknowledged.
func (w *batchWriter) produce(ctx context.Context, payload []byte) (int64, error) {
	t := w.t
	for {
		leader := t.p.destLeader(t.dest, t.tp.Partition)
		var base int64
		var err error
		if !t.waitLease(ctx) {
			return 0, ErrStopped
		}
		if leader < 0 {
			err = kerr.LeaderNotAvailable
		} else {
			base, err = w.request(ctx, leader, payload)
		}
		switch {
		case err == nil:
			t.p.reach.dst.Store(true)
			t.success()
			return base, nil
		case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID),
			errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping),
			errors.Is(err, kerr.DuplicateSequenceNumber):
			t.failure("produce", err)
			return 0, fmt.Errorf("%w: %v", ErrProducerSession, err)
		case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge), errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
			t.errs.Add(1)
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
				t.p.reach.dst.Store(false)
				t.errs.Add(1)
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
		if ctx.Err() != nil || t.stopping.Load() {
			return 0, ErrStopped
		}
	}
}

// request sends one produce request with payload to the leader and returns
// the base offset the destination gave it, or the partition's error.
func (w *batchWriter) request(ctx context.Context, leader int32, payload []byte) (int64, error) {
	t := w.t
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
	// The request in flight is waited for even when stopping, so its
	// outcome is known and checkpointed.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, t.p.dst.Broker(int(leader)))
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("produce: malformed response")
	}
	part := resp.Topics[0].Partitions[0]
	return part.BaseOffset, kerr.ErrorForCode(part.ErrorCode)
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
