package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"go.opentelemetry.io/otel/attribute"

	"strait/checkpoint"
	"strait/mirror/assign"
	"strait/pipelines"
)

// stopGrace is how long a stopping pipeline waits for writes in flight.
const stopGrace = 10 * time.Second

// pipeline runs one configured pipeline: its clients, topic discovery and
// sync, one task per source partition, the fetchers and checkpoints.
//
// Lock order: pipeline.mu before task.mu, recordWriter.mu before task.mu;
// budget.mu is a leaf. The defaults applied here are pipelines' own, for
// configurations built without pipelines.Load.
type pipeline struct {
	e    *Engine
	cfg  *pipelines.Pipeline
	ck   pipelines.Checkpoints
	srcC *pipelines.Cluster
	dstC *pipelines.Cluster
	log  *slog.Logger
	// peers are the configuration's pipelines that write into this
	// pipeline's source cluster: their producer ids are loop markers.
	peers []string

	src   *kgo.Client // source: raw fetches, metadata, list offsets
	dst   *kgo.Client // destination: raw produce, metadata, admin
	rprod *kgo.Client // record mode: the idempotent producer
	sadm  *kadm.Client
	dadm  *kadm.Client
	store checkpoint.Store

	prod   producerSession
	audit  atomic.Pointer[auditor] // nil when the audit is off
	acls   aclSync                 // sync.acls state (aclsync.go)
	budget budget
	bucket struct {
		sync.Mutex
		b *bucket
	}
	refreshNow chan struct{} // cap 1: ask discovery to run now
	starts     startRound    // for the summary line of task starts

	reach reach // which of the two clusters answered last time
	// configs is the state of the topic-config sync (topics.go).
	configs  configSync
	errs     atomic.Int64 // failures of no one partition (checkpoint saves, group sync)
	stopping atomic.Bool
	// saveMu serialises checkpoint saves with fleet handoffs (fleet.go),
	// so a periodic save never lands after a released partition's last.
	saveMu sync.Mutex
	// saved is set once a periodic save succeeded, savedPIDs are the
	// producer ids it wrote; both guarded by saveMu (saveNeededLocked).
	saved     bool
	savedPIDs []int64

	// produceCtx bounds record-mode writes: it ends a grace period after
	// the pipeline stops, so a write blocked on a full producer buffer
	// (destination away) cannot hold the stop forever.
	produceCtx    context.Context
	produceCancel context.CancelFunc

	mu struct {
		sync.Mutex
		state    State
		lastErr  string
		paused   bool
		tasks    map[checkpoint.TP]*task
		fetchers map[int32]chan struct{} // source broker -> wake channel
		// byLeader lists the tasks per source leader for the fetchers.
		// Discovery replaces it whole; a slice in it is never changed.
		byLeader map[int32][]*task
		dleaders map[string][]int32 // destination topic -> partition leaders
		state0   *checkpoint.State  // loaded checkpoint
		pids     []int64            // producer ids used on the destination
		// retired* are the totals of tasks stopped while the pipeline
		// runs, so the pipeline's counters never go back.
		retiredRecords, retiredBytes int64
		// parts are the source partitions the last discovery found
		// (fleet only; discovered once one completed).
		parts      []assign.Partition
		discovered bool
		fleetCk    *checkpoint.State // checkpoints read for group sync (fleet leader)
	}
	wg sync.WaitGroup // fetchers and helpers

	// taskRuns tracks the task goroutines, which come and go with work.
	// Invariant: after closed is set no task goroutine starts, so Wait
	// on wg then sees every one that ever ran. A leaf lock.
	taskRuns struct {
		sync.Mutex
		closed bool
		wg     sync.WaitGroup
	}
	runCtx context.Context // the pipeline's context, set before any task exists
}

// goTask starts t's driver goroutine; false once the pipeline stops.
func (p *pipeline) goTask(t *task) bool {
	p.taskRuns.Lock()
	defer p.taskRuns.Unlock()
	if p.taskRuns.closed || p.runCtx == nil {
		return false
	}
	p.taskRuns.wg.Add(1)
	go func() {
		defer p.taskRuns.wg.Done()
		t.run(p.runCtx)
	}()
	return true
}

