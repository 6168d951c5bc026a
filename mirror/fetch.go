package mirror

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

const (
	fetchMaxWait      = 500 * time.Millisecond // Kafka's fetch.max.wait.ms
	fetchBusyWait     = 2 * time.Millisecond
	fetchPartitionMax = 1 << 20
	fetchRequestMax   = 16 << 20
	queueDepth        = 2 // fetched chunks a task may hold ahead of its writes
)

// chunk is one partition's share of a fetch response, handed to its task.
type chunk struct {
	gen      uint64 // the task generation it was fetched for
	from     int64  // the fetch offset
	end      int64  // offset after the last complete batch (== from if none)
	data     []byte
	aborted  []kmsg.FetchResponseTopicPartitionAbortedTransaction
	hw       int64
	logStart int64
	errCode  int16
	size     int64 // bytes charged to the pipeline budget
}

// ensureFetcherLocked starts the fetch loop for a source broker once.
func (p *pipeline) ensureFetcherLocked(ctx context.Context, broker int32) {
	if broker < 0 {
		return
	}
	if _, ok := p.mu.fetchers[broker]; ok {
		return
	}
	wake := make(chan struct{}, 1)
	p.mu.fetchers[broker] = wake
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.fetchLoop(ctx, broker, wake)
	}()
}

// wakeFetchers nudges every fetch loop (budget freed, task ready, stop).
func (p *pipeline) wakeFetchers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.mu.fetchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// fetchLoop is one source broker's fetcher: it fetches, in one request,
// every partition led by that broker whose task has room, READ_COMMITTED,
// and hands each partition's bytes to its task. Fetching stops while the
// pipeline's unacknowledged bytes exceed limits.buffer, so a destination
// outage stalls reading instead of filling memory.
//
// Requests ride a fetch session (KIP-227) where the broker offers one: after
// the first full request, each request lists only the partitions whose
// fetch offset changed (or that joined), names those that left as
// forgotten, and the broker answers only for partitions with news. An idle
// long poll over thousands of partitions then costs a few bytes each way.
func (p *pipeline) fetchLoop(ctx context.Context, broker int32, wake chan struct{}) {
	fails := 0
	sess := newFetchSession()
	// tasks is reused by every request: an idle poll over thousands of
	// partitions then allocates no map.
	tasks := map[checkpoint.TP]*task{}
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	for ctx.Err() == nil && !p.stopping.Load() {
		req := p.buildFetch(broker, sess, tasks)
		if req == nil {
			// Leaders or states may have changed silently: look again
			// within a second even without a wake-up.
			idle.Reset(time.Second)
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-idle.C:
			}
			continue
		}
		resp, err := req.RequestWith(ctx, p.src.Broker(int(broker)))
		if err == nil {
			err = sess.answered(resp)
		}
		if err != nil {
			sess.reset()
			for _, t := range tasks {
				t.fetchDone(nil)
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errSessionLost) {
				// The broker evicted or forgot the session: the
				// next request opens a new one with every partition.
				continue
			}
			fails++
			p.reach.src.Store(false)
			p.setErr("fetch: " + err.Error())
			p.requestRefresh()
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryBackoff(fails)):
			}
			continue
		}
		fails = 0
		p.reach.src.Store(true)
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			for j := range rt.Partitions {
				rp := &rt.Partitions[j]
				tp := checkpoint.TP{Topic: rt.Topic, Partition: rp.Partition}
				t := tasks[tp]
				if t == nil {
					continue
				}
				delete(tasks, tp)
				c := &chunk{data: rp.RecordBatches, aborted: rp.AbortedTransactions, hw: rp.HighWatermark,
					logStart: rp.LogStartOffset, errCode: rp.ErrorCode}
				switch err := kerr.ErrorForCode(rp.ErrorCode); err {
				case nil, kerr.OffsetOutOfRange:
				default:
					if kerr.IsRetriable(err) || err == kerr.UnknownTopicOrPartition || err == kerr.NotLeaderForPartition {
						p.requestRefresh()
					}
				}
				t.fetchDone(c)
			}
		}
		// Partitions the response left out had nothing new.
		for _, t := range tasks {
			t.fetchDone(nil)
		}
	}
}

// buildFetch collects the partitions of broker whose tasks want data into
// tasks (emptied first) and frames them as the next request of sess.
func (p *pipeline) buildFetch(broker int32, sess *fetchSession, tasks map[checkpoint.TP]*task) *kmsg.FetchRequest {
	clear(tasks)
	room := p.budget.room()
	if room <= 0 || p.stopping.Load() {
		return nil
	}
	p.mu.Lock()
	ts := p.mu.byLeader[broker]
	p.mu.Unlock()
	now := time.Now()
	want := sess.wantMap(len(ts))
	anyBusy := false
	for _, t := range ts {
		off, ok, busy := t.claimFetch(broker, now)
		anyBusy = anyBusy || busy
		if !ok {
			continue
		}
		tasks[t.tp] = t
		want[t.tp] = off
	}
	if len(tasks) == 0 {
		return nil
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(fetchMaxWait / time.Millisecond)
	if anyBusy {
		// A partition left out of this request (busy, or starting)
		// will want data soon, and a long poll on the idle ones would
		// keep it waiting: a request in flight cannot take it in.
		req.MaxWaitMillis = int32(fetchBusyWait / time.Millisecond)
	}
	req.MinBytes = 1
	req.MaxBytes = int32(min(room, fetchRequestMax))
	req.IsolationLevel = 1 // READ_COMMITTED
	sess.frame(req, want)
	return req
}

// claimFetch: the fetcher asks whether to fetch this partition now. busy
// reports a partition left out that will want data within moments: one
// still starting, or one holding enough unwritten chunks.
func (t *task) claimFetch(broker int32, now time.Time) (off int64, ok, busy bool) {
	writerFailed := t.w.failed() != nil
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
	if t.mu.inflight || writerFailed || !t.mu.lc.canCopy(now) {
		return 0, false, false
	}
	if len(t.mu.queue) >= queueDepth {
		return 0, false, true
	}
	if t.stopping.Load() {
		return 0, false, false
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
		t.notifyLocked()
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
	t.notifyLocked()
}
