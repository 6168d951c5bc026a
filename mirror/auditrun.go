package mirror

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
	"strait/mirror/audit"
	"strait/pipelines"
)

// auditor is a pipeline's continuous completeness audit (see
// mirror/audit): the writers hand it what they read from the source
// (observe), and its loop, every audit.bucket, closes each partition's
// span, reads the destination range of the spans the destination has
// acknowledged, and compares. Only a sample of spans is hashed and read
// back (audit.sample), so its cost is that share of the mirror's own.
//
// Lock order: task.mu before auditor.mu is never taken; auditor.mu is a
// leaf (observe is called without task.mu).
type auditor struct {
	p      *pipeline
	bucket time.Duration
	sample float64
	ignore string // record mode: the provenance header is not content

	mu struct {
		sync.Mutex
		ledgers map[checkpoint.TP]*audit.Ledger
	}
}

// startAudit starts the pipeline's audit loop unless the configuration
// turns it off.
func (p *pipeline) startAudit(ctx context.Context) {
	a := p.cfg.Audit
	if a.Disabled {
		return
	}
	bucket, sample := a.Bucket.D(), a.Sample
	if bucket <= 0 {
		bucket = pipelines.DefaultAuditBucket.D()
	}
	if sample <= 0 || sample > 1 {
		sample = pipelines.DefaultAuditSample
	}
	au := &auditor{p: p, bucket: bucket, sample: sample}
	if p.mode() == pipelines.ModeRecord {
		au.ignore = checkpoint.ProvenanceHeader
	}
	au.mu.ledgers = map[checkpoint.TP]*audit.Ledger{}
	p.audit.Store(au)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		au.run(ctx)
	}()
}

func (a *auditor) ledgerLocked(tp checkpoint.TP) *audit.Ledger {
	l := a.mu.ledgers[tp]
	if l == nil {
		l = audit.NewLedger(fmt.Sprintf("%s/%s/%d", a.p.cfg.Name, tp.Topic, tp.Partition), a.bucket, a.sample)
		a.mu.ledgers[tp] = l
	}
	return l
}

// auditChunk is batch mode's hook: the chunk's records (as a
// READ_COMMITTED consumer sees them, less the batches of the engine's own
// producers, which are not copied) are observed. Nothing is decoded while
// the partition's current span is not sampled.
func (t *task) auditChunk(c *chunk) {
	a := t.p.audit.Load()
	if a == nil || c == nil || c.end <= c.from {
		return
	}
	a.mu.Lock()
	l := a.ledgerLocked(t.tp)
	want := l.Wants(c.end - 1)
	if !want {
		l.Pass(c.end)
	}
	a.mu.Unlock()
	if !want {
		return
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: c.from, IsolationLevel: kgo.ReadCommitted(), Topic: t.tp.Topic, Partition: t.tp.Partition,
	}, &kmsg.FetchResponseTopicPartition{
		Partition: t.tp.Partition, HighWatermark: c.hw, LastStableOffset: c.hw, LogStartOffset: c.logStart,
		AbortedTransactions: c.aborted, RecordBatches: c.data,
	}, decompressor, nil)
	own := func(r *kgo.Record) bool { return t.p.e.ownPIDs.has(t.p.srcC.Name, r.ProducerID) }
	a.observe(t.tp, fp.Records, c.end, own)
}

// auditRecords is record mode's hook, with the records the writer decoded
// (those stamped with the destination's provenance are not copied).
func (t *task) auditRecords(recs []*kgo.Record, end int64) {
	a := t.p.audit.Load()
	if a == nil {
		return
	}
	dst := t.p.dstC.Name
	a.observe(t.tp, recs, end, func(r *kgo.Record) bool {
		oc, ok := originCluster(r.Headers)
		return ok && oc == dst
	})
}

func (a *auditor) observe(tp checkpoint.TP, recs []*kgo.Record, end int64, skip func(*kgo.Record) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.ledgerLocked(tp)
	for _, r := range recs {
		if skip(r) {
			continue
		}
		if l.Wants(r.Offset) {
			l.Observe(r.Offset, r.Timestamp, audit.Hash(r, a.ignore), audit.Size(r))
		}
	}
	l.Pass(end)
}

