package mirror

import (
	"bytes"
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// OriginHeader is the provenance header record mode adds to every record it
// writes: "<source cluster>/<pipeline>" (checkpoint.Reconcile ignores it
// when it compares copies with their sources). A record whose origin cluster is the
// pipeline's destination came from there and is not copied back (loop
// prevention for active-active). A record that already carries the header
// keeps its first origin.
const OriginHeader = checkpoint.ProvenanceHeader

// originCluster returns the cluster part of a record's origin header.
func originCluster(hs []kgo.RecordHeader) (string, bool) {
	for _, h := range hs {
		if h.Key == OriginHeader {
			v := h.Value
			if i := bytes.IndexByte(v, '/'); i >= 0 {
				v = v[:i]
			}
			return string(v), true
		}
	}
	return "", false
}

// copyRecords decodes a chunk (kgo's decoder: decompression, control records
// and aborted transactions dropped, READ_COMMITTED) and re-produces each
// record into the same partition through the idempotent producer. Positions
// advance in the promises, in source order.
var decompressor = kgo.DefaultDecompressor()

func (t *task) copyRecords(ctx context.Context, c *chunk) error {
	t.mu.Lock()
	from := t.mu.writePos
	t.mu.Unlock()
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: from, IsolationLevel: kgo.ReadCommitted(), Topic: t.tp.Topic, Partition: t.tp.Partition,
	}, &kmsg.FetchResponseTopicPartition{
		Partition: t.tp.Partition, HighWatermark: c.hw, LastStableOffset: c.hw, LogStartOffset: c.logStart,
		AbortedTransactions: c.aborted, RecordBatches: c.data,
	}, decompressor, nil)
	if fp.Err != nil {
		t.p.budget.add(-c.size)
		t.p.wakeFetchers()
		t.wait(ctx, t.failure("decode", fp.Err))
		t.mu.Lock()
		t.dropQueueLocked()
		t.mu.Unlock()
		return fp.Err
	}
	if !t.throttle(ctx, int(c.size)) {
		t.p.budget.add(-c.size)
		return ErrStopped
	}
	origin := []byte(t.p.srcC.Name + "/" + t.p.cfg.Name)
	pctx := t.p.produceCtx // not ctx: a stop waits for writes already queued
	// One allocation per chunk for entries, records and headers; the
	// entries go on the queue under one lock, then the records to the
	// producer, whose promises come back in order per partition.
	n := len(fp.Records)
	ents := make([]ackEntry, n+1)
	outs := make([]kgo.Record, n)
	nh := 0
	for _, r := range fp.Records {
		nh += len(r.Headers) + 1
	}
	hbuf := make([]kgo.RecordHeader, 0, nh)
	send := make([]*kgo.Record, 0, n)
	t.mu.Lock()
	for i, r := range fp.Records {
		e := &ents[i]
		if oc, ok := originCluster(r.Headers); ok && oc == t.p.dstC.Name {
			e.skipTo, e.done = r.Offset+1, true
			t.pushLocked(e)
			continue
		}
		start := len(hbuf)
		hbuf = append(hbuf, r.Headers...)
		if _, ok := originCluster(r.Headers); !ok {
			hbuf = append(hbuf, kgo.RecordHeader{Key: OriginHeader, Value: origin})
		}
		out := &outs[i]
		out.Topic, out.Partition, out.Key, out.Value, out.Timestamp = t.dest, t.tp.Partition, r.Key, r.Value, r.Timestamp
		out.Headers = hbuf[start:len(hbuf):len(hbuf)]
		e.src, e.size, e.ts, e.produced = r.Offset, int64(len(r.Key)+len(r.Value)), r.Timestamp, true
		t.pushLocked(e)
		send = append(send, out)
	}
	// The chunk's tail (control records, aborted data, dropped records)
	// is passed once everything before it is acknowledged.
	tail := &ents[n]
	tail.skipTo, tail.release, tail.done = c.end, c.size, true
	t.pushLocked(tail)
	t.drainLocked(time.Now())
	t.mu.Unlock()
	for _, out := range send {
		t.p.rprod.Produce(pctx, out, t.promise)
	}
	return nil
}

