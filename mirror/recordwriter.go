package mirror

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// decompressor serves every decode of fetched batches.
var decompressor = kgo.DefaultDecompressor()

// originCluster returns the cluster part of a record's provenance header
// (checkpoint.ProvenanceHeader, "<source cluster>/<pipeline>").
func originCluster(hs []kgo.RecordHeader) (string, bool) {
	for _, h := range hs {
		if h.Key == checkpoint.ProvenanceHeader {
			v := h.Value
			if i := bytes.IndexByte(v, '/'); i >= 0 {
				v = v[:i]
			}
			return string(v), true
		}
	}
	return "", false
}

// recordWriter is record mode's writer: it decodes a chunk (franz-go's
// decoder: decompression, control records and aborted transactions
// dropped, READ_COMMITTED) and re-produces each record into the same
// partition through the pipeline's idempotent producer, stamped with the
// provenance header. The task's position advances in the producer's
// promises, in source order.
//
// Lock order: recordWriter.mu before task.mu.
type recordWriter struct {
	t      *task
	origin []byte // provenance header value: "<source cluster>/<pipeline>"

	mu struct {
		sync.Mutex
		// pending holds the writes (and skips) in source order from head;
		// ackIdx is the next produced entry whose promise is due.
		pending []*ackEntry
		head    int
		ackIdx  int
		// err: a write failed for good; set until the task reconciled.
		err error
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

func newRecordWriter(t *task) *recordWriter {
	return &recordWriter{t: t, origin: []byte(t.p.srcC.Name + "/" + t.p.cfg.Name)}
}

func (w *recordWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

func (w *recordWriter) reconciled() {
	w.mu.Lock()
	w.mu.err = nil
	w.mu.pending, w.mu.head, w.mu.ackIdx = nil, 0, 0
	w.mu.Unlock()
}

// reconcileOptions: record mode leaves out source records stamped with the
// destination's provenance (loop prevention), and tells its copies on the
// destination by the provenance header every copy carries (a local record
// has none).
func (w *recordWriter) reconcileOptions() checkpoint.ReconcileOptions {
	p := w.t.p
	var o checkpoint.ReconcileOptions
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

func (w *recordWriter) write(ctx context.Context, c *chunk) error {
	t := w.t
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: t.writePosition(), IsolationLevel: kgo.ReadCommitted(), Topic: t.tp.Topic, Partition: t.tp.Partition,
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
	t.auditRecords(fp.Records, c.end)
	if !t.throttle(ctx, int(c.size)) || !t.waitLease(ctx) {
		t.p.budget.add(-c.size)
		return ErrStopped
	}
	var rctx context.Context // the records' own: ends at a fence
	if t.p.e.fleet != nil {
		rctx = t.p.e.fleet.writeContext()
	}
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
	w.mu.Lock()
	t.mu.Lock()
	for i, r := range fp.Records {
		e := &ents[i]
		oc, stamped := originCluster(r.Headers)
		if stamped && oc == t.p.dstC.Name {
			e.skipTo, e.done = r.Offset+1, true
			w.pushLocked(e)
			continue
		}
		start := len(hbuf)
		hbuf = append(hbuf, r.Headers...)
		if !stamped {
			hbuf = append(hbuf, kgo.RecordHeader{Key: checkpoint.ProvenanceHeader, Value: w.origin})
		}
		out := &outs[i]
		out.Topic, out.Partition, out.Key, out.Value, out.Timestamp = t.dest, t.tp.Partition, r.Key, r.Value, r.Timestamp
		out.Headers = hbuf[start:len(hbuf):len(hbuf)]
		out.Context = rctx
		e.src, e.size, e.ts, e.produced = r.Offset, int64(len(r.Key)+len(r.Value)), r.Timestamp, true
		w.pushLocked(e)
		send = append(send, out)
	}
	// The chunk's tail (control records, aborted data, dropped records)
	// is passed once everything before it is acknowledged.
	tail := &ents[n]
	tail.skipTo, tail.release, tail.done = c.end, c.size, true
	w.pushLocked(tail)
	t.mu.Unlock()
	w.drainLocked(time.Now())
	w.mu.Unlock()
	for _, out := range send {
		t.p.rprod.Produce(pctx, out, w.promise)
	}
	return nil
}

// pushLocked queues e and moves the task's write position past it; w.mu
// and task.mu are held.
func (w *recordWriter) pushLocked(e *ackEntry) {
	t := w.t
	w.mu.pending = append(w.mu.pending, e)
	if e.skipTo > t.mu.writePos {
		t.mu.writePos = e.skipTo
	} else if e.produced && e.src >= t.mu.writePos {
		t.mu.writePos = e.src + 1
	}
}

// promise receives the producer's outcome for the oldest record of this
// partition still in flight: franz-go finishes one partition's records in
// the order they were produced.
func (w *recordWriter) promise(r *kgo.Record, err error) {
	w.mu.Lock()
	q := w.mu.pending
	w.mu.ackIdx = max(w.mu.ackIdx, w.mu.head)
	for w.mu.ackIdx < len(q) && (!q[w.mu.ackIdx].produced || q[w.mu.ackIdx].done) {
		w.mu.ackIdx++
	}
	if w.mu.ackIdx >= len(q) {
		w.mu.Unlock()
		return // forgotten by a recovery
	}
	e := q[w.mu.ackIdx]
	w.mu.ackIdx++
	e.done, e.dst, e.err = true, r.Offset, err
	if err != nil {
		w.mu.err = fmt.Errorf("produce: %w", err)
	}
	w.drainLocked(time.Now())
	w.mu.Unlock()
	if err != nil {
		w.t.setLastErr("produce: " + err.Error())
		w.t.errs.Add(1)
		w.t.notify()
	}
}

// drainLocked applies completed writes in source order; it stops at the
// first one still in flight or failed, so the position never passes a
// record the destination has not acknowledged. w.mu is held.
func (w *recordWriter) drainLocked(now time.Time) {
	t := w.t
	var release, recs int64
	q := w.mu.pending
	i := w.mu.head
	t.mu.Lock()
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
		}
		release += e.release
		q[i] = nil
	}
	if recs > 0 {
		t.mu.lc.success()
	}
	t.mu.Unlock()
	w.mu.head = i
	// Compact once the drained head dominates, so the queue stays a
	// plain slice without quadratic copying.
	if w.mu.head == len(q) {
		w.mu.pending, w.mu.head, w.mu.ackIdx = q[:0], 0, 0
	} else if w.mu.head > 4096 && w.mu.head*2 > len(q) {
		shift := w.mu.head
		n := copy(q, q[shift:])
		clear(q[n:])
		w.mu.pending, w.mu.head = q[:n], 0
		w.mu.ackIdx = max(w.mu.ackIdx-shift, 0)
	}
	if release > 0 {
		t.p.budget.add(-release)
		go t.p.wakeFetchers()
	}
}

// recover: a write failed for good. Wait until every write in flight has
// an outcome, forget them all (the task reconciles from the last
// acknowledged position next), and have the producer re-read metadata.
func (w *recordWriter) recover(ctx context.Context) error {
	w.t.p.rprod.ForceMetadataRefresh()
	for {
		w.mu.Lock()
		busy := false
		var release int64
		for _, e := range w.mu.pending[w.mu.head:] {
			if !e.done {
				busy = true
			}
			release += e.release
		}
		if !busy {
			w.mu.pending, w.mu.head, w.mu.ackIdx = nil, 0, 0
			w.t.p.budget.add(-release)
		}
		w.mu.Unlock()
		if !busy {
			return nil
		}
		if !w.t.wait(ctx, time.Second) {
			return ErrStopped
		}
	}
}
