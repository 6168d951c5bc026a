package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/pipelines"
)

// OriginHeader names, on every record failback copies, where it came from:
// "<source cluster>/<topic>/<partition>/<offset>" on the old source. A
// second run reads it back and copies nothing twice.
const OriginHeader = "strait-failback-origin"

// FailbackOptions say what Failback copies and where.
type FailbackOptions struct {
	Config *pipelines.Config
	// Pipeline is the pipeline that ran before the failover: its source is
	// the old source that came back, its destination the new primary.
	Pipeline string
	// Reverse names the pipeline from the new primary back to the old
	// source; "": the one pipeline of the configuration that goes that
	// way (none: the report says how to add it).
	Reverse string
	// RecoveryTopic, when set, receives the divergent records on the new
	// primary instead of the mirrored topic (same partition number).
	RecoveryTopic string
	DryRun        bool
	// Force acts despite a cluster identity mismatch.
	Force    bool
	Progress func(string)
	Logger   *slog.Logger
}

// FailbackReport is what a failback did (or, dry, would do).
type FailbackReport struct {
	Pipeline    string `json:"pipeline"`
	Source      string `json:"source"`      // the old source, back
	Destination string `json:"destination"` // the new primary
	// Reverse is the reverse pipeline ("" when the configuration has none).
	Reverse   string              `json:"reverse"`
	Divergent string              `json:"divergent"` // append | topic:NAME
	DryRun    bool                `json:"dry_run"`
	Identity  Identity            `json:"identity"`
	Partition []FailbackPartition `json:"partitions"`
	// Copied sums the records this run copied (or would copy).
	Copied int64 `json:"copied"`
	// ReverseYAML is the pipeline to add when the configuration has no
	// reverse pipeline.
	ReverseYAML string    `json:"reverse_yaml,omitempty"`
	Warnings    []string  `json:"warnings,omitempty"`
	Started     time.Time `json:"started"`
	DurationMS  int64     `json:"duration_ms"`
}

// FailbackPartition is one partition of a failback.
type FailbackPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	DestTopic string `json:"dest_topic"`
	// Mirrored is the next old-source offset the new primary holds a copy
	// of (checkpoint plus the copies written after it); SourceEnd the old
	// source's end. The divergent tail lies between them.
	Mirrored  int64 `json:"mirrored"`
	SourceEnd int64 `json:"source_end"`
	// Divergent counts the tail's records; AlreadyCopied those an earlier
	// run copied; Copied those this run copied (dry: would copy).
	Divergent     int64  `json:"divergent"`
	AlreadyCopied int64  `json:"already_copied"`
	Copied        int64  `json:"copied"`
	CopiedTo      string `json:"copied_to"`
	// ReverseFrom is the new primary's offset the reverse pipeline reads
	// from; ReverseAction: seeded | would-seed | kept (it has its own
	// checkpoint) | not-configured.
	ReverseFrom   int64  `json:"reverse_from"`
	ReverseAction string `json:"reverse_action"`
}