// run cuts spans and settles them every bucket until ctx ends.
func (a *auditor) run(ctx context.Context) {
	tick := time.NewTicker(a.bucket)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.cycle(ctx)
	}
}

// cycle closes every partition's span and settles the ready ones.
func (a *auditor) cycle(ctx context.Context) {
	type job struct {
		tp checkpoint.TP
	}
	var jobs []job
	a.mu.Lock()
	for tp, l := range a.mu.ledgers {
		l.Cut()
		jobs = append(jobs, job{tp: tp})
	}
	a.mu.Unlock()
	for i := range jobs {
		t := a.p.task(jobs[i].tp.Topic, jobs[i].tp.Partition)
		if t == nil {
			continue
		}
		t.mu.Lock()
		acked := t.mu.pos.Source
		t.mu.Unlock()
		a.mu.Lock()
		spans := a.mu.ledgers[jobs[i].tp].Ready(acked)
		a.mu.Unlock()
		for _, s := range spans {
			if ctx.Err() != nil {
				return
			}
			a.settle(ctx, t, s)
		}
	}
}

// settle reads span s's destination range back and compares; a mismatch
// is re-checked record by record (both sides re-read for that span only)
// for exact counts and offsets.
func (a *auditor) settle(ctx context.Context, t *task, s *audit.Span) {
	t.mu.Lock()
	pos := t.mu.pos
	from, ok1 := t.omap.Translate(s.From, pos)
	to, ok2 := t.omap.Translate(s.To, pos)
	runs := t.omap.Runs()
	t.mu.Unlock()
	a.mu.Lock()
	l := a.mu.ledgers[t.tp]
	if !ok1 || !ok2 || to < from {
		l.Drop(s)
		a.mu.Unlock()
		return
	}
	s.DestFrom, s.DestTo = l.DestFrom(s, from), to
	a.mu.Unlock()
	r := audit.NewReader(a.p.dst, t.dest, t.tp.Partition, s.DestFrom, s.DestTo, a.ignore)
	next := r.Iter(ctx)
	for {
		rec, ok, err := next()
		if err != nil {
			a.p.log.Warn("audit read-back failed; will retry", "topic", t.tp.Topic, "partition", t.tp.Partition, "err", err)
			return
		}
		if !ok {
			break
		}
		s.FoldDest(rec.Ts, a.bucket, rec.Hash, rec.Size)
	}
	c, ok := s.Match()
	var diffs []audit.Diff
	if !ok {
		m := audit.Mapping{Runs: runs, Pos: pos, LoopProtection: a.p.cfg.LoopProtection}
		sr := audit.NewReader(a.p.src, t.tp.Topic, t.tp.Partition, s.From, s.To, a.ignore)
		dr := audit.NewReader(a.p.dst, t.dest, t.tp.Partition, s.DestFrom, s.DestTo, a.ignore)
		if ec, ed, err := audit.Compare(m, sr.Iter(ctx), dr.Iter(ctx), audit.DefaultShow); err == nil {
			c, diffs = ec, ed
			c.Pending = 0
		}
		a.p.log.Error("audit: destination differs from what was mirrored", "topic", t.tp.Topic, "partition", t.tp.Partition,
			"source_from", s.From, "source_to", s.To, "missing", c.Missing, "extra", c.Extra, "altered", c.Altered)
	}
	a.mu.Lock()
	l.Settle(s, c, diffs)
	a.mu.Unlock()
}

// AuditStatus is a pipeline's continuous audit (GET
// /v1/pipelines/{name}/audit).
type AuditStatus struct {
	Pipeline string        `json:"pipeline"`
	Enabled  bool          `json:"enabled"`
	Bucket   time.Duration `json:"bucket_ns"`
	Sample   float64       `json:"sample"`
	// Completeness is confirmed / compared over each partition's recent
	// spans (1 when nothing was compared yet).
	Completeness float64          `json:"completeness"`
	Totals       audit.Counts     `json:"totals"`
	RPO          RPO              `json:"rpo"`
	Topics       []TopicAudit     `json:"topics"`
	Partitions   []PartitionAudit `json:"partitions"`
}

// RPO is what the source acknowledged that the destination does not hold
// yet: records, bytes (estimated from the partition's mean record size) and
// the age of the oldest.
type RPO struct {
	Records int64         `json:"records"`
	Bytes   int64         `json:"bytes"`
	Age     time.Duration `json:"age_ns"`
}