// producerSession is the pipeline's own idempotent producer identity on the
// destination (batch mode). gen changes each time it is re-initialised, so
// tasks know to restart their sequence numbers at 0.
//
// The sequence numbers are the session's, per destination partition, not a
// task's: the destination keeps (producer id, partition) -> the last five
// batches' sequence ranges for as long as the session lives, and answers a
// batch whose range matches one of them as a retry: success, with the
// original batch's offset, and nothing appended. A partition that leaves
// this daemon (a fleet handoff, a fence) and comes back gets a new task
// under the same session; had that task counted from 0 again, its first
// batches would have matched the ones its predecessor wrote, been
// acknowledged, and never been written.
type producerSession struct {
	mu    sync.Mutex
	id    int64
	epoch int16
	gen   uint64
	seqs  map[seqKey]partSeq
}

// seqKey is a destination partition.
type seqKey struct {
	topic     string
	partition int32
}

// partSeq is where a session's sequence numbers stand on one destination
// partition.
type partSeq struct {
	gen  uint64 // the session they count in
	next int32  // the base sequence of the next batch
	// unsure: a batch with base sequence next was sent and its outcome
	// is unknown (its task stopped waiting for the answer). It may have
	// landed: a different batch at next could then be taken for its
	// retry, so the session must not write the partition again.
	unsure bool
}

// sequence returns the session and the base sequence of the next batch
// for destination partition k; ok is false when the last batch sent there
// under this session has no known outcome (see partSeq.unsure).
func (p *pipeline) sequence(k seqKey) (id int64, epoch int16, gen uint64, seq int32, ok bool) {
	p.prod.mu.Lock()
	defer p.prod.mu.Unlock()
	s, found := p.prod.seqs[k]
	if !found || s.gen != p.prod.gen {
		return p.prod.id, p.prod.epoch, p.prod.gen, 0, true
	}
	return p.prod.id, p.prod.epoch, p.prod.gen, s.next, !s.unsure
}

// setSequence records where session gen's sequence numbers stand on k;
// a stale gen (the session was replaced meanwhile) changes nothing.
func (p *pipeline) setSequence(k seqKey, s partSeq) {
	p.prod.mu.Lock()
	defer p.prod.mu.Unlock()
	if s.gen != p.prod.gen {
		return
	}
	if p.prod.seqs == nil {
		p.prod.seqs = map[seqKey]partSeq{}
	}
	p.prod.seqs[k] = s
}

// budget bounds bytes fetched but not yet acknowledged by the destination.
type budget struct {
	mu    sync.Mutex
	used  int64
	limit int64
}

func (b *budget) room() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.used
}

func (b *budget) add(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

func newPipeline(e *Engine, cfg *pipelines.Config, p *pipelines.Pipeline) (*pipeline, error) {
	srcC, dstC := cfg.Cluster(p.Source), cfg.Cluster(p.Destination)
	if srcC == nil || dstC == nil {
		return nil, fmt.Errorf("%w: pipeline %q: unknown cluster %q or %q", ErrConfig, p.Name, p.Source, p.Destination)
	}
	if p.Mode != pipelines.ModeBatch && p.Mode != pipelines.ModeRecord && p.Mode != "" {
		return nil, fmt.Errorf("%w: pipeline %q: mode %q", ErrConfig, p.Name, p.Mode)
	}
	pl := &pipeline{e: e, cfg: p, ck: cfg.Checkpoints, srcC: srcC, dstC: dstC,
		log:        e.log.With("pipeline", p.Name),
		refreshNow: make(chan struct{}, 1)}
	pl.budget.limit = int64(p.Limits.Buffer)
	if pl.budget.limit <= 0 {
		pl.budget.limit = int64(pipelines.DefaultBuffer)
	}
	pl.bucket.b = newBucket(int64(p.Limits.BytesPerSecond))
	for _, o := range cfg.Pipelines {
		if o != p && o.Destination == p.Source {
			pl.peers = append(pl.peers, o.Name)
		}
	}
	pl.produceCtx, pl.produceCancel = context.WithCancel(context.Background())
	pl.mu.state = StateStarting
	pl.mu.paused = p.Paused
	pl.mu.tasks = map[checkpoint.TP]*task{}
	pl.mu.fetchers = map[int32]chan struct{}{}
	pl.mu.dleaders = map[string][]int32{}
	return pl, nil
}

func (p *pipeline) mode() pipelines.Mode {
	if p.cfg.Mode == "" {
		return pipelines.DefaultMode
	}
	return p.cfg.Mode
}

// versions caps Fetch and Produce below the versions that name topics by
// id: the engine addresses partitions by name in its raw requests.
func versions() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(0, 12) // Produce
	v.SetMaxKeyVersion(1, 12) // Fetch
	return v
}