// Failback brings an old source that came back into step: per partition
// it copies the divergent tail (records the old source acknowledged after
// the last one mirrored) to the new primary, marks them copied in the
// pipeline's checkpoints, and seeds the reverse pipeline's checkpoints so
// that it starts where the new primary's own writes begin. The forward
// pipeline must not run (after a failover it is stopped); the reverse
// pipeline starts with `strait mirror` once Failback returns.
func Failback(ctx context.Context, opts FailbackOptions) (*FailbackReport, error) {
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	f, err := open(ctx, opts.Config, opts.Pipeline)
	if err != nil {
		return nil, err
	}
	defer f.close()
	rep := &FailbackReport{Pipeline: f.p.Name, Source: f.p.Source, Destination: f.p.Destination,
		Divergent: "append", DryRun: opts.DryRun, Started: began.UTC(), Partition: []FailbackPartition{}}
	if opts.RecoveryTopic != "" {
		rep.Divergent = "topic:" + opts.RecoveryTopic
	}
	defer func() { rep.DurationMS = time.Since(began).Milliseconds() }()

	if err := f.checkIdentity(ctx, &rep.Identity, true, 0); err != nil {
		if !errors.Is(err, ErrIdentity) || !opts.Force {
			return rep, err
		}
		rep.Warnings = append(rep.Warnings, err.Error()+" (forced)")
	}
	if !rep.Identity.Recorded {
		rep.Warnings = append(rep.Warnings, "the checkpoints record no cluster ids: identity not verified")
	}
	rv, err := reversePipeline(opts.Config, f.p, opts.Reverse)
	if err != nil {
		return rep, err
	}
	if rv != nil {
		rep.Reverse = rv.Name
	} else {
		rep.ReverseYAML = reverseYAML(f.p)
	}

	st, err := f.store.Load(ctx, f.p.Name)
	if err != nil {
		return rep, fmt.Errorf("%w: loading checkpoints of %s: %w", ErrCluster, f.p.Name, err)
	}
	if len(st.Partitions) == 0 {
		return rep, fmt.Errorf("%w: pipeline %s has no checkpoints: nothing was mirrored, nothing to fail back", ErrInput, f.p.Name)
	}
	srcEnds, err := f.sourceEnds(ctx)
	if err != nil {
		return rep, err
	}
	fb := &failback{run: f, opts: opts, st: st, rv: rv, fwdPIDs: map[int64]bool{}, skipPIDs: map[int64]bool{}}
	for _, id := range st.ProducerIDs {
		fb.fwdPIDs[id] = true
	}
	if err := fb.loadSkipPIDs(ctx); err != nil {
		return rep, err
	}
	if !opts.DryRun {
		if fb.wstore, err = checkpoint.Open(ctx, f.cfg.Checkpoints, f.dst); err != nil {
			return rep, fmt.Errorf("%w: checkpoint store on %s: %w", ErrCluster, f.p.Destination, err)
		}
		defer fb.wstore.Close()
		if fb.prod, err = Client(f.cfg, f.p.Destination, kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0)); err != nil {
			return rep, err
		}
		defer fb.prod.Close()
		if opts.RecoveryTopic != "" {
			if err := fb.createRecoveryTopic(ctx, srcEnds); err != nil {
				return rep, err
			}
		}
	}
	if rv != nil {
		if err := fb.openReverse(ctx); err != nil {
			return rep, err
		}
		defer fb.rstore.Close()
	}

	tps := map[checkpoint.TP]bool{}
	for tp := range st.Partitions {
		tps[tp] = true
	}
	for tp := range srcEnds {
		tps[tp] = true
	}
	for _, tp := range sortTPs(tps) {
		cp := st.Partitions[tp]
		if cp == nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s[%d] has no checkpoint (never mirrored): not handled", tp.Topic, tp.Partition))
			continue
		}
		row, err := fb.partition(ctx, tp, cp, srcEnds[tp])
		rep.Partition = append(rep.Partition, row)
		rep.Copied += row.Copied
		if err != nil {
			return rep, err
		}
		opts.Progress(fmt.Sprintf("%s[%d]: %d divergent, %d copied", tp.Topic, tp.Partition, row.Divergent, row.Copied))
	}
	return rep, nil
}

// reversePipeline finds the pipeline from p's destination back to its
// source, and checks that it maps every topic back to itself.
func reversePipeline(cfg *pipelines.Config, p *pipelines.Pipeline, name string) (*pipelines.Pipeline, error) {
	var rv *pipelines.Pipeline
	if name != "" {
		if rv = cfg.Pipeline(name); rv == nil {
			return nil, fmt.Errorf("%w: no reverse pipeline %q in the configuration", ErrInput, name)
		}
	} else {
		for _, q := range cfg.Pipelines {
			if q.Source == p.Destination && q.Destination == p.Source {
				if rv != nil {
					return nil, fmt.Errorf("%w: pipelines %s and %s both go from %s to %s: name the reverse one", ErrInput, rv.Name, q.Name, p.Destination, p.Source)
				}
				rv = q
			}
		}
		if rv == nil {
			return nil, nil
		}
	}
	if rv.Source != p.Destination || rv.Destination != p.Source {
		return nil, fmt.Errorf("%w: pipeline %s goes from %s to %s, not back from %s to %s", ErrInput, rv.Name, rv.Source, rv.Destination, p.Destination, p.Source)
	}
	if !rv.LoopProtection || !p.LoopProtection {
		return nil, fmt.Errorf("%w: pipelines %s and %s form a cycle: both need loop_protection: true", ErrInput, p.Name, rv.Name)
	}
	return rv, nil
}

