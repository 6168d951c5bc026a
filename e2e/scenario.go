package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// Sentinel errors.
var (
	// ErrScenario: the failover scenario could not run to its end.
	ErrScenario = errors.New("e2e: failover scenario failed")
	// ErrVerify: the scenario ran but its result breaks a promise (records
	// lost or duplicated, a corrupt record, an inexact translation).
	ErrVerify = errors.New("e2e: failover verification failed")
)

// TopicSpec is a source topic the scenario creates.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// Scenario is one run of the failover story shared by `strait demo` and
// `strait drill`: a keyed, numbered, checksummed stream produced to the
// source at a fixed rate; the mirror engine copying it; a consumer group
// reading it on the source with commits; then the source is cut, the group
// is moved to the destination at translated offsets, and what it cost is
// measured record by record.
type Scenario struct {
	Config   *pipelines.Config // loaded configuration; the engine runs all of it
	Pipeline string            // the pipeline under test
	Topics   []TopicSpec       // created on the source before anything starts
	Group    string            // the consumer group that fails over

	Rate       int           // records per second produced while streaming (default 2000)
	Backlog    int           // records produced before the mirror starts (default 0)
	RecordSize int           // value bytes (default 128, at least 16)
	Duration   time.Duration // whole run, failover included (default 60s)

	// CutSource stops the source cluster (embedded clusters). Nil means a
	// real cluster that must survive: the cut then stops producing and
	// pauses the pipeline.
	CutSource func() error

	Logger *slog.Logger
	Meter  metric.Meter
	// Tick receives a snapshot about once a second (optional).
	Tick func(Snapshot)
}

// Phases of a run, as Snapshot.Phase reports them.
const (
	PhaseBacklog   = "backlog"   // the mirror drains records produced before it started
	PhaseStreaming = "streaming" // steady state: produce, mirror, consume
	PhaseCut       = "cut"       // the source is being cut
	PhaseFailover  = "failover"  // the group moves to the destination
	PhaseVerify    = "verify"    // reading the destination back
)

// Snapshot is the live view of a run.
type Snapshot struct {
	Elapsed      time.Duration
	Phase        string
	Acked        int64   // records the source acknowledged
	ProduceRate  float64 // acked per second, last interval
	Mirrored     int64   // records the engine reports copied
	MirrorRate   float64 // records per second, engine's recent rate
	Lag          int64   // records behind, over all partitions
	BacklogStart int64   // lag when the mirror started (for a progress bar)
	Consumed     int64   // records the source consumer committed
	Partitions   []mirror.PartitionStatus
}

// PartitionReport is the translation check of one source partition.
type PartitionReport struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	DestTopic  string `json:"dest_topic"`
	Committed  int64  `json:"committed_source_offset"` // -1: the group never committed here
	Translated int64  `json:"translated_dest_offset"`  // -1: not translated (the group falls back to the destination's start)
	Resume     int64  `json:"resume_dest_offset"`      // where the group resumed on the destination
	Expected   int64  `json:"expected_dest_offset"`    // from the records themselves
	Exact      bool   `json:"exact"`
}

// Report is what a run measured.
type Report struct {
	Pipeline   string        `json:"pipeline"`
	Group      string        `json:"group"`
	Duration   time.Duration `json:"duration_ns"`
	Produced   int64         `json:"produced"`    // records handed to the producer
	Acked      int64         `json:"acked"`       // acknowledged by the source
	Mirrored   int64         `json:"mirrored"`    // distinct records found on the destination
	BacklogN   int64         `json:"backlog"`     // records produced before the mirror started
	DrainTime  time.Duration `json:"drain_ns"`    // from the engine's start to caught up with the backlog
	DrainRate  float64       `json:"drain_rate"`  // records per second while draining
	RPORecords int64         `json:"rpo_records"` // acknowledged by the source, not mirrored at the cut
	RPOWindow  time.Duration `json:"rpo_window_ns"`
	RTO        time.Duration `json:"rto_ns"` // cut → the consumer reading on the destination
	// Consumer side.
	ConsumedSource int64 `json:"consumed_source"` // committed on the source before the cut
	ConsumedDest   int64 `json:"consumed_dest"`   // read on the destination after failover
	Lost           int64 `json:"lost"`            // mirrored but never consumed
	Duplicates     int64 `json:"duplicates"`      // consumed twice
	// Mirror side.
	MirrorDuplicates int64             `json:"mirror_duplicates"` // a record present twice on the destination
	Corrupt          int64             `json:"corrupt"`           // checksum mismatches
	TranslationExact bool              `json:"translation_exact"`
	Partitions       []PartitionReport `json:"partitions"`
	// Problems lists every broken promise, in words.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether nothing was lost, duplicated, corrupted or
// mistranslated.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// value layout: seq (8 bytes, big endian) | crc32c over seq and body (4) | body.
func encodeValue(seq uint64, size int) []byte {
	v := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(v, seq)
	x := seq*0x9e3779b97f4a7c15 + 1
	for i := 12; i < len(v); i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = 'a' + byte(x%26)
	}
	binary.BigEndian.PutUint32(v[8:], checksum(v))
	return v
}