func (p *pipeline) clients() error {
	so, err := p.srcC.ClientOptions()
	if err != nil {
		return fmt.Errorf("%w: cluster %q: %v", ErrConfig, p.srcC.Name, err)
	}
	do, err := p.dstC.ClientOptions()
	if err != nil {
		return fmt.Errorf("%w: cluster %q: %v", ErrConfig, p.dstC.Name, err)
	}
	// Discovery must see topics it just created: keep the metadata cache short.
	common := []kgo.Opt{kgo.MaxVersions(versions()), kgo.RetryBackoffFn(retryBackoff), kgo.MetadataMinAge(100 * time.Millisecond)}
	if p.src, err = kgo.NewClient(append(append(so, common...), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...); err != nil {
		return fmt.Errorf("%w: source client: %v", ErrConfig, err)
	}
	if p.dst, err = kgo.NewClient(append(do, common...)...); err != nil {
		p.src.Close()
		return fmt.Errorf("%w: destination client: %v", ErrConfig, err)
	}
	if p.mode() == pipelines.ModeRecord {
		opts := append(do, common...)
		opts = append(opts,
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MaxBufferedBytes(int(p.budget.limit)),
			kgo.ProducerLinger(p.cfg.Producer.Linger.D()),
			kgo.UnknownTopicRetries(-1),
		)
		if bs := int32(p.cfg.Producer.BatchSize); bs > 0 {
			opts = append(opts, kgo.ProducerBatchMaxBytes(bs))
		}
		if c := codec(p.cfg.Producer.Compression); c != nil {
			opts = append(opts, kgo.ProducerBatchCompression(*c))
		}
		if p.rprod, err = kgo.NewClient(opts...); err != nil {
			p.src.Close()
			p.dst.Close()
			return fmt.Errorf("%w: destination producer: %v", ErrConfig, err)
		}
	}
	p.sadm, p.dadm = kadm.NewClient(p.src), kadm.NewClient(p.dst)
	return nil
}

func codec(name string) *kgo.CompressionCodec {
	var c kgo.CompressionCodec
	switch strings.ToLower(name) {
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	case "", "none":
		c = kgo.NoCompression()
	default:
		return nil
	}
	return &c
}

func retryBackoff(tries int) time.Duration {
	d := 50 * time.Millisecond << min(tries, 6)
	return min(d, 2*time.Second)
}

// retry runs fn with exponential backoff and jitter until it works or ctx
// ends; every call to a cluster outside the copy loop goes through here.
func (p *pipeline) retry(ctx context.Context, what string, fn func() error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	attempt := 0
	return backoff.Retry(func() error {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return backoff.Permanent(ctx.Err())
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return err
		}
		attempt++
		if attempt == 1 || attempt%10 == 0 {
			p.log.Warn("cluster call failed; retrying", "call", what, "attempt", attempt, "err", err)
		}
		p.setErr(fmt.Sprintf("%s: %v", what, classify(err)))
		return err
	}, backoff.WithContext(bo, ctx))
}

func (p *pipeline) setErr(s string) {
	p.mu.Lock()
	p.mu.lastErr = s
	p.mu.Unlock()
}

