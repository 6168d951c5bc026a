package brokerd

// Fetch (key 1), versions 4–12: the zero-copy core.
//
// For every requested partition the handler asks plog.Read for whole
// batches from the fetch offset up to the high watermark, within the
// partition's MaxBytes and what is left of the request's MaxBytes; the
// first partition that has data returns at least one batch even when it
// is larger than both limits (KIP-74). Before the response is queued, the
// chosen file spans are pulled into the page cache (see warm), so the
// connection's writer never waits on the disk. The writer then sends the
// hand-encoded framing around the record bytes with writev and each span
// with sendfile(2) at an explicit offset; spans are released once sent.
// With Config.CopyFetch (or TLS) the writer copies each span through one
// pooled chunk instead (the copy path), so a queued response holds file
// spans, never their bytes.
//
// The request's MaxBytes is capped by Limits.FetchMaxBytes (Kafka's
// fetch.max.bytes).
//
// Long poll: when fewer than MinBytes are ready, the handler waits (up to
// MaxWaitMillis, capped at 30s) for an append to any requested partition, on the
// connection's own goroutine; appends wake it through the partition's
// waiter set.
//
// Errors per partition: TOPIC_AUTHORIZATION_FAILED (authorizer on, no
// READ), UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
// (another broker leads it), OFFSET_OUT_OF_RANGE.
//
// Fetch sessions (KIP-227), from v7: see fetch_session.go. A session's
// incremental fetch reads and long-polls every partition of the session
// and answers only those that changed; the answer goes through the same
// encoder (and sendfile path) as a full one. Session errors
// (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH) are answered at
// the top level with no partitions.
//
// Isolation: every partition reports its last stable offset (the first
// offset of the oldest open transaction, or the high watermark). A
// READ_COMMITTED fetch (isolation level 1) returns batches only below the
// LSO, and lists the aborted transactions (producer id, first offset) from
// the partition's .txnindex whose marker is at or after the fetch offset
// and which start below the LSO; the client drops their records. A
// READ_UNCOMMITTED fetch reads to the high watermark with a null list.
// Control batches (markers) are returned as stored, as Kafka does.
//
// Not supported: topic IDs (v13+), follower fetching and preferred read
// replicas, record format down-conversion.

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/plog"
)

// maxFetchWaitMillis caps MaxWaitMillis.
const maxFetchWaitMillis = 30_000

// fetchPart is one partition's answer.
type fetchPart struct {
	index    int32
	err      int16
	hw       int64
	logStart int64
	lso      int64
	// aborted is the read_committed answer's aborted transactions; nil
	// encodes as a null array.
	aborted []plog.AbortedTxn
	read    *plog.ReadResult // nil when there are no records
	part    *partition       // nil when the partition is not served here
}

type fetchTopic struct {
	name  string
	parts []fetchPart
}

func (cc *conn) handleFetch(h header, req *kmsg.FetchRequest) *response {
	c := cc.b.c
	fc, code := cc.b.sessions.begin(req, time.Now(), c.exists)
	if code != 0 {
		return encodeFetch(h.corr, req.Version, code, 0, nil)
	}
	// An incremental fetch reads the whole session, not just what the
	// request lists.
	req = fc.req
	// A waiting fetch occupies the connection's reader, which therefore
	// cannot notice the client leaving; capping the wait bounds how long a
	// dead connection's fetch lingers. Answering early is always allowed.
	wait := time.Duration(min(max(req.MaxWaitMillis, 0), maxFetchWaitMillis)) * time.Millisecond
	var deadline time.Time
	var timer *time.Timer
	for {
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(wait)
		}
		if fc.mode == sessIncremental && cc.b.sessions.quiet(&fc, cc.b.id) {
			// Nothing to read or answer (fetch_idle.go).
			if req.MinBytes <= 0 || !now.Before(deadline) || cc.ctx.Err() != nil {
				if timer != nil {
					timer.Stop()
				}
				id, code, _ := cc.b.sessions.finish(&fc, nil, now)
				return encodeFetch(h.corr, req.Version, code, id, nil)
			}
			cc.waitQuiet(&fc, deadline, &timer)
			continue
		}
		// Cold data is read once the kernel has it (awaitCold), so this
		// reader never blocks in the disk; that wait is not charged to
		// the client's request_percentage.
		waitStart := time.Now()
		cc.awaitCold(req)
		cc.waited += time.Since(waitStart)
		now = time.Now()
		topics, total, anyErr := cc.gatherFetch(req)
		if anyErr || total >= int64(req.MinBytes) || !now.Before(deadline) || cc.ctx.Err() != nil {
			if timer != nil {
				timer.Stop()
			}
			id, code, answer := cc.b.sessions.finish(&fc, topics, now)
			if code != 0 {
				releaseFetch(answer)
				return encodeFetch(h.corr, req.Version, code, 0, nil)
			}
			return cc.finishFetch(h, req, id, answer)
		}
		// Not enough yet: release, watch every partition, wait.
		seen := seenWatermarks(topics)
		releaseFetch(topics)
		parts := cc.watchFetch(req)
		// Drain a stale wake-up from an earlier poll.
		select {
		case <-cc.wake:
		default:
		}
		// Re-check after registering, or an append between the gather and
		// the watch would be missed.
		if cc.fetchChanged(req, seen) {
			for _, p := range parts {
				p.unwatch(cc.wake)
			}
			continue
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		} else {
			timer.Reset(time.Until(deadline))
		}
		waitStart = time.Now()
		select {
		case <-cc.wake:
		case <-timer.C:
		case <-cc.ctx.Done():
		case <-c.ctx.Done():
		}
		cc.waited += time.Since(waitStart)
		for _, p := range parts {
			p.unwatch(cc.wake)
		}
	}
}