func checksum(v []byte) uint32 {
	c := crc32.Update(0, castagnoli, v[:8])
	return crc32.Update(c, castagnoli, v[12:])
}

// decodeValue returns the sequence number, or ok=false when the value is
// not a scenario record or fails its checksum.
func decodeValue(v []byte) (uint64, bool) {
	if len(v) < 16 {
		return 0, false
	}
	if binary.BigEndian.Uint32(v[8:]) != checksum(v) {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func keyOf(seq uint64) []byte { return fmt.Appendf(nil, "customer-%04d", (seq*7919)%1000) }

// where is a record's place in a log.
type where struct {
	topic     string
	partition int32
	offset    int64
}

type acked struct {
	at  where
	ack time.Time
}

// run is the state of one Scenario run.
type run struct {
	sc      *Scenario
	log     *slog.Logger
	start   time.Time
	pl      *pipelines.Pipeline
	srcOpts []kgo.Opt
	dstOpts []kgo.Opt

	produced atomic.Int64
	nacked   atomic.Int64
	consumed atomic.Int64
	phase    atomic.Value // string

	mu struct {
		sync.Mutex
		acked map[uint64]acked // seq → where the source stored it and when it acked
		// bySource finds the seq of a source record: from the producer's
		// acknowledgements and from what the source consumer read (which
		// also covers a record whose acknowledgement the cut swallowed).
		bySource map[where]uint64
		// committed is the group's last acknowledged commit per partition:
		// every source record below it counts as consumed.
		committed map[checkpoint.TP]int64
	}
}

// Run executes the scenario. The error is ErrScenario when it could not
// run, ErrVerify (with the report) when it ran but lost, duplicated or
// mistranslated something.
func (sc *Scenario) Run(ctx context.Context) (*Report, error) {
	r, err := sc.newRun()
	if err != nil {
		return nil, err
	}
	return r.do(ctx)
}

func (sc *Scenario) newRun() (*run, error) {
	if sc.Rate <= 0 {
		sc.Rate = 2000
	}
	if sc.RecordSize < 16 {
		sc.RecordSize = max(sc.RecordSize, 128)
	}
	if sc.Duration <= 0 {
		sc.Duration = 60 * time.Second
	}
	if sc.Group == "" {
		return nil, fmt.Errorf("%w: a consumer group is required", ErrScenario)
	}
	r := &run{sc: sc, log: sc.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range sc.Config.Pipelines {
		if p.Name == sc.Pipeline {
			r.pl = p
		}
	}
	if r.pl == nil {
		return nil, fmt.Errorf("%w: pipeline %q is not in the configuration", ErrScenario, sc.Pipeline)
	}
	var err error
	if r.srcOpts, err = clientOpts(sc.Config, r.pl.Source); err != nil {
		return nil, err
	}
	if r.dstOpts, err = clientOpts(sc.Config, r.pl.Destination); err != nil {
		return nil, err
	}
	for _, t := range sc.Topics {
		if !r.pl.Matches(t.Name) {
			return nil, fmt.Errorf("%w: pipeline %s does not mirror topic %s", ErrScenario, r.pl.Name, t.Name)
		}
	}
	r.mu.acked = make(map[uint64]acked)
	r.mu.bySource = make(map[where]uint64)
	r.mu.committed = make(map[checkpoint.TP]int64)
	if sc.Backlog > 0 {
		r.phase.Store(PhaseBacklog)
	} else {
		r.phase.Store(PhaseStreaming)
	}
	return r, nil
}

func clientOpts(cfg *pipelines.Config, cluster string) ([]kgo.Opt, error) {
	c := cfg.Cluster(cluster)
	if c == nil {
		return nil, fmt.Errorf("%w: cluster %q is not defined", ErrScenario, cluster)
	}
	opts, err := c.ClientOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %w", ErrScenario, cluster, err)
	}
	return opts, nil
}

func (r *run) topics() []string {
	out := make([]string, len(r.sc.Topics))
	for i, t := range r.sc.Topics {
		out[i] = t.Name
	}
	return out
}

func (r *run) destTopics() []string {
	out := make([]string, len(r.sc.Topics))
	for i, t := range r.sc.Topics {
		out[i] = r.pl.DestTopic(t.Name)
	}
	return out
}

func (r *run) do(ctx context.Context) (*Report, error) {
	sc := r.sc
	r.start = time.Now()
	rep := &Report{Pipeline: sc.Pipeline, Group: sc.Group}

	src, err := kgo.NewClient(append(append([]kgo.Opt{}, r.srcOpts...),
		kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(2*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%w: source client: %w", ErrScenario, err)
	}
	srcClosed := false
	closeSrc := func() {
		if !srcClosed {
			srcClosed = true
			closeBounded(src.Close)
		}
	}
	defer closeSrc()
	if err := createTopics(ctx, kadm.NewClient(src), sc.Topics); err != nil {
		return nil, err
	}

	// The backlog: produced before the mirror starts, so the first phase
	// shows the engine draining it.
	if sc.Backlog > 0 {
		if err := r.produceBacklog(ctx, src, sc.Backlog); err != nil {
			return nil, err
		}
		rep.BacklogN = int64(sc.Backlog)
	}

	engineStart := time.Now()
	eng, err := mirror.New(sc.Config, mirror.Options{Logger: r.log, Meter: sc.Meter})
	if err != nil {
		return nil, fmt.Errorf("%w: engine: %w", ErrScenario, err)
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	defer stopEngine()
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(engCtx) }()
	engineStopped := false
	stopEng := func() error {
		if engineStopped {
			return nil
		}
		engineStopped = true
		stopEngine()
		select {
		case err := <-engDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%w: engine did not stop within 30s", ErrScenario)
		}
	}
	defer func() { _ = stopEng() }()

	// Progress ticker.
	tickCtx, stopTick := context.WithCancel(ctx)
	tickDone := make(chan struct{})
	var backlogStart atomic.Int64
	backlogStart.Store(-1)
	var drainedAt atomic.Int64 // unix nanos
	var caughtUpOnce atomic.Bool
	go func() {
		defer close(tickDone)
		// Look every 100ms (so the drain time is measured finely), show
		// every second.
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		var lastAcked int64
		last := time.Now()
		for n := 1; ; n++ {
			select {
			case <-tickCtx.Done():
				return
			case now := <-t.C:
				snap := r.snapshot(eng)
				if snap.Phase == PhaseBacklog && snap.Lag > backlogStart.Load() {
					// The largest lag seen while draining: partitions
					// join the engine's status one by one.
					backlogStart.Store(snap.Lag)
				}
				snap.BacklogStart = max(backlogStart.Load(), 0)
				if r.caughtUp(snap) {
					caughtUpOnce.Store(true)
					if snap.Phase == PhaseBacklog && drainedAt.CompareAndSwap(0, now.UnixNano()) {
						r.phase.Store(PhaseStreaming)
						snap.Phase = PhaseStreaming
					}
				}
				if n%10 != 0 {
					continue
				}
				snap.ProduceRate = float64(snap.Acked-lastAcked) / now.Sub(last).Seconds()
				lastAcked, last = snap.Acked, now
				if sc.Tick != nil {
					sc.Tick(snap)
				}
			}
		}
	}()
	defer func() { stopTick(); <-tickDone }()

	// Steady producing and the source consumer group.
	prodCtx, stopProd := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	go func() { defer close(prodDone); r.produceSteady(prodCtx, src) }()
	defer func() { stopProd(); <-prodDone }()

	consCtx, stopCons := context.WithCancel(ctx)
	consDone := make(chan error, 1)
	go func() { consDone <- r.consumeSource(consCtx) }()
	defer func() { stopCons(); <-consDone }()

	budget := min(max(sc.Duration/3, 4*time.Second), 20*time.Second)
	cutAt := r.start.Add(sc.Duration - budget)
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
	case err := <-engDone:
		engineStopped = true
		return nil, fmt.Errorf("%w: engine stopped early: %v", ErrScenario, err)
	case <-time.After(time.Until(cutAt)):
	}
	// A cut before the mirror ever caught up would measure its start-up,
	// not a failover: wait for that, within the whole run's duration.
	for !caughtUpOnce.Load() && time.Now().Before(r.start.Add(sc.Duration)) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if d := drainedAt.Load(); d > 0 && rep.BacklogN > 0 {
		rep.DrainTime = time.Unix(0, d).Sub(engineStart)
		rep.DrainRate = float64(rep.BacklogN) / rep.DrainTime.Seconds()
	}

	// The cut.
	r.phase.Store(PhaseCut)
	var cut time.Time
	if sc.CutSource != nil {
		cut = time.Now()
		stopCons() // a disaster stops the application's source side too
		if err := sc.CutSource(); err != nil {
			return nil, fmt.Errorf("%w: cutting the source: %w", ErrScenario, err)
		}
		stopProd()
		// Records in flight to a dead cluster would wait out every retry;
		// closing the client fails them now (they count as not acked).
		closeSrc()
		<-prodDone
		prodDone = closedChan()
	} else {
		stopProd()
		<-prodDone
		prodDone = closedChan()
		// Let in-flight produces settle so acked is final.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = src.Flush(fctx)
		cancel()
		stopCons()
		if err := eng.Pause(sc.Pipeline, "", 0); err != nil {
			return nil, fmt.Errorf("%w: pausing the pipeline: %w", ErrScenario, err)
		}
		cut = time.Now()
	}
	if err := <-consDone; err != nil {
		r.log.Warn("source consumer", "err", err)
	}
	consDone <- nil // the deferred stop reads it again
	closeSrc()

	// The engine's last checkpoint holds every acknowledged position: the
	// translation below reads that, as a failover on another host would.
	if err := stopEng(); err != nil {
		return nil, fmt.Errorf("%w: stopping the engine: %w", ErrScenario, err)
	}
	r.phase.Store(PhaseFailover)

	dst, err := kgo.NewClient(r.dstOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination client: %w", ErrScenario, err)
	}
	defer closeBounded(dst.Close)
	trans, err := r.translate(ctx, dst, rep)
	if err != nil {
		return nil, err
	}
	ends, err := r.destEnds(ctx, dst)
	if err != nil {
		return nil, err
	}
	firstRead, got, err := r.consumeDest(ctx, trans, ends)
	if err != nil {
		return nil, err
	}
	if !firstRead.IsZero() {
		rep.RTO = firstRead.Sub(cut)
	}

	r.phase.Store(PhaseVerify)
	mirrored, err := r.readDest(ctx, dst, ends)
	if err != nil {
		return nil, err
	}
	r.measure(rep, cut, mirrored, got)
	rep.Duration = time.Since(r.start)
	if !rep.OK() {
		return rep, fmt.Errorf("%w: %v", ErrVerify, rep.Problems)
	}
	return rep, nil
}

func closedChan() chan struct{} { c := make(chan struct{}); close(c); return c }

// closeBounded closes a client without letting a dead cluster hold the run:
// franz-go's Close may wait on requests to brokers that are gone.
func closeBounded(fn func()) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}

func createTopics(ctx context.Context, adm *kadm.Client, topics []TopicSpec) error {
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, nil, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("%w: creating topic %s: %w", ErrScenario, t.Name, err)
		}
	}
	return nil
}