// run is the pipeline's driver: clients, checkpoint store, producer, then
// discovery every Refresh until ctx ends; then tasks stop, positions save.
func (p *pipeline) run(ctx context.Context) error {
	p.taskRuns.Lock()
	p.runCtx = ctx
	p.taskRuns.Unlock()
	if err := p.clients(); err != nil {
		p.fail(err)
		<-ctx.Done()
		return err
	}
	defer func() {
		if p.rprod != nil {
			p.rprod.Close()
		}
		p.src.Close()
		p.dst.Close()
	}()
	if err := p.openStore(ctx); err != nil {
		return p.stopped(err)
	}
	if p.mode() == pipelines.ModeBatch {
		if err := p.retry(ctx, "destination init producer id", func() error { return p.initProducer(ctx, 0) }); err != nil {
			return p.stopped(err)
		}
	} else {
		// The producer initialises itself on its first write; its id is
		// only recorded (for loop detection), so discovery need not wait.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = p.retry(ctx, "destination init producer id", func() error {
				id, _, err := p.rprod.ProducerID(ctx)
				if err == nil {
					p.addPID(id)
				}
				return err
			})
		}()
	}
	p.mu.Lock()
	p.mu.state = StateRunning
	p.mu.Unlock()

	saveTick := time.NewTicker(max(p.ck.Interval.D(), 100*time.Millisecond))
	defer saveTick.Stop()
	refresh := p.cfg.Refresh.D()
	if refresh <= 0 {
		refresh = pipelines.DefaultRefresh.D()
	}
	refreshTick := time.NewTicker(refresh)
	defer refreshTick.Stop()
	syncEvery := p.cfg.Sync.Interval.D()
	if syncEvery <= 0 {
		syncEvery = pipelines.DefaultSyncInterval.D()
	}
	syncTick := time.NewTicker(syncEvery)
	defer syncTick.Stop()

	p.startAudit(ctx)
	p.discover(ctx)
	for {
		select {
		case <-ctx.Done():
			return p.stopped(nil)
		case <-refreshTick.C:
			p.discover(ctx)
		case <-p.refreshNow:
			p.discover(ctx)
		case now := <-saveTick.C:
			p.save(ctx)
			returnIdleMemory(now, p.log)
		case <-syncTick.C:
			p.syncGroups(ctx)
			p.syncACLs(ctx)
		}
	}
}

func (p *pipeline) fail(err error) {
	p.log.Error("pipeline failed", "err", err)
	p.mu.Lock()
	p.mu.state, p.mu.lastErr = StateFailed, err.Error()
	p.mu.Unlock()
}