// reverseYAML is the reverse pipeline to add to the configuration.
func reverseYAML(p *pipelines.Pipeline) string {
	mode := string(p.Mode)
	if mode == "" {
		mode = string(pipelines.ModeBatch)
	}
	var inc []string
	for _, t := range p.Topics.Include {
		inc = append(inc, strconv.Quote(t))
	}
	return fmt.Sprintf(`  - name: %s-back
    source: %s
    destination: %s
    topics: {include: [%s]}
    mode: %s
    loop_protection: true
# and on pipeline %s: paused: true, loop_protection: true
`, p.Name, p.Destination, p.Source, strings.Join(inc, ", "), mode, p.Name)
}

// failback is the state of one Failback run.
type failback struct {
	*run
	opts FailbackOptions
	st   *checkpoint.State
	rv   *pipelines.Pipeline
	// fwdPIDs: the forward pipeline's producers on the new primary (its
	// copies, batch mode). skipPIDs: producers that wrote into the old
	// source for pipelines coming from elsewhere (records the forward
	// pipeline leaves out).
	fwdPIDs, skipPIDs map[int64]bool
	wstore            checkpoint.Store // forward checkpoints, writable (nil: dry run)
	rstore            checkpoint.Store // reverse checkpoints on the old source
	rstate            *checkpoint.State
	prod              *kgo.Client
	recovery          map[int32]map[string]int64 // recovery topic: partition → "topic/partition" → next origin offset
}