func (r *run) record(seq uint64) *kgo.Record {
	topics := r.sc.Topics
	t := topics[int(seq%uint64(len(topics)))]
	return &kgo.Record{
		Topic:   t.Name,
		Key:     keyOf(seq),
		Value:   encodeValue(seq, r.sc.RecordSize),
		Headers: []kgo.RecordHeader{{Key: "strait-demo-seq", Value: fmt.Appendf(nil, "%d", seq)}},
	}
}

func (r *run) onAck(seq uint64, rec *kgo.Record, err error) {
	if err != nil {
		r.nacked.Add(1)
		return
	}
	w := where{rec.Topic, rec.Partition, rec.Offset}
	r.mu.Lock()
	r.mu.acked[seq] = acked{at: w, ack: time.Now()}
	r.mu.bySource[w] = seq
	r.mu.Unlock()
}

func (r *run) produceBacklog(ctx context.Context, cl *kgo.Client, n int) error {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		seq := uint64(r.produced.Add(1))
		wg.Add(1)
		cl.Produce(ctx, r.record(seq), func(rec *kgo.Record, err error) {
			defer wg.Done()
			r.onAck(seq, rec, err)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%w: producing the backlog: %w", ErrScenario, err)
	}
	return nil
}

// produceSteady produces Rate records per second in small bursts until ctx
// ends, then waits for the in-flight ones to settle.
func (r *run) produceSteady(ctx context.Context, cl *kgo.Client) {
	const tick = 20 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	begin := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(begin).Seconds() * float64(r.sc.Rate))
			for ; sent < due; sent++ {
				seq := uint64(r.produced.Add(1))
				wg.Add(1)
				// context.Background: a cut must not turn records the
				// broker already took into "not acknowledged".
				cl.Produce(context.Background(), r.record(seq), func(rec *kgo.Record, err error) {
					defer wg.Done()
					r.onAck(seq, rec, err)
				})
			}
		}
	}
}