func (r *RPO) add(o RPO) {
	r.Records += o.Records
	r.Bytes += o.Bytes
	r.Age = max(r.Age, o.Age)
}

// TopicAudit sums a topic's partitions.
type TopicAudit struct {
	Topic        string       `json:"topic"`
	Completeness float64      `json:"completeness"`
	Totals       audit.Counts `json:"totals"`
	RPO          RPO          `json:"rpo"`
}

// PartitionAudit is one partition's audit.
type PartitionAudit struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	audit.LedgerStatus
	RPO RPO `json:"rpo"`
}

// Audit is pipeline name's continuous audit so far.
func (e *Engine) Audit(name string) (AuditStatus, error) {
	e.mu.Lock()
	r := e.mu.runs[name]
	var cfg *pipelines.Pipeline
	if e.mu.cfg != nil {
		cfg = e.mu.cfg.Pipeline(name)
	}
	e.mu.Unlock()
	if cfg == nil {
		return AuditStatus{}, fmt.Errorf("%w: %q", ErrUnknownPipeline, name)
	}
	st := AuditStatus{Pipeline: name, Completeness: 1, Topics: []TopicAudit{}, Partitions: []PartitionAudit{}}
	if r == nil {
		return st, nil
	}
	return r.p.auditStatus(time.Now()), nil
}

func (p *pipeline) auditStatus(now time.Time) AuditStatus {
	st := AuditStatus{Pipeline: p.cfg.Name, Completeness: 1, Topics: []TopicAudit{}, Partitions: []PartitionAudit{}}
	a := p.audit.Load()
	if a != nil {
		st.Enabled, st.Bucket, st.Sample = true, a.bucket, a.sample
	}
	p.mu.Lock()
	ts := make([]*task, 0, len(p.mu.tasks))
	for _, t := range p.mu.tasks {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	var recent audit.Counts
	topics := map[string]*TopicAudit{}
	topicRecent := map[string]*audit.Counts{}
	for _, t := range ts {
		pa := PartitionAudit{Topic: t.tp.Topic, Partition: t.tp.Partition, RPO: t.rpo(now)}
		pa.Completeness = 1
		if a != nil {
			a.mu.Lock()
			if l := a.mu.ledgers[t.tp]; l != nil {
				pa.LedgerStatus = l.Status()
			}
			a.mu.Unlock()
		}
		st.Partitions = append(st.Partitions, pa)
		st.Totals.Add(pa.Totals)
		st.RPO.add(pa.RPO)
		recent.Add(pa.Recent)
		ta := topics[t.tp.Topic]
		if ta == nil {
			ta = &TopicAudit{Topic: t.tp.Topic}
			topics[t.tp.Topic] = ta
			topicRecent[t.tp.Topic] = &audit.Counts{}
		}
		ta.Totals.Add(pa.Totals)
		ta.RPO.add(pa.RPO)
		topicRecent[t.tp.Topic].Add(pa.Recent)
	}
	st.Completeness = audit.Completeness(recent)
	for name, ta := range topics {
		ta.Completeness = audit.Completeness(*topicRecent[name])
		st.Topics = append(st.Topics, *ta)
	}
	sort.Slice(st.Topics, func(i, j int) bool { return st.Topics[i].Topic < st.Topics[j].Topic })
	sort.Slice(st.Partitions, func(i, j int) bool {
		x, y := st.Partitions[i], st.Partitions[j]
		if x.Topic != y.Topic {
			return x.Topic < y.Topic
		}
		return x.Partition < y.Partition
	})
	return st
}

// rpo is the partition's live RPO: the records after the acknowledged
// position up to the source high watermark, their bytes estimated from the
// mean size mirrored so far, and the age of the oldest (the time since the
// newest acknowledged record was written, while behind).
func (t *task) rpo(now time.Time) RPO {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r RPO
	r.Records = max(t.mu.hw-t.mu.pos.Source, 0)
	if t.mu.records > 0 {
		r.Bytes = r.Records * t.mu.bytes / t.mu.records
	}
	if r.Records > 0 && !t.mu.lastTs.IsZero() {
		r.Age = max(now.Sub(t.mu.lastTs), 0)
	}
	return r
}