// loadSkipPIDs reads the producer ids of the pipelines writing into the
// old source (the reverse pipeline of an earlier failback, say): the
// forward pipeline never copied their batches.
func (fb *failback) loadSkipPIDs(ctx context.Context) error {
	var names []string
	for _, q := range fb.cfg.Pipelines {
		if q.Destination == fb.p.Source && q != fb.p {
			names = append(names, q.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	s, err := checkpoint.OpenReadOnly(ctx, fb.cfg.Checkpoints, fb.src)
	if err != nil {
		return fmt.Errorf("%w: checkpoint store on %s: %w", ErrCluster, fb.p.Source, err)
	}
	defer s.Close()
	for _, n := range names {
		st, err := s.Load(ctx, n)
		if err != nil {
			return fmt.Errorf("%w: loading checkpoints of %s: %w", ErrCluster, n, err)
		}
		for _, id := range st.ProducerIDs {
			fb.skipPIDs[id] = true
		}
	}
	return nil
}

func (fb *failback) openReverse(ctx context.Context) error {
	var err error
	if fb.opts.DryRun {
		fb.rstore, err = checkpoint.OpenReadOnly(ctx, fb.cfg.Checkpoints, fb.src)
	} else {
		fb.rstore, err = checkpoint.Open(ctx, fb.cfg.Checkpoints, fb.src)
	}
	if err != nil {
		return fmt.Errorf("%w: checkpoint store on %s: %w", ErrCluster, fb.p.Source, err)
	}
	if fb.rstate, err = fb.rstore.Load(ctx, fb.rv.Name); err != nil {
		fb.rstore.Close()
		return fmt.Errorf("%w: loading checkpoints of %s: %w", ErrCluster, fb.rv.Name, err)
	}
	return nil
}

// createRecoveryTopic creates the recovery topic on the new primary with as
// many partitions as the largest mirrored topic (one already there is used
// as it is).
func (fb *failback) createRecoveryTopic(ctx context.Context, srcEnds map[checkpoint.TP]int64) error {
	n := int32(1)
	for tp := range srcEnds {
		n = max(n, tp.Partition+1)
	}
	for tp := range fb.st.Partitions {
		n = max(n, tp.Partition+1)
	}
	resp, err := fb.dadm.CreateTopic(ctx, n, -1, nil, fb.opts.RecoveryTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("%w: creating recovery topic %s: %w", ErrCluster, fb.opts.RecoveryTopic, err)
	}
	return nil
}

// mine reports a record on the new primary that the forward pipeline
// copied there: written by one of its producers (batch mode) or stamped
// with a provenance header (record mode; the new primary's own producers
// write none).
func (fb *failback) mine(r *kgo.Record) bool {
	if fb.fwdPIDs[r.ProducerID] {
		return true
	}
	for _, h := range r.Headers {
		if h.Key == checkpoint.ProvenanceHeader {
			return true
		}
	}
	return false
}

// skipped reports an old-source record the forward pipeline leaves out
// (loop prevention): written there by a pipeline from the new primary.
func (fb *failback) skipped(r *kgo.Record) bool {
	if fb.skipPIDs[r.ProducerID] {
		return true
	}
	for _, h := range r.Headers {
		if h.Key == checkpoint.ProvenanceHeader {
			v := string(h.Value)
			if i := strings.IndexByte(v, '/'); i >= 0 {
				v = v[:i]
			}
			return v == fb.p.Destination
		}
	}
	return false
}

// origin parses an OriginHeader: the old source's topic, partition and
// offset of a copied record.
func origin(r *kgo.Record) (topic string, partition int32, offset int64, ok bool) {
	for _, h := range r.Headers {
		if h.Key != OriginHeader {
			continue
		}
		parts := strings.Split(string(h.Value), "/")
		if len(parts) < 4 {
			return "", 0, 0, false
		}
		n := len(parts)
		p, err1 := strconv.ParseInt(parts[n-2], 10, 32)
		o, err2 := strconv.ParseInt(parts[n-1], 10, 64)
		if err1 != nil || err2 != nil {
			return "", 0, 0, false
		}
		return parts[n-3], int32(p), o, true
	}
	return "", 0, 0, false
}

// partition handles one partition: find the tail, copy what no earlier
// run copied, record it, seed the reverse pipeline.
func (fb *failback) partition(ctx context.Context, tp checkpoint.TP, cp *checkpoint.Partition, srcEnd int64) (FailbackPartition, error) {
	row := FailbackPartition{Topic: tp.Topic, Partition: tp.Partition, DestTopic: cp.DestTopic, SourceEnd: srcEnd, ReverseFrom: -1, ReverseAction: "not-configured"}
	if row.DestTopic == "" {
		row.DestTopic = fb.p.DestTopic(tp.Topic)
	}
	row.CopiedTo = row.DestTopic
	if fb.opts.RecoveryTopic != "" {
		row.CopiedTo = fb.opts.RecoveryTopic
	}
	if fb.rv != nil && (!fb.rv.Matches(row.DestTopic) || fb.rv.DestTopic(row.DestTopic) != tp.Topic) {
		return row, fmt.Errorf("%w: reverse pipeline %s does not copy %s back into %s", ErrInput, fb.rv.Name, row.DestTopic, tp.Topic)
	}

	// The new primary after the checkpoint: the forward pipeline's last
	// copies, the new primary's own writes, and an earlier run's copies.
	dends, err := listEnds(ctx, fb.dadm, row.DestTopic)
	if err != nil {
		return row, err
	}
	dtp := checkpoint.TP{Topic: row.DestTopic, Partition: tp.Partition}
	dEnd := dends[dtp]
	var mineOffs []int64
	var lastMine *kgo.Record
	copied := int64(-1) // next origin offset an earlier run copied up to (append)
	firstForeign := int64(-1)
	err = readRange(ctx, fb.dst, row.DestTopic, tp.Partition, cp.Pos.Dest, dEnd, func(r *kgo.Record) {
		if t, p, o, ok := origin(r); ok {
			if t == tp.Topic && p == tp.Partition {
				copied = max(copied, o+1)
			}
			return
		}
		if fb.mine(r) {
			if firstForeign >= 0 {
				return // a copy after local writes: not the forward pipeline's
			}
			mineOffs = append(mineOffs, r.Offset)
			lastMine = r
			return
		}
		if firstForeign < 0 {
			firstForeign = r.Offset
		}
	})
	if err != nil {
		return row, err
	}
	if fb.opts.RecoveryTopic != "" {
		if copied, err = fb.recoveryCopied(ctx, tp); err != nil {
			return row, err
		}
	}

	// The old source after the checkpoint: the first len(mineOffs) records
	// it holds there are the copies found above; the rest is the tail.
	var srcRecs []*kgo.Record
	if srcEnd > cp.Pos.Source {
		err = readRange(ctx, fb.src, tp.Topic, tp.Partition, cp.Pos.Source, srcEnd, func(r *kgo.Record) {
			if !fb.skipped(r) {
				srcRecs = append(srcRecs, r)
			}
		})
		if err != nil {
			return row, err
		}
	}
	m := len(mineOffs)
	if m > len(srcRecs) {
		return row, fmt.Errorf("%w: %s[%d] holds %d copies after the checkpoint, the old source only %d records after it", ErrMismatch, row.DestTopic, tp.Partition, m, len(srcRecs))
	}
	row.Mirrored = cp.Pos.Source
	if m > 0 {
		if s := srcRecs[m-1]; string(s.Value) != string(lastMine.Value) || string(s.Key) != string(lastMine.Key) {
			return row, fmt.Errorf("%w: %s[%d] offset %d is not the copy of %s[%d] offset %d", ErrMismatch, row.DestTopic, tp.Partition, lastMine.Offset, tp.Topic, tp.Partition, s.Offset)
		}
		row.Mirrored = srcRecs[m-1].Offset + 1
	}
	tail := srcRecs[m:]
	row.Divergent = int64(len(tail))
	var todo []*kgo.Record
	for _, r := range tail {
		if r.Offset < copied {
			row.AlreadyCopied++
		} else {
			todo = append(todo, r)
		}
	}
	row.Copied = int64(len(todo))

	// Where the reverse pipeline starts: the new primary's first own write,
	// else after everything there now (copies are skipped by its loop
	// protection either way).
	row.ReverseFrom = dEnd
	if firstForeign >= 0 {
		row.ReverseFrom = firstForeign
	}
	if fb.opts.DryRun {
		row.ReverseAction = fb.reverseAction(row, "would-seed")
		return row, nil
	}

	// Copy, in order, with the origin header and the forward pipeline's
	// provenance, so that the reverse pipeline leaves them out.
	var written []*kgo.Record
	if len(todo) > 0 {
		out := make([]*kgo.Record, len(todo))
		for i, r := range todo {
			hs := append([]kgo.RecordHeader{}, r.Headers...)
			prov := false
			for _, h := range hs {
				prov = prov || h.Key == checkpoint.ProvenanceHeader
			}
			if !prov {
				hs = append(hs, kgo.RecordHeader{Key: checkpoint.ProvenanceHeader, Value: []byte(fb.p.Source + "/" + fb.p.Name)})
			}
			hs = append(hs, kgo.RecordHeader{Key: OriginHeader, Value: fmt.Appendf(nil, "%s/%s/%d/%d", fb.p.Source, tp.Topic, tp.Partition, r.Offset)})
			out[i] = &kgo.Record{Topic: row.CopiedTo, Partition: tp.Partition, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
		}
		// The producer id goes into the forward pipeline's checkpoints
		// before the first write: batch-mode loop protection of the
		// reverse pipeline knows its batches by it.
		pid, _, err := fb.prod.ProducerID(ctx)
		if err != nil {
			return row, fmt.Errorf("%w: producer id on %s: %w", ErrCluster, fb.p.Destination, err)
		}
		if err := fb.wstore.Save(ctx, fb.p.Name, &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{}, ProducerIDs: []int64{pid}}); err != nil {
			return row, fmt.Errorf("%w: recording the copying producer: %w", ErrCluster, err)
		}
		res := fb.prod.ProduceSync(ctx, out...)
		if err := res.FirstErr(); err != nil {
			return row, fmt.Errorf("%w: copying %s[%d] to %s: %w", ErrCluster, tp.Topic, tp.Partition, row.CopiedTo, err)
		}
		for _, pr := range res {
			written = append(written, pr.Record)
		}
		if fb.opts.RecoveryTopic == "" && written[len(written)-1].Offset+1 > row.ReverseFrom && firstForeign < 0 {
			row.ReverseFrom = written[len(written)-1].Offset + 1
		}
	}

	// Record the tail as handled: the forward pipeline, resumed one day,
	// starts after it and finds these copies below its checkpoint.
	m2 := cp.Map.Clone()
	if m2 == nil {
		m2 = &checkpoint.OffsetMap{}
	}
	pos := cp.Pos
	for i := 0; i < m; i++ {
		m2.Add(srcRecs[i].Offset, mineOffs[i], 1)
		pos = checkpoint.Position{Source: srcRecs[i].Offset + 1, Dest: mineOffs[i] + 1}
	}
	if fb.opts.RecoveryTopic == "" {
		for i, w := range written {
			m2.Add(todo[i].Offset, w.Offset, 1)
			pos.Dest = w.Offset + 1
		}
	}
	pos.Source = max(pos.Source, srcEnd)
	if pos != cp.Pos {
		if err := fb.wstore.Save(ctx, fb.p.Name, &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{tp: {Pos: pos, Map: m2, DestTopic: row.DestTopic}}}); err != nil {
			return row, fmt.Errorf("%w: recording the copied tail: %w", ErrCluster, err)
		}
	}
	row.ReverseAction = fb.reverseAction(row, "seeded")
	if row.ReverseAction != "seeded" {
		return row, nil
	}
	// The reverse pipeline's first checkpoint: read the new primary from
	// ReverseFrom, write after the old source's end.
	rtp := checkpoint.TP{Topic: row.DestTopic, Partition: tp.Partition}
	ends, err := listEnds(ctx, fb.sadm, tp.Topic)
	if err != nil {
		return row, err
	}
	rpos := checkpoint.Position{Source: row.ReverseFrom, Dest: ends[tp]}
	rm := &checkpoint.OffsetMap{}
	rm.Begin(rpos)
	if err := fb.rstore.Save(ctx, fb.rv.Name, &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{rtp: {Pos: rpos, Map: rm, DestTopic: tp.Topic}}}); err != nil {
		return row, fmt.Errorf("%w: seeding the checkpoints of %s: %w", ErrCluster, fb.rv.Name, err)
	}
	return row, nil
}

// reverseAction says what happens to the reverse pipeline's checkpoint of
// row's partition: kept when it has one (it ran already), else fresh.
func (fb *failback) reverseAction(row FailbackPartition, fresh string) string {
	if fb.rv == nil {
		return "not-configured"
	}
	if p := fb.rstate.Partitions[checkpoint.TP{Topic: row.DestTopic, Partition: row.Partition}]; p != nil {
		return "kept"
	}
	return fresh
}

// recoveryCopied is the next origin offset of tp already in the recovery
// topic (-1: none).
func (fb *failback) recoveryCopied(ctx context.Context, tp checkpoint.TP) (int64, error) {
	if fb.recovery == nil {
		fb.recovery = map[int32]map[string]int64{}
	}
	got, ok := fb.recovery[tp.Partition]
	if !ok {
		got = map[string]int64{}
		ends, err := listEnds(ctx, fb.dadm, fb.opts.RecoveryTopic)
		if err != nil {
			return 0, err
		}
		starts, err := fb.dadm.ListStartOffsets(ctx, fb.opts.RecoveryTopic)
		if err != nil {
			return 0, fmt.Errorf("%w: listing recovery topic starts: %w", ErrCluster, err)
		}
		from := int64(0)
		if s, ok := starts.Lookup(fb.opts.RecoveryTopic, tp.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		end := ends[checkpoint.TP{Topic: fb.opts.RecoveryTopic, Partition: tp.Partition}]
		err = readRange(ctx, fb.dst, fb.opts.RecoveryTopic, tp.Partition, from, end, func(r *kgo.Record) {
			if t, p, o, ok := origin(r); ok {
				k := fmt.Sprintf("%s/%d", t, p)
				if v, seen := got[k]; !seen || o+1 > v {
					got[k] = o + 1
				}
			}
		})
		if err != nil {
			return 0, err
		}
		fb.recovery[tp.Partition] = got
	}
	if v, ok := got[fmt.Sprintf("%s/%d", tp.Topic, tp.Partition)]; ok {
		return v, nil
	}
	return -1, nil
}

// readRange calls fn, in offset order, for every committed record of a
// partition in [from, end). Control records and aborted data are not
// delivered; a range that ends in them ends after a quiet spell.
func readRange(ctx context.Context, base *kgo.Client, topic string, partition int32, from, end int64, fn func(*kgo.Record)) error {
	if from >= end {
		return nil
	}
	cl, err := kgo.NewClient(append(base.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("%w: reading %s[%d]: %w", ErrCluster, topic, partition, err)
	}
	defer cl.Close()
	const quiet = 5 * time.Second
	next, lastProgress := from, time.Now()
	for next < end {
		if time.Since(lastProgress) > quiet {
			return nil // the rest holds no committed record
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil && !kerr.IsRetriable(ferr) {
			return fmt.Errorf("%w: reading %s[%d]: %w", ErrCluster, topic, partition, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < next || r.Offset >= end {
				return
			}
			fn(r)
			next, lastProgress = r.Offset+1, time.Now()
		})
	}
	return nil
}