// consumeSource is the application on the source: a consumer group that
// reads at about 70% of the produce rate (so it trails and has records left
// to read after the failover) and commits synchronously; a record counts as
// consumed only once its offset commit is acknowledged.
func (r *run) consumeSource(ctx context.Context) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.srcOpts...),
		kgo.ConsumerGroup(r.sc.Group),
		kgo.ConsumeTopics(r.topics()...),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
	)...)
	if err != nil {
		return err
	}
	defer closeBounded(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	})
	perSec := max(r.sc.Rate*7/10, 1)
	begin := time.Now()
	var taken int
	for ctx.Err() == nil {
		allowed := int(time.Since(begin).Seconds()*float64(perSec)) - taken
		if allowed <= 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		fs := cl.PollRecords(ctx, min(allowed, 500))
		if ctx.Err() != nil {
			return nil
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		taken += len(recs)
		r.mu.Lock()
		for _, rec := range recs {
			if seq, ok := decodeValue(rec.Value); ok {
				r.mu.bySource[where{rec.Topic, rec.Partition, rec.Offset}] = seq
			}
		}
		r.mu.Unlock()
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("source consumer commit", "err", err)
			continue
		}
		r.mu.Lock()
		for _, rec := range recs {
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			if rec.Offset+1 > r.mu.committed[tp] {
				r.mu.committed[tp] = rec.Offset + 1
			}
		}
		r.mu.Unlock()
		r.consumed.Add(int64(len(recs)))
	}
	return nil
}