// maxColdWait bounds how long awaitCold waits for the disk; past it the
// read goes ahead and blocks a thread like any other.
const maxColdWait = 30 * time.Second

// awaitCold makes sure the data a fetch is about to read is in the page
// cache before gatherFetch reads it, without holding an OS thread while
// the disk works: plog.Advise asks the kernel to read cold ranges in the
// background, and the handler parks on a timer until they are resident.
//
// Why not just read: the batch-header walk of plog.Read (and the warming
// after it) is a pread(2) of cold pages, and a goroutine in a blocking
// syscall keeps its thread and, until the runtime's monitor takes it
// back, its scheduler slot (P). With several consumers reading cold data
// on a two-CPU machine every P can sit in a blocked syscall at once; a
// producer's request then waits for the monitor's next pass (up to 10 ms)
// before any goroutine reads it. Waiting here costs a timer instead.
func (cc *conn) awaitCold(req *kmsg.FetchRequest) {
	c := cc.b.c
	if c.cfg.NoFetchWarm || c.cfg.NoColdWait {
		return
	}
	type coldRead struct {
		p      *partition
		off, n int64
	}
	var cold []coldRead
	maxBytes := int64(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 62
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			p, code := cc.led(rt.Topic, rp.Partition)
			if code != 0 || !cc.allowedTopic(rt.Topic, aclOpRead) {
				continue
			}
			n := min(int64(rp.PartitionMaxBytes), maxBytes)
			if ready, err := p.log.Advise(rp.FetchOffset, n); err == nil && !ready {
				cold = append(cold, coldRead{p, rp.FetchOffset, n})
			}
		}
	}
	if len(cold) == 0 {
		return
	}
	c.coldWaits.Add(1)
	deadline := time.Now().Add(maxColdWait)
	delay := time.Millisecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for len(cold) > 0 && time.Now().Before(deadline) {
		select {
		case <-timer.C:
		case <-cc.ctx.Done():
			return
		}
		still := cold[:0]
		for _, r := range cold {
			if ready, err := r.p.log.Ready(r.off, r.n); err == nil && !ready {
				still = append(still, r)
			}
		}
		cold = still
		delay = min(2*delay, 16*time.Millisecond)
		timer.Reset(delay)
	}
}

// seenWatermarks lists the high watermarks a gather saw, in request order.
func seenWatermarks(topics []fetchTopic) []int64 {
	var hws []int64
	for _, t := range topics {
		for _, p := range t.parts {
			hws = append(hws, p.hw)
		}
	}
	return hws
}

// fetchChanged reports whether any requested partition changed since the
// gather that saw seen (cheap: no reads). Comparing with what was seen,
// not with the fetch offset, keeps a MinBytes wait from spinning while a
// little data is already there.
func (cc *conn) fetchChanged(req *kmsg.FetchRequest, seen []int64) bool {
	i := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			p, _ := cc.b.c.lookup(rt.Topic, rp.Partition)
			if p == nil || p.leader != cc.b.id || i >= len(seen) {
				return true
			}
			if p.log.HighWatermark() != seen[i] {
				return true
			}
			i++
		}
	}
	return false
}