// stopped waits for the tasks (each finishes its in-flight write), saves
// positions once more and closes the store.
func (p *pipeline) stopped(err error) error {
	p.stopping.Store(true)
	p.wakeFetchers()
	grace := time.AfterFunc(stopGrace, p.produceCancel)
	defer grace.Stop()
	defer p.produceCancel()
	p.taskRuns.Lock()
	p.taskRuns.closed = true
	p.taskRuns.Unlock()
	p.taskRuns.wg.Wait()
	p.wg.Wait()
	if p.rprod != nil {
		fctx, cancel := context.WithTimeout(p.produceCtx, stopGrace)
		_ = p.rprod.Flush(fctx)
		cancel()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	p.save(sctx)
	cancel()
	if p.store != nil {
		_ = p.store.Close()
	}
	p.mu.Lock()
	if p.mu.state != StateFailed {
		p.mu.state = StateStopped
	}
	for _, t := range p.mu.tasks {
		t.mu.Lock()
		t.mu.lc.state = StateStopped
		t.mu.Unlock()
	}
	p.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// openStore opens the checkpoint store and loads the pipeline's state,
// retrying until the destination answers. A corrupt checkpoint fails the
// pipeline: guessing a position could lose or repeat records.
func (p *pipeline) openStore(ctx context.Context) error {
	err := p.retry(ctx, "open checkpoint store", func() error {
		st, err := checkpoint.Open(ctx, p.ck, p.dst)
		if err != nil {
			return err
		}
		p.store = st
		return nil
	})
	if err != nil {
		return err
	}
	err = p.retry(ctx, "load checkpoints", func() error {
		st, err := p.store.Load(ctx, p.cfg.Name)
		if err != nil {
			if errors.Is(err, checkpoint.ErrCorrupt) {
				return backoff.Permanent(err)
			}
			return err
		}
		p.mu.Lock()
		p.mu.state0 = st
		if st != nil {
			p.mu.pids = append(p.mu.pids, st.ProducerIDs...)
		}
		p.mu.Unlock()
		if st != nil {
			for _, id := range st.ProducerIDs {
				p.e.ownPIDs.add(p.dstC.Name, id)
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		p.fail(err)
	}
	if err == nil {
		p.loadPeerPIDs(ctx)
		// Failover and failback refuse clusters other than these.
		if err := checkpoint.RecordClusters(ctx, p.store, p.cfg.Name, p.src, p.dst); err != nil {
			p.log.Warn("recording cluster identity", "err", err)
		}
	}
	return err
}

// loadPeerPIDs reads, from the checkpoint store kept on this pipeline's
// source cluster, the producer ids that the configuration's pipelines
// writing into that cluster have used, so that batch mode drops their
// batches even when they wrote them in an earlier run or from another
// daemon (active-active loop prevention).
func (p *pipeline) loadPeerPIDs(ctx context.Context) {
	if len(p.peers) == 0 {
		return
	}
	st, err := checkpoint.OpenReadOnly(ctx, p.ck, p.src)
	if err != nil {
		p.log.Warn("cannot read peer pipelines' producer ids", "err", err)
		return
	}
	defer st.Close()
	for _, name := range p.peers {
		s, err := st.Load(ctx, name)
		if err != nil || s == nil {
			continue
		}
		for _, id := range s.ProducerIDs {
			p.e.ownPIDs.add(p.srcC.Name, id)
		}
	}
}

func (p *pipeline) addPID(id int64) {
	p.mu.Lock()
	p.mu.pids = append(p.mu.pids, id)
	p.mu.Unlock()
	p.e.ownPIDs.add(p.dstC.Name, id)
}

// initProducer gets a fresh idempotent producer id on the destination,
// unless another task already did so after generation gen.
func (p *pipeline) initProducer(ctx context.Context, gen uint64) error {
	p.prod.mu.Lock()
	defer p.prod.mu.Unlock()
	if gen < p.prod.gen {
		return nil
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, p.dst)
	if err != nil {
		p.reach.dst.Store(false)
		return err
	}
	p.reach.dst.Store(true) // it answered, even if with an error
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	p.addPID(resp.ProducerID)
	// The id is stored before any batch carries it: a restart's
	// reconciliation tells the mirror's own batches on the destination by
	// it (active-active), so a crash must never leave an unknown id behind.
	if p.store != nil {
		if err := p.store.Save(ctx, p.cfg.Name, &checkpoint.State{ProducerIDs: []int64{resp.ProducerID}}); err != nil {
			return fmt.Errorf("store producer id: %w", err)
		}
	}
	p.prod.id, p.prod.epoch = resp.ProducerID, resp.ProducerEpoch
	p.prod.gen++
	clear(p.prod.seqs) // every partition starts at 0 under the new id
	p.log.Info("destination producer initialised", "producer_id", resp.ProducerID, "epoch", resp.ProducerEpoch)
	return nil
}

func (p *pipeline) producer() (int64, int16, uint64) {
	p.prod.mu.Lock()
	defer p.prod.mu.Unlock()
	return p.prod.id, p.prod.epoch, p.prod.gen
}

// save writes the positions of tasks that moved since the last save.
func (p *pipeline) save(ctx context.Context) {
	if p.store == nil {
		return
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	if !p.mayWrite() {
		return // fenced: the partitions may be another daemon's now
	}
	st := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{}}
	p.mu.Lock()
	st.ProducerIDs = append([]int64(nil), p.mu.pids...)
	var saved []*task
	for tp, t := range p.mu.tasks {
		t.mu.Lock()
		if t.mu.dirty && t.mu.haveStart {
			st.Partitions[tp] = &checkpoint.Partition{Pos: t.mu.pos, Map: t.omap.Clone(), DestTopic: t.dest}
			t.mu.dirty = false
			saved = append(saved, t)
		}
		t.mu.Unlock()
	}
	p.mu.Unlock()
	if !p.saveNeededLocked(st) {
		return
	}
	ctx, span := startSpan(ctx, "mirror.checkpoint", attribute.String("pipeline", p.cfg.Name),
		attribute.Int("partitions", len(st.Partitions)))
	err := p.store.Save(ctx, p.cfg.Name, st)
	endSpan(span, err)
	if err != nil {
		p.log.Warn("checkpoint save failed; will retry", "err", err)
		p.setErr("checkpoint save: " + err.Error())
		for _, t := range saved {
			t.mu.Lock()
			t.mu.dirty = true
			t.mu.Unlock()
		}
		p.errs.Add(1)
		return
	}
	p.saved, p.savedPIDs = true, st.ProducerIDs
}

// srcTopic is one selected source topic as the last metadata shows it.
type srcTopic struct {
	name  string
	parts []kmsg.MetadataResponseTopicPartition
}

// findTopic returns the topic named name in want (sorted by name).
func findTopic(want []srcTopic, name string) (srcTopic, bool) {
	i, ok := slices.BinarySearchFunc(want, name, func(t srcTopic, n string) int { return strings.Compare(t.name, n) })
	if !ok {
		return srcTopic{}, false
	}
	return want[i], true
}

// hasPartition reports whether part is among parts (Kafka numbers them
// 0..n-1 and lists them in order, which is tried first).
func hasPartition(parts []kmsg.MetadataResponseTopicPartition, part int32) bool {
	if int(part) < len(parts) && parts[part].Partition == part {
		return true
	}
	for _, pd := range parts {
		if pd.Partition == part {
			return true
		}
	}
	return false
}

// metaTurn picks the broker for the next metadata request.
var metaTurn atomic.Uint32

// requestMetadata sends req straight to one of cl's known brokers, in
// turn, so that the client does not keep a copy of the answer: a
// metadata request through the client itself is cached whole, and a
// refresh that reads every topic would hold a second copy of the
// cluster's metadata and allocate it again each round. Before the client
// knows any broker, or if that broker fails, the request goes through the
// client (which then learns the cluster's brokers anew).
func requestMetadata(ctx context.Context, cl *kgo.Client, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	if bs := cl.DiscoveredBrokers(); len(bs) > 0 {
		b := bs[int(metaTurn.Add(1)%uint32(len(bs)))]
		if kr, err := b.Request(ctx, req); err == nil {
			if resp := kr.(*kmsg.MetadataResponse); resp.ErrorCode == 0 {
				return resp, nil
			}
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp, nil
}

// sourceTopics reads every source topic and returns the selected ones,
// sorted by name.
func (p *pipeline) sourceTopics(ctx context.Context) ([]srcTopic, error) {
	req := kmsg.NewPtrMetadataRequest() // Topics nil: every topic
	resp, err := requestMetadata(ctx, p.src, req)
	if err != nil {
		return nil, err
	}
	want := make([]srcTopic, 0, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 || t.IsInternal || !p.cfg.Matches(*t.Topic) {
			continue
		}
		want = append(want, srcTopic{name: *t.Topic, parts: t.Partitions})
	}
	slices.SortFunc(want, func(a, b srcTopic) int { return strings.Compare(a.name, b.name) })
	return want, nil
}

// discover lists source topics, syncs destination topics, configs and
// partition counts, and starts or stops tasks to match. An idle round
// (nothing new, no leader moved) allocates little beyond the two
// metadata answers: it builds no per-partition map, and the fetchers'
// task lists are kept.
func (p *pipeline) discover(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	var want []srcTopic
	err := p.retry(ctx, "source metadata", func() error {
		var err error
		want, err = p.sourceTopics(ctx)
		p.reach.src.Store(err == nil)
		return err
	})
	if err != nil {
		return
	}
	names := make([]string, len(want))
	for i, t := range want {
		names[i] = t.name
	}
	dnames := destNames(p.cfg, names)
	// Destination leaders, read fresh (not from the client's metadata
	// cache); a topic missing from them is one to create.
	var fresh map[string][]int32
	err = p.retry(ctx, "destination metadata", func() error {
		var err error
		fresh, err = leaders(ctx, p.dst, dnames)
		p.reach.dst.Store(err == nil)
		return err
	})
	if err != nil {
		return
	}
	if p.e.fleet != nil {
		found := make(map[string][]int32, len(want))
		for _, t := range want {
			for _, pd := range t.parts {
				found[t.name] = append(found[t.name], pd.Partition)
			}
		}
		p.setDiscovered(found)
	}
	if p.sideEffects() && p.syncTopics(ctx, want, fresh) {
		// Topics created or grown just now: read their leaders again
		// so that their tasks start right away.
		if fresh, err = leaders(ctx, p.dst, dnames); err != nil {
			p.reach.dst.Store(false)
			return
		}
	}
	p.mu.Lock()
	for name, ls := range fresh {
		p.mu.dleaders[name] = ls
	}
	// Start tasks for new partitions, update leaders, stop vanished ones.
	// New tasks without a checkpoint start in a batch (startbatch.go); the
	// others start in their own goroutines.
	var unsaved, others []*task
	moved := p.mu.byLeader == nil
	for _, st := range want {
		name := st.name
		dest := p.cfg.DestTopic(name)
		dparts := len(fresh[dest])
		for _, pd := range st.parts {
			tp := checkpoint.TP{Topic: name, Partition: pd.Partition}
			t := p.mu.tasks[tp]
			if t == nil {
				if !p.owns(tp) {
					continue // another daemon's (workers:)
				}
				if int(pd.Partition) >= dparts {
					// Not grown (sync.partitions off, or growing failed):
					// say so, and look again at the next refresh.
					if dparts > 0 {
						p.mu.lastErr = fmt.Sprintf("destination topic %s has %d partitions, source %s has %d (sync.partitions: %v)",
							dest, dparts, name, len(st.parts), p.cfg.Sync.Partitions)
					}
					continue
				}
				t = newTask(p, tp, dest)
				p.mu.tasks[tp] = t
				moved = true
				if cp := p.checkpointLocked(tp); cp == nil || cp.DestTopic != dest {
					unsaved = append(unsaved, t)
				} else {
					others = append(others, t)
				}
			}
			t.mu.Lock()
			if t.mu.leader != pd.Leader {
				t.mu.leader, moved = pd.Leader, true
			}
			t.mu.Unlock()
			p.ensureFetcherLocked(ctx, pd.Leader)
		}
	}
	for tp, t := range p.mu.tasks {
		if st, ok := findTopic(want, tp.Topic); ok && hasPartition(st.parts, tp.Partition) {
			continue
		}
		t.stop()
		t.mu.Lock()
		t.settleLocked(false)
		p.mu.retiredRecords += t.mu.records
		p.mu.retiredBytes += t.mu.bytes
		t.mu.Unlock()
		delete(p.mu.tasks, tp)
		moved = true
	}
	if moved {
		// The fetchers read these lists without the lock: replace, never
		// change, them.
		byLeader := map[int32][]*task{}
		for _, t := range p.mu.tasks {
			t.mu.Lock()
			l := t.mu.leader
			t.mu.Unlock()
			byLeader[l] = append(byLeader[l], t)
		}
		p.mu.byLeader = byLeader
	}
	started := false
	for _, t := range p.mu.tasks {
		t.mu.Lock()
		if !t.mu.haveStart {
			started = true
		}
		t.mu.Unlock()
	}
	p.startsAdded(len(unsaved)+len(others), time.Now())
	p.mu.Unlock()
	if started && p.rprod != nil {
		// The producer fails records for partitions its metadata does
		// not know yet; new partitions must be seen before tasks write.
		p.rprod.ForceMetadataRefresh()
	}
	for _, t := range others {
		t.notify() // reconciles its checkpoint in its own goroutine
	}
	for _, t := range p.startFresh(ctx, unsaved) {
		t.notify()
	}
	p.wakeFetchers()
}

// checkpointLocked is the loaded checkpoint of tp, if any.
func (p *pipeline) checkpointLocked(tp checkpoint.TP) *checkpoint.Partition {
	if p.mu.state0 == nil {
		return nil
	}
	return p.mu.state0.Partitions[tp]
}

// destLeader returns the destination partition's leader (-1 unknown).
func (p *pipeline) destLeader(topic string, part int32) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := p.mu.dleaders[topic]
	if int(part) < len(ls) {
		return ls[part]
	}
	return -1
}

// refreshDestLeaders re-reads the destination's partition leaders.
func (p *pipeline) refreshDestLeaders(ctx context.Context, topic string) {
	fresh, err := leaders(ctx, p.dst, []string{topic})
	if err != nil {
		p.reach.dst.Store(false)
		return
	}
	p.mu.Lock()
	for name, ls := range fresh {
		p.mu.dleaders[name] = ls
	}
	p.mu.Unlock()
}

func destNames(p *pipelines.Pipeline, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p.DestTopic(n)
	}
	return out
}

// leaders asks the cluster directly (no metadata cache) for the
// partition leaders of topics; topics that do not exist are left out.
func leaders(ctx context.Context, cl *kgo.Client, topics []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	if len(topics) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false // the engine creates topics itself, with the source's shape
	req.Topics = make([]kmsg.MetadataRequestTopic, len(topics))
	for i, t := range topics {
		req.Topics[i] = kmsg.NewMetadataRequestTopic()
		req.Topics[i].Topic = kmsg.StringPtr(t)
	}
	resp, err := requestMetadata(ctx, cl, req)
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		ls := make([]int32, len(t.Partitions))
		for _, pd := range t.Partitions {
			if int(pd.Partition) < len(ls) {
				ls[pd.Partition] = pd.Leader
			}
		}
		out[*t.Topic] = ls
	}
	return out, nil
}

// requestRefresh asks the driver to rediscover now (source leaders moved).
func (p *pipeline) requestRefresh() {
	select {
	case p.refreshNow <- struct{}{}:
	default:
	}
}

// syncGroups is replaced by the checkpoint package's group offset sync
// when configured; see groups.go.
func (p *pipeline) syncGroups(ctx context.Context) {
	if p.sideEffects() {
		p.syncGroupOffsets(ctx)
	}
}

// pause and resume act on every task of the pipeline.
func (p *pipeline) setPaused(paused bool) {
	p.mu.Lock()
	p.mu.paused = paused
	ts := make([]*task, 0, len(p.mu.tasks))
	for _, t := range p.mu.tasks {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	for _, t := range ts {
		if paused {
			t.pause()
		} else {
			t.resume()
		}
	}
}

func (p *pipeline) task(topic string, part int32) *task {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.tasks[checkpoint.TP{Topic: topic, Partition: part}]
}

func (p *pipeline) status(now time.Time) PipelineStatus {
	p.mu.Lock()
	ps := PipelineStatus{Name: p.cfg.Name, Source: p.cfg.Source, Destination: p.cfg.Destination,
		Mode: string(p.mode()), State: p.mu.state, LastError: p.mu.lastErr, Connected: p.reach.connected(),
		SourceConnected: p.reach.src.Load(), DestinationConnected: p.reach.dst.Load()}
	if p.cfg.Sync.ACLs {
		ps.ACLs = p.acls.snapshot()
	}
	if p.mu.paused && ps.State == StateRunning {
		ps.State = StatePaused
	}
	ts := make([]*task, 0, len(p.mu.tasks))
	for _, t := range p.mu.tasks {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	for _, t := range ts {
		ps.Partitions = append(ps.Partitions, t.status(now))
	}
	sort.Slice(ps.Partitions, func(i, j int) bool {
		a, b := ps.Partitions[i], ps.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if ps.Partitions == nil {
		ps.Partitions = []PartitionStatus{}
	}
	return ps
}