func (r *run) snapshot(eng *mirror.Engine) Snapshot {
	s := Snapshot{
		Elapsed:  time.Since(r.start),
		Phase:    r.phase.Load().(string),
		Consumed: r.consumed.Load(),
	}
	r.mu.Lock()
	s.Acked = int64(len(r.mu.acked))
	r.mu.Unlock()
	for _, p := range eng.Status() {
		if p.Name != r.sc.Pipeline {
			continue
		}
		for _, t := range p.Partitions {
			s.Partitions = append(s.Partitions, t)
			s.Mirrored += t.RecordsTotal
			s.MirrorRate += t.RecordsPerSec
			s.Lag += t.Lag
		}
	}
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return s
}

// caughtUp: every partition of the scenario's topics is known to the engine
// and it has copied all but half a second of the acknowledged records. The
// count comes from what was copied, not from lag: a task that has not yet
// seen its high watermark reports no lag either. (The scenario's topics are
// new, so everything the engine copied is theirs.)
func (r *run) caughtUp(s Snapshot) bool {
	want := 0
	for _, t := range r.sc.Topics {
		want += int(t.Partitions)
	}
	return len(s.Partitions) >= want && s.Acked-s.Mirrored <= int64(r.sc.Rate/2)
}

// translate reads the mirror's checkpoint state from its store and maps the
// group's last acknowledged source commits to destination offsets, then
// commits those to the group on the destination (where it has no members).
func (r *run) translate(ctx context.Context, dst *kgo.Client, rep *Report) (map[checkpoint.TP]kgo.EpochOffset, error) {
	store, err := checkpoint.Open(ctx, r.sc.Config.Checkpoints, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: opening the checkpoint store: %w", ErrScenario, err)
	}
	defer store.Close()
	st, err := store.Load(ctx, r.sc.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("%w: loading checkpoints: %w", ErrScenario, err)
	}
	r.mu.Lock()
	committed := make(map[checkpoint.TP]int64, len(r.mu.committed))
	for k, v := range r.mu.committed {
		committed[k] = v
	}
	r.mu.Unlock()

	out := make(map[checkpoint.TP]kgo.EpochOffset)
	offsets := make(kadm.Offsets)
	for _, t := range r.sc.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			tp := checkpoint.TP{Topic: t.Name, Partition: p}
			pr := PartitionReport{Topic: t.Name, Partition: p, DestTopic: r.pl.DestTopic(t.Name), Committed: -1, Translated: -1, Expected: -1}
			if c, ok := committed[tp]; ok {
				pr.Committed = c
				destTopic, d, ok := st.Translate(tp, c)
				if ok {
					if destTopic != "" {
						pr.DestTopic = destTopic
					}
					pr.Translated = d
					out[tp] = kgo.EpochOffset{Epoch: -1, Offset: d}
					offsets.Add(kadm.Offset{Topic: pr.DestTopic, Partition: p, At: d, LeaderEpoch: -1})
				}
			}
			rep.Partitions = append(rep.Partitions, pr)
		}
	}
	if len(offsets) > 0 {
		resp, err := kadm.NewClient(dst).CommitOffsets(ctx, r.sc.Group, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: committing translated offsets on the destination: %w", ErrScenario, err)
		}
	}
	return out, nil
}