func (t *task) pushLocked(e *ackEntry) {
	t.mu.pending = append(t.mu.pending, e)
	if e.skipTo > t.mu.writePos {
		t.mu.writePos = e.skipTo
	} else if e.produced && e.src >= t.mu.writePos {
		t.mu.writePos = e.src + 1
	}
}

// promise receives the producer's outcome for the oldest record of this
// partition still in flight: franz-go finishes one partition's records in
// the order they were produced.
func (t *task) promise(r *kgo.Record, err error) {
	t.mu.Lock()
	q := t.mu.pending
	if t.mu.ackIdx < t.mu.phead {
		t.mu.ackIdx = t.mu.phead
	}
	for t.mu.ackIdx < len(q) && (!q[t.mu.ackIdx].produced || q[t.mu.ackIdx].done) {
		t.mu.ackIdx++
	}
	if t.mu.ackIdx >= len(q) {
		t.mu.Unlock()
		return // dropped by a resync
	}
	e := q[t.mu.ackIdx]
	t.mu.ackIdx++
	t.mu.Unlock()
	t.ack(e, r.Offset, err)
}

func (t *task) ack(e *ackEntry, dst int64, err error) {
	t.mu.Lock()
	e.done, e.dst, e.err = true, dst, err
	if err != nil {
		t.mu.resync = true
		t.mu.lastErr = "produce: " + err.Error()
	}
	t.drainLocked(time.Now())
	t.mu.Unlock()
	if err != nil {
		t.p.e.met.errors.Add(context.Background(), 1, t.attrs)
		t.notify()
	}
}

// drainLocked applies completed writes in source order; it stops at the
// first one still in flight or failed, so the position never passes a
// record the destination has not acknowledged.
func (t *task) drainLocked(now time.Time) {
	var release, recs, bytes int64
	q := t.mu.pending
	i := t.mu.phead
	for ; i < len(q); i++ {
		e := q[i]
		if !e.done || e.err != nil {
			break
		}
		if e.skipTo > 0 {
			if e.skipTo > t.mu.pos.Source {
				t.mu.pos.Source = e.skipTo
				t.mu.dirty = true
			}
		} else {
			t.omap.Add(e.src, e.dst, 1)
			t.ackedLocked(e.src+1, e.dst+1, 1, e.size, e.ts, now)
			recs++
			bytes += e.size
		}
		release += e.release
		q[i] = nil
	}
	t.mu.phead = i
	// Compact once the drained head dominates, so the queue stays a
	// plain slice without quadratic copying.
	if t.mu.phead == len(q) {
		t.mu.pending, t.mu.phead, t.mu.ackIdx = q[:0], 0, 0
	} else if t.mu.phead > 4096 && t.mu.phead*2 > len(q) {
		shift := t.mu.phead
		n := copy(q, q[shift:])
		clear(q[n:])
		t.mu.pending, t.mu.phead = q[:n], 0
		t.mu.ackIdx = max(t.mu.ackIdx-shift, 0)
	}
	if recs > 0 {
		t.mu.lc.success()
		t.p.e.met.records.Add(context.Background(), recs, t.attrs)
		t.p.e.met.bytes.Add(context.Background(), bytes, t.attrs)
	}
	if release > 0 {
		t.p.budget.add(-release)
		go t.p.wakeFetchers()
	}
}

func (t *task) needResync() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.resync
}

// resyncRecords: a write failed for good. Wait until every write in flight
// has an outcome, then reconcile from the last acknowledged position.
func (t *task) resyncRecords(ctx context.Context) error {
	for {
		t.mu.Lock()
		busy := false
		var release int64
		for _, e := range t.mu.pending[t.mu.phead:] {
			if !e.done {
				busy = true
			}
			release += e.release
		}
		if !busy {
			t.mu.pending, t.mu.phead, t.mu.ackIdx = nil, 0, 0
			t.p.budget.add(-release)
		}
		t.mu.Unlock()
		if !busy {
			break
		}
		if !t.wait(ctx, time.Second) {
			return ErrStopped
		}
	}
	return t.reconcileFromAck(ctx)
}