func (cc *conn) watchFetch(req *kmsg.FetchRequest) []*partition {
	var parts []*partition
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p, _ := cc.b.c.lookup(rt.Topic, rp.Partition); p != nil {
				p.watch(cc.wake)
				parts = append(parts, p)
			}
		}
	}
	return parts
}

// gatherFetch picks every partition's spans. total counts record bytes;
// anyErr is set when a partition has an error the client must see now.
func (cc *conn) gatherFetch(req *kmsg.FetchRequest) (topics []fetchTopic, total int64, anyErr bool) {
	c := cc.b.c
	budget := int64(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 62
	}
	budget = min(budget, int64(c.cfg.Limits.FetchMaxBytes))
	committed := req.IsolationLevel == 1
	for _, rt := range req.Topics {
		ft := fetchTopic{name: rt.Topic}
		for _, rp := range rt.Partitions {
			fp := fetchPart{index: rp.Partition, hw: -1, logStart: -1, lso: -1}
			p, code := cc.led(rt.Topic, rp.Partition)
			if !cc.allowedTopic(rt.Topic, aclOpRead) {
				code = kerr.TopicAuthorizationFailed.Code
			}
			switch {
			case code != 0:
				fp.err = code
				anyErr = true
			default:
				limit := min(int64(rp.PartitionMaxBytes), budget-total)
				minOne := total == 0
				if limit <= 0 && !minOne {
					fp.hw, fp.logStart, fp.lso = p.log.HighWatermark(), p.log.LogStartOffset(), p.log.LastStableOffset()
					break
				}
				rr, err := p.log.ReadTo(rp.FetchOffset, max(limit, 0), minOne, committed)
				if err != nil {
					fp.hw, fp.logStart = p.log.HighWatermark(), p.log.LogStartOffset()
					anyErr = true
					switch {
					case errors.Is(err, plog.ErrOffsetOutOfRange):
						fp.err = kerr.OffsetOutOfRange.Code
					case errors.Is(err, plog.ErrClosed):
						fp.err = kerr.NotLeaderForPartition.Code
					default:
						fp.err = kerr.KafkaStorageError.Code
						c.log.Warn("fetch read", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
					break
				}
				fp.hw, fp.logStart, fp.lso, fp.part = rr.HighWatermark, rr.LogStartOffset, rr.LastStableOffset, p
				if committed && len(rr.Spans) > 0 {
					fp.aborted = p.log.AbortedTxns(rp.FetchOffset, rr.LastStableOffset)
				}
				if len(rr.Spans) == 0 {
					rr.Release()
					break
				}
				fp.read = rr
				total += rr.Bytes
			}
			ft.parts = append(ft.parts, fp)
		}
		topics = append(topics, ft)
	}
	return topics, total, anyErr
}

func releaseFetch(topics []fetchTopic) {
	for _, t := range topics {
		for _, p := range t.parts {
			if p.read != nil {
				p.read.Release()
			}
		}
	}
}

// finishFetch warms the spans and encodes the response. The copy path
// warms too: its writer then never waits on the disk either.
func (cc *conn) finishFetch(h header, req *kmsg.FetchRequest, sessionID int32, topics []fetchTopic) *response {
	c := cc.b.c
	for ti := range topics {
		for pi := range topics[ti].parts {
			fp := &topics[ti].parts[pi]
			if fp.read == nil {
				continue
			}
			var err error
			for _, s := range fp.read.Spans {
				if c.cfg.NoFetchWarm {
					continue
				}
				var n int64
				n, err = warm(c.devnull, s)
				c.warmBytes.Add(n)
				if err != nil {
					break
				}
			}
			if err != nil {
				// The segment went away under us (retention, deletion):
				// answer without records; the client simply fetches again.
				c.log.Warn("fetch prepare", "topic", topics[ti].name, "partition", fp.index, "err", err)
				fp.read.Release()
				fp.read = nil
			}
		}
	}
	return encodeFetch(h.corr, req.Version, 0, sessionID, topics)
}

// encodeFetch hand-encodes the Fetch response around the record bytes, so
// the bytes themselves can follow as file spans. The layout (checked
// against kmsg.FetchResponse in the tests, every version served):
//
//	size int32, correlation id int32, [v12+] header tags 0x00
//	throttle ms int32, [v7+] error code int16 + session id int32 (errCode
//	  and sessionID; before v7 a session error cannot occur)
//	topics: int32 N, or uvarint N+1 in v12+
//	  name: int16 string, or compact string in v12+
//	  partitions: int32 N / uvarint N+1
//	    partition int32, error int16, high watermark int64,
//	    last stable offset int64, [v5+] log start offset int64,
//	    aborted transactions: null (int32 -1, or 0x00 in v12+) or an
//	      array (int32 N / uvarint N+1) of producer id int64, first
//	      offset int64, [v12+] tags 0x00,
//	    [v11+] preferred read replica int32 -1,
//	    records length: int32 n, or uvarint n+1 in v12+; then n bytes
//	    [v12+] partition tags 0x00
//	  [v12+] topic tags 0x00
//	[v12+] response tags 0x00
func encodeFetch(corr int32, version int16, errCode int16, sessionID int32, topics []fetchTopic) *response {
	flex := version >= 12
	// Sized up front: one fetch, one allocation per slice.
	nparts, nreads := 1, 0
	for _, t := range topics {
		for _, p := range t.parts {
			if p.read != nil {
				nparts += 1 + len(p.read.Spans)
				nreads++
			}
		}
	}
	parts := make([]part, 0, nparts)
	var spans []*plog.ReadResult
	if nreads > 0 {
		spans = make([]*plog.ReadResult, 0, nreads)
	}
	buf := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(buf[4:8], uint32(corr))
	if flex {
		buf = append(buf, 0)
	}
	buf = kbin.AppendInt32(buf, 0) // throttle
	if version >= 7 {
		buf = kbin.AppendInt16(buf, errCode)
		buf = kbin.AppendInt32(buf, sessionID)
	}
	arrayLen := func(n int) {
		if flex {
			buf = kbin.AppendUvarint(buf, uint32(n)+1)
		} else {
			buf = kbin.AppendInt32(buf, int32(n))
		}
	}
	size := int64(0)
	arrayLen(len(topics))
	for _, t := range topics {
		if flex {
			buf = kbin.AppendCompactString(buf, t.name)
		} else {
			buf = kbin.AppendString(buf, t.name)
		}
		arrayLen(len(t.parts))
		for _, p := range t.parts {
			buf = kbin.AppendInt32(buf, p.index)
			buf = kbin.AppendInt16(buf, p.err)
			buf = kbin.AppendInt64(buf, p.hw)
			buf = kbin.AppendInt64(buf, p.lso)
			if version >= 5 {
				buf = kbin.AppendInt64(buf, p.logStart)
			}
			switch {
			case p.aborted != nil:
				arrayLen(len(p.aborted))
				for _, a := range p.aborted {
					buf = kbin.AppendInt64(buf, a.ProducerID)
					buf = kbin.AppendInt64(buf, a.FirstOffset)
					if flex {
						buf = append(buf, 0)
					}
				}
			case flex:
				buf = append(buf, 0) // null aborted transactions
			default:
				buf = kbin.AppendInt32(buf, -1)
			}
			if version >= 11 {
				buf = kbin.AppendInt32(buf, -1)
			}
			var n int64
			if p.read != nil {
				n = p.read.Bytes
			}
			if flex {
				buf = kbin.AppendUvarint(buf, uint32(n)+1)
			} else {
				buf = kbin.AppendInt32(buf, int32(n))
			}
			if n > 0 {
				size += int64(len(buf))
				parts = append(parts, part{bytes: buf})
				buf = make([]byte, 0, 128)
				for _, s := range p.read.Spans {
					parts = append(parts, part{span: s})
				}
				spans = append(spans, p.read)
				size += n
			}
			if flex {
				buf = append(buf, 0)
			}
		}
		if flex {
			buf = append(buf, 0)
		}
	}
	if flex {
		buf = append(buf, 0)
	}
	size += int64(len(buf))
	parts = append(parts, part{bytes: buf})
	binary.BigEndian.PutUint32(parts[0].bytes[0:4], uint32(size-4))
	resp := &response{parts: parts}
	if len(spans) > 0 {
		resp.release = func() {
			for _, r := range spans {
				r.Release()
			}
		}
	}
	return resp
}