func (r *run) destEnds(ctx context.Context, dst *kgo.Client) (kadm.ListedOffsets, error) {
	ends, err := kadm.NewClient(dst).ListEndOffsets(ctx, r.destTopics()...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: destination end offsets: %w", ErrScenario, err)
	}
	return ends, nil
}

// consumeDest is the application after failover: the same group on the
// destination, resuming at its (translated) committed offsets, reading
// until it reaches the end. It returns when the first record arrived and
// how often each seq was read.
func (r *run) consumeDest(ctx context.Context, trans map[checkpoint.TP]kgo.EpochOffset, ends kadm.ListedOffsets) (time.Time, map[uint64]int, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.dstOpts...),
		kgo.ConsumerGroup(r.sc.Group),
		kgo.ConsumeTopics(r.destTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: destination consumer: %w", ErrScenario, err)
	}
	defer closeBounded(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	})
	// Where the group must get to: the end of every destination partition.
	need := make(map[where]bool)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			need[where{o.Topic, o.Partition, o.Offset}] = true
		}
	})
	pos := make(map[checkpoint.TP]int64)
	for tp, eo := range trans {
		pos[checkpoint.TP{Topic: r.pl.DestTopic(tp.Topic), Partition: tp.Partition}] = eo.Offset
	}
	reached := func() bool {
		for w := range need {
			if pos[checkpoint.TP{Topic: w.topic, Partition: w.partition}] < w.offset {
				return false
			}
		}
		return true
	}
	got := make(map[uint64]int)
	var first time.Time
	deadline := time.Now().Add(60 * time.Second)
	for !reached() {
		if time.Now().After(deadline) {
			return first, got, fmt.Errorf("%w: the destination consumer did not reach the end within 60s", ErrScenario)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return first, got, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if first.IsZero() {
				first = time.Now()
			}
			if seq, ok := decodeValue(rec.Value); ok {
				got[seq]++
			}
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			pos[tp] = max(pos[tp], rec.Offset+1)
		})
		if recs := fs.Records(); len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				r.log.Warn("destination consumer commit", "err", err)
			}
		}
	}
	if first.IsZero() {
		first = time.Now() // nothing was left to read: resumed when positioned
	}
	return first, got, nil
}

// readDest reads every destination partition from its start to ends and
// returns where each seq landed (a seq seen twice is a mirror duplicate,
// recorded under the key with a negative offset marker in dups).
func (r *run) readDest(ctx context.Context, dst *kgo.Client, ends kadm.ListedOffsets) (*destContent, error) {
	out := &destContent{at: make(map[uint64]where), seqAt: make(map[where]uint64), ends: make(map[checkpoint.TP]int64), starts: make(map[checkpoint.TP]int64)}
	parts := make(map[string]map[int32]kgo.Offset)
	need := 0
	ends.Each(func(o kadm.ListedOffset) {
		out.ends[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		if o.Offset <= 0 {
			return
		}
		if parts[o.Topic] == nil {
			parts[o.Topic] = make(map[int32]kgo.Offset)
		}
		parts[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		need++
	})
	if need == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.dstOpts...), kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination reader: %w", ErrScenario, err)
	}
	defer cl.Close()
	done := make(map[checkpoint.TP]bool)
	deadline := time.Now().Add(60 * time.Second)
	for len(done) < need {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: reading the destination back took over 60s", ErrScenario)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			w := where{rec.Topic, rec.Partition, rec.Offset}
			seq, ok := decodeValue(rec.Value)
			if !ok {
				out.corrupt++
			} else if _, dup := out.at[seq]; dup {
				out.dups++
			} else {
				out.at[seq] = w
			}
			out.seqAt[w] = seq
			tp := checkpoint.TP{Topic: rec.Topic, Partition: rec.Partition}
			if s, ok := out.starts[tp]; !ok || rec.Offset < s {
				out.starts[tp] = rec.Offset
			}
			if rec.Offset+1 >= out.ends[tp] {
				done[tp] = true
			}
		})
	}
	return out, nil
}

type destContent struct {
	at      map[uint64]where // seq → its place on the destination
	seqAt   map[where]uint64
	ends    map[checkpoint.TP]int64
	starts  map[checkpoint.TP]int64 // first offset present (log start)
	dups    int64
	corrupt int64
}

// measure compares what was produced, mirrored and consumed.
func (r *run) measure(rep *Report, cut time.Time, dc *destContent, got map[uint64]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Produced = r.produced.Load()
	rep.Acked = int64(len(r.mu.acked))
	rep.Mirrored = int64(len(dc.at))
	rep.MirrorDuplicates = dc.dups
	rep.Corrupt = dc.corrupt
	// What the group had consumed at the cut: every source record below
	// its last acknowledged commit.
	done := make(map[uint64]bool)
	for w, seq := range r.mu.bySource {
		if w.offset < r.mu.committed[checkpoint.TP{Topic: w.topic, Partition: w.partition}] {
			done[seq] = true
		}
	}
	rep.ConsumedSource = int64(len(done))
	for _, n := range got {
		rep.ConsumedDest += int64(n)
	}

	var oldest time.Time
	for seq, a := range r.mu.acked {
		if _, ok := dc.at[seq]; !ok {
			rep.RPORecords++
			if oldest.IsZero() || a.ack.Before(oldest) {
				oldest = a.ack
			}
		}
	}
	if !oldest.IsZero() {
		rep.RPOWindow = max(cut.Sub(oldest), 0)
	}
	for seq, n := range got {
		if done[seq] {
			rep.Duplicates += int64(n)
		} else if n > 1 {
			rep.Duplicates += int64(n - 1)
		}
	}
	for seq := range dc.at {
		if !done[seq] && got[seq] == 0 {
			rep.Lost++
		}
	}

	// Translation: the record at the committed source offset must be the
	// first one the group reads on the destination; past what was
	// mirrored, the group must resume at the destination's end.
	rep.TranslationExact = true
	for i := range rep.Partitions {
		pr := &rep.Partitions[i]
		if pr.Committed < 0 {
			continue
		}
		exp := int64(-1)
		// The first source record at or after the committed offset that
		// reached the destination.
		var bestSrc int64 = -1
		for w, seq := range r.mu.bySource {
			if w.topic != pr.Topic || w.partition != pr.Partition || w.offset < pr.Committed {
				continue
			}
			d, ok := dc.at[seq]
			if !ok {
				continue
			}
			if bestSrc < 0 || w.offset < bestSrc {
				bestSrc, exp = w.offset, d.offset
			}
		}
		if exp < 0 {
			exp = dc.ends[checkpoint.TP{Topic: pr.DestTopic, Partition: pr.Partition}]
		}
		pr.Expected = exp
		pr.Resume = pr.Translated
		if pr.Resume < 0 {
			// Untranslatable (the mirror holds nothing for it): the group
			// resumes by its reset policy, at the destination's start.
			pr.Resume = dc.starts[checkpoint.TP{Topic: pr.DestTopic, Partition: pr.Partition}]
		}
		pr.Exact = pr.Resume == exp
		if !pr.Exact {
			rep.TranslationExact = false
		}
	}

	if rep.Lost > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d mirrored records were never consumed", rep.Lost))
	}
	if rep.Duplicates > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d records were consumed twice", rep.Duplicates))
	}
	if rep.MirrorDuplicates > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d records are on the destination twice", rep.MirrorDuplicates))
	}
	if rep.Corrupt > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d destination records fail their checksum", rep.Corrupt))
	}
	if !rep.TranslationExact {
		rep.Problems = append(rep.Problems, "offset translation was not exact for every partition")
	}
}
