package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"strait/checkpoint"
	"strait/mirror/assign"
	"strait/mirror/member"
	"strait/pipelines"
)

// ErrFleet marks a fleet (workers:) setting the engine cannot apply.
var ErrFleet = errors.New("mirror: fleet")

// fleet is the engine's side of a workers group (see doc.go, "Fleet"): it
// keeps the daemon in the group through package member, answers the
// membership's callbacks with the engine's partitions, and tells the
// pipelines which partitions they may run.
//
// Lock order: fleet.handoff before pipeline.saveMu before pipeline.mu;
// fleet.mu is a leaf.
type fleet struct {
	e       *Engine
	w       pipelines.Workers
	cluster *pipelines.Cluster
	id      string // this daemon's id, stable for the process
	version string
	log     *slog.Logger
	met     *fleetMetrics

	cl *kgo.Client
	m  atomic.Pointer[member.Membership]
	// handoff serialises Assigned, Fenced and the final release: one
	// change of ownership at a time.
	handoff sync.Mutex

	mu struct {
		sync.Mutex
		fingerprint string
		// owned is what the last assignment gave this daemon;
		// loading are the gained partitions whose checkpoints are being
		// read: they start once loaded. Invariant: loading ⊆ owned.
		owned   map[assign.Partition]bool
		loading map[assign.Partition]bool
		// released are the partitions revoked in the last round with
		// the rates measured on them, for the next join's metadata.
		released   []assign.Owned
		generation int32
		mismatch   string
		closing    bool
		// owners is the leader's last assignment: partition -> daemon.
		owners map[assign.Partition]string
		// writeCtx ends at a fence: record-mode writes carry it, so the
		// producer fails what it has not sent yet.
		writeCtx    context.Context
		writeCancel context.CancelFunc
	}
}

// fleetMetrics are the rebalance instruments.
type fleetMetrics struct {
	rebalances metric.Int64Counter
	duration   metric.Float64Histogram
	moved      metric.Int64Counter
	fences     metric.Int64Counter
}

// defaultDaemonID is the daemon id when none is configured: host name and
// process id, stable for the life of the process and unique on a host.
func defaultDaemonID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "strait"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// buildVersion is the strait version the binary was built as.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

func newFleet(e *Engine, cfg *pipelines.Config) (*fleet, error) {
	w := *cfg.Workers
	c := cfg.Cluster(w.Cluster)
	if c == nil {
		return nil, fmt.Errorf("%w: workers.cluster %q is not a configured cluster", ErrFleet, w.Cluster)
	}
	if w.Group == "" {
		w.Group = pipelines.DefaultGroup(cfg)
	}
	f := &fleet{e: e, w: w, cluster: c, id: e.opts.DaemonID, version: e.opts.Version}
	if f.id == "" {
		f.id = defaultDaemonID()
	}
	if f.version == "" {
		f.version = buildVersion()
	}
	f.log = e.log.With("daemon", f.id)
	f.mu.fingerprint = cfg.Fingerprint()
	f.mu.owned = map[assign.Partition]bool{}
	f.mu.loading = map[assign.Partition]bool{}
	f.mu.generation = -1
	f.mu.writeCtx, f.mu.writeCancel = context.WithCancel(context.Background())
	m := e.opts.Meter
	var err error
	f.met = &fleetMetrics{}
	if f.met.rebalances, err = e.meter().Int64Counter("strait.mirror.rebalances", metric.WithUnit("{rebalance}"),
		metric.WithDescription("rebalances of the workers group this daemon completed")); err != nil {
		return nil, err
	}
	if f.met.duration, err = e.meter().Float64Histogram("strait.mirror.rebalance.duration", metric.WithUnit("s"),
		metric.WithDescription("time from the start of a join to the end of applying its assignment")); err != nil {
		return nil, err
	}
	if f.met.moved, err = e.meter().Int64Counter("strait.mirror.rebalance.partitions_moved", metric.WithUnit("{partition}"),
		metric.WithDescription("partitions this daemon gave up (direction=revoked) or took over (direction=gained) in rebalances")); err != nil {
		return nil, err
	}
	if f.met.fences, err = e.meter().Int64Counter("strait.mirror.fences", metric.WithUnit("{fence}"),
		metric.WithDescription("self-fences: the daemon stopped writing because it could not prove its membership alive")); err != nil {
		return nil, err
	}
	_ = m
	return f, nil
}

// start joins the group: a client of its own on the workers cluster (a
// JoinGroup parked at the coordinator holds the client's connection) and a
// membership driven until ctx ends or stop.
func (f *fleet) start(ctx context.Context) error {
	opts, err := f.cluster.ClientOptions()
	if err != nil {
		return fmt.Errorf("%w: cluster %q: %v", ErrConfig, f.cluster.Name, err)
	}
	if f.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("%w: workers client: %v", ErrConfig, err)
	}
	m, err := member.New(f.cl, member.Config{
		Group:             f.w.Group,
		SessionTimeout:    f.w.SessionTimeout.D(),
		RebalanceTimeout:  f.w.RebalanceTimeout.D(),
		HeartbeatInterval: f.w.HeartbeatInterval.D(),
		Metadata:          f.metadata,
		Assign:            f.assign,
		Assigned:          f.assigned,
		Fenced:            f.fenced,
		Rebalanced:        f.rebalanced,
		Logger:            f.log,
	})
	if err != nil {
		f.cl.Close()
		return fmt.Errorf("%w: %w", ErrFleet, err)
	}
	f.m.Store(m)
	f.log.Info("joining workers group", "group", f.w.Group, "cluster", f.cluster.Name)
	go func() {
		if err := m.Run(ctx); err != nil {
			f.log.Error("workers group membership ended", "group", f.w.Group, "err", err)
		}
	}()
	return nil
}

// stop hands every owned partition back cleanly (drained, checkpointed)
// while the lease still holds, then leaves the group.
func (f *fleet) stop() {
	f.mu.Lock()
	f.mu.closing = true
	f.mu.Unlock()
	f.handoff.Lock()
	f.mu.Lock()
	all := keys(f.mu.owned)
	f.mu.owned, f.mu.loading = map[assign.Partition]bool{}, map[assign.Partition]bool{}
	f.mu.Unlock()
	f.release(context.Background(), all, true)
	f.handoff.Unlock()
	if m := f.m.Load(); m != nil {
		m.Close()
	}
	if f.cl != nil {
		f.cl.Close()
	}
}

// canWrite: the lease rule. A destination write or a checkpoint save may
// start only while now is before the membership's lease.
func (f *fleet) canWrite(now time.Time) bool {
	m := f.m.Load()
	return m != nil && m.CanWrite(now)
}

// leads reports whether this daemon runs the pipelines' once-per-fleet
// side effects: creating and growing destination topics, copying topic
// configs, group offset sync. The elected leader does.
func (f *fleet) leads() bool {
	m := f.m.Load()
	if m == nil {
		return false
	}
	st := m.State()
	return st.Leader && !st.Fenced && st.Generation >= 0
}

// owns reports whether the pipeline may run a task for tp now.
func (f *fleet) owns(pipeline string, tp checkpoint.TP) bool {
	k := assign.Partition{Pipeline: pipeline, Topic: tp.Topic, Partition: tp.Partition}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.owned[k] && !f.mu.loading[k] && !f.mu.closing
}

func (f *fleet) writeContext() context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.writeCtx
}

// partitionsChanged: a pipeline's discovery saw its partition set change;
// the leader starts a rebalance so the change is assigned.
func (f *fleet) partitionsChanged() {
	if m := f.m.Load(); m != nil && f.leads() {
		m.Rejoin()
	}
}

// setFingerprint follows a configuration reload: the next join carries it.
func (f *fleet) setFingerprint(fp string) {
	f.mu.Lock()
	changed := f.mu.fingerprint != fp
	f.mu.fingerprint = fp
	f.mu.Unlock()
	if m := f.m.Load(); changed && m != nil {
		m.Rejoin()
	}
}

// metadata is this daemon's JoinGroup metadata: what it owns with the
// bytes/s measured on each, and what it released last round.
func (f *fleet) metadata() []byte {
	f.mu.Lock()
	md := assign.Member{ID: f.id, Version: f.version, Fingerprint: f.mu.fingerprint,
		Released: slices.Clone(f.mu.released)}
	owned := keys(f.mu.owned)
	f.mu.Unlock()
	rates := f.e.rates()
	for _, p := range owned {
		r, ok := rates[p]
		if !ok {
			r = assign.Unmeasured
		}
		md.Owned = append(md.Owned, assign.Owned{Partition: p, Rate: r})
	}
	return assign.EncodeMember(md)
}

// rates are the bytes/s the engine's running tasks measured, per
// partition (measured: a task that has not copied for a second yet has
// none).
func (e *Engine) rates() map[assign.Partition]int64 {
	out := map[assign.Partition]int64{}
	now := time.Now()
	for _, r := range e.runsSnapshot() {
		for _, t := range r.p.taskList() {
			s := t.status(now)
			if s.RecordsTotal == 0 && s.BytesPerSec == 0 {
				continue
			}
			out[assign.Partition{Pipeline: r.p.cfg.Name, Topic: t.tp.Topic, Partition: t.tp.Partition}] = int64(s.BytesPerSec)
		}
	}
	return out
}

func (e *Engine) runsSnapshot() []*pipelineRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*pipelineRun, 0, len(e.mu.runs))
	for _, r := range e.mu.runs {
		out = append(out, r)
	}
	return out
}

func (p *pipeline) taskList() []*task {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := make([]*task, 0, len(p.mu.tasks))
	for _, t := range p.mu.tasks {
		ts = append(ts, t)
	}
	return ts
}

// assign runs on the elected leader: every member's metadata and every
// partition the leader's pipelines discovered go through the assignor.
func (f *fleet) assign(members []member.Member) (map[string][]byte, error) {
	f.mu.Lock()
	fp := f.mu.fingerprint
	f.mu.Unlock()
	ms := make([]assign.Member, 0, len(members))
	daemon := map[string]string{} // member id -> daemon id
	for _, mb := range members {
		md, err := assign.DecodeMember(mb.Metadata)
		if err != nil {
			// A member that speaks another layout cannot share work;
			// the fingerprint rule leaves it out with a reason.
			f.log.Warn("workers group member sent unreadable metadata", "member", mb.ID, "err", err)
			md = assign.Member{Fingerprint: "unreadable metadata: " + err.Error()}
		}
		daemon[mb.ID] = md.ID
		md.ID = mb.ID
		ms = append(ms, md)
	}
	parts := f.e.assignable(ms)
	res := assign.Assign(fp, ms, parts)
	out := make(map[string][]byte, len(res.Members))
	owners := map[assign.Partition]string{}
	for _, mr := range res.Members {
		out[mr.ID] = assign.EncodeAssignment(mr.Assignment)
		for _, p := range mr.Target {
			owners[p] = daemon[mr.ID]
		}
	}
	for _, mm := range res.Mismatched {
		f.log.Error("workers group member left without work: configuration differs", "member", mm.ID, "daemon", daemon[mm.ID], "reason", mm.Reason)
	}
	f.mu.Lock()
	f.mu.owners = owners
	f.mu.Unlock()
	f.log.Info("assigned the workers group's partitions", "members", len(ms), "partitions", len(parts),
		"moved", res.Moved, "follow_up", res.FollowUp, "mismatched", len(res.Mismatched))
	return out, nil
}

// assignable is every partition the engine's pipelines mirror now. A
// pipeline that has not finished its first discovery keeps what the
// members own or released of it, so a leader that just started does not
// strip the others of their work.
func (e *Engine) assignable(ms []assign.Member) []assign.Partition {
	var out []assign.Partition
	pending := map[string]bool{}
	for _, r := range e.runsSnapshot() {
		ps, ok := r.p.discoveredParts()
		if !ok {
			pending[r.p.cfg.Name] = true
			continue
		}
		out = append(out, ps...)
	}
	seen := map[assign.Partition]bool{}
	for _, m := range ms {
		for _, os := range [][]assign.Owned{m.Owned, m.Released} {
			for _, o := range os {
				if pending[o.Pipeline] && !seen[o.Partition] {
					seen[o.Partition] = true
					out = append(out, o.Partition)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// assigned applies this daemon's assignment: revoke what it lost
// (stop fetching, wait for in-flight writes, checkpoint), then read the
// checkpoints of what it gained and start those tasks. It asks for a
// rejoin when it revoked something, so the leader can hand that out.
func (f *fleet) assigned(ctx context.Context, generation int32, payload []byte) bool {
	f.handoff.Lock()
	defer f.handoff.Unlock()
	a, err := assign.DecodeAssignment(payload)
	if err != nil {
		f.log.Error("unreadable assignment; running nothing until the next one", "generation", generation, "err", err)
		a = assign.Assignment{}
	}
	want := map[assign.Partition]bool{}
	for _, p := range a.Assigned {
		want[p] = true
	}
	f.mu.Lock()
	if f.mu.closing {
		want = map[assign.Partition]bool{}
	}
	var revoke, gain []assign.Partition
	for p := range f.mu.owned {
		if !want[p] {
			revoke = append(revoke, p)
		}
	}
	for p := range want {
		if !f.mu.owned[p] {
			gain = append(gain, p)
		}
	}
	if a.Mismatch != f.mu.mismatch {
		if a.Mismatch != "" {
			f.log.Error("configuration differs from the workers group leader's; this daemon copies nothing", "generation", generation, "reason", a.Mismatch)
		} else if f.mu.mismatch != "" {
			f.log.Info("configuration matches the workers group leader's again", "generation", generation)
		}
	}
	f.mu.mismatch = a.Mismatch
	f.mu.generation = generation
	f.mu.owned = want
	f.mu.loading = map[assign.Partition]bool{}
	for _, p := range gain {
		f.mu.loading[p] = true
	}
	if f.mu.writeCtx.Err() != nil {
		f.mu.writeCtx, f.mu.writeCancel = context.WithCancel(context.Background())
	}
	f.mu.Unlock()
	sortParts(revoke)
	sortParts(gain)

	rates := f.release(ctx, revoke, true)
	f.mu.Lock()
	f.mu.released = rates
	f.mu.Unlock()
	if len(revoke) > 0 {
		f.met.moved.Add(context.Background(), int64(len(revoke)), metric.WithAttributes(attribute.String("direction", "revoked")))
	}
	if ctx.Err() != nil {
		return false
	}
	loaded := f.e.loadCheckpoints(ctx, gain)
	f.mu.Lock()
	for _, p := range loaded {
		delete(f.mu.loading, p)
	}
	f.mu.Unlock()
	if len(gain) > 0 {
		f.met.moved.Add(context.Background(), int64(len(loaded)), metric.WithAttributes(attribute.String("direction", "gained")))
	}
	for _, r := range f.e.runsSnapshot() {
		r.p.requestRefresh()
	}
	f.log.Info("workers assignment applied", "generation", generation, "owned", len(want),
		"revoked", len(revoke), "gained", len(loaded), "follow_up", a.FollowUp)
	return len(revoke) > 0
}

// fenced: the membership can no longer prove the session alive. Writes
// stop at once, nothing is checkpointed (the partitions may already be
// another daemon's, whose checkpoint a late save would overwrite), every
// task is dropped, and the daemon owns nothing until its next assignment.
func (f *fleet) fenced() {
	f.mu.Lock()
	f.mu.writeCancel()
	all := keys(f.mu.owned)
	f.mu.owned, f.mu.loading, f.mu.released = map[assign.Partition]bool{}, map[assign.Partition]bool{}, nil
	f.mu.Unlock()
	f.met.fences.Add(context.Background(), 1)
	f.release(context.Background(), all, false)
	f.log.Warn("fenced: stopped every partition without checkpointing; rejoining the workers group", "partitions", len(all))
}

func (f *fleet) rebalanced(generation int32, took time.Duration) {
	f.met.rebalances.Add(context.Background(), 1)
	f.met.duration.Record(context.Background(), took.Seconds())
}

// release stops the tasks of ps on every pipeline; with drain it waits for
// their writes to be acknowledged and checkpoints them. It returns the
// rates measured on them.
func (f *fleet) release(ctx context.Context, ps []assign.Partition, drain bool) []assign.Owned {
	if len(ps) == 0 {
		return nil
	}
	by := map[string][]checkpoint.TP{}
	for _, p := range ps {
		by[p.Pipeline] = append(by[p.Pipeline], checkpoint.TP{Topic: p.Topic, Partition: p.Partition})
	}
	var out []assign.Owned
	for _, r := range f.e.runsSnapshot() {
		tps := by[r.p.cfg.Name]
		if len(tps) == 0 {
			continue
		}
		out = append(out, r.p.release(ctx, tps, drain)...)
	}
	return out
}

// release stops the tasks of tps: no more fetches, the write in flight
// finishes (batch mode) or every record handed to the producer has its
// answer (record mode); with drain their positions are saved before the
// tasks are forgotten. Without drain (a fence) nothing is saved.
func (p *pipeline) release(ctx context.Context, tps []checkpoint.TP, drain bool) []assign.Owned {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	var ts []*task
	for _, tp := range tps {
		if t := p.mu.tasks[tp]; t != nil {
			ts = append(ts, t)
		}
	}
	p.mu.Unlock()
	now := time.Now()
	var rates []assign.Owned
	for _, t := range ts {
		s := t.status(now)
		rates = append(rates, assign.Owned{Partition: assign.Partition{Pipeline: p.cfg.Name, Topic: t.tp.Topic, Partition: t.tp.Partition},
			Rate: int64(s.BytesPerSec)})
		t.stop()
	}
	deadline := time.Now().Add(stopGrace)
	for _, t := range ts {
		<-t.doneChan()
		if rw, ok := t.w.(*recordWriter); ok {
			// Records already with the producer land or fail; the
			// position must account for each before it is saved.
			for rw.busy() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	if drain && len(ts) > 0 && p.mayWrite() && p.storeReady() {
		st := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{}}
		for _, t := range ts {
			t.mu.Lock()
			if t.mu.haveStart {
				st.Partitions[t.tp] = &checkpoint.Partition{Pos: t.mu.pos, Map: t.omap.Clone(), DestTopic: t.dest}
			}
			t.mu.Unlock()
		}
		if len(st.Partitions) > 0 {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := p.retry(sctx, "checkpoint released partitions", func() error {
				if !p.mayWrite() {
					return nil // fenced meanwhile: the save must not land
				}
				return p.store.Save(sctx, p.cfg.Name, st)
			})
			cancel()
			if err != nil {
				p.log.Error("checkpoint of released partitions failed; their next owner reconciles from the previous one", "err", err)
			}
		}
	}
	p.mu.Lock()
	for _, t := range ts {
		if p.mu.tasks[t.tp] == t {
			delete(p.mu.tasks, t.tp)
		}
	}
	p.mu.Unlock()
	for _, t := range ts {
		// A fetch in flight for the task hands its chunk over after the
		// task stopped: wait for it, then give its bytes back.
		for i := 0; i < 1000; i++ {
			t.mu.Lock()
			busy := t.mu.inflight
			if !busy {
				t.dropQueueLocked()
			}
			t.mu.Unlock()
			if !busy {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.wakeFetchers()
	if len(ts) > 0 {
		p.log.Info("partitions released", "partitions", len(ts), "checkpointed", drain)
	}
	return rates
}

// busy reports whether a record handed to the producer has no answer yet.
func (w *recordWriter) busy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.mu.pending[w.mu.head:] {
		if !e.done {
			return true
		}
	}
	return false
}

// storeReady: the pipeline opened its checkpoint store (p.store is set
// before the state leaves starting, under p.mu).
func (p *pipeline) storeReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.store != nil && p.mu.state != StateStarting
}

// loadCheckpoints reads, for every gained partition, the checkpoint its
// previous owner saved, so the task starts from it (and reconciles with
// the destination tail). It returns the partitions that may start.
func (e *Engine) loadCheckpoints(ctx context.Context, gain []assign.Partition) []assign.Partition {
	by := map[string][]assign.Partition{}
	for _, p := range gain {
		by[p.Pipeline] = append(by[p.Pipeline], p)
	}
	var out []assign.Partition
	runs := map[string]*pipelineRun{}
	for _, r := range e.runsSnapshot() {
		runs[r.p.cfg.Name] = r
	}
	for name, ps := range by {
		r := runs[name]
		if r == nil {
			continue // not a pipeline of this configuration
		}
		if !r.p.storeReady() {
			// The pipeline loads every checkpoint when its store opens.
			out = append(out, ps...)
			continue
		}
		var st *checkpoint.State
		err := r.p.retry(ctx, "load checkpoints of gained partitions", func() error {
			var err error
			st, err = r.p.store.Load(ctx, name)
			return err
		})
		if err != nil {
			continue // fencing or stopping
		}
		r.p.adoptCheckpoints(st, ps)
		out = append(out, ps...)
	}
	return out
}

// adoptCheckpoints replaces the loaded checkpoints of ps with st's.
func (p *pipeline) adoptCheckpoints(st *checkpoint.State, ps []assign.Partition) {
	p.mu.Lock()
	if p.mu.state0 == nil {
		p.mu.state0 = &checkpoint.State{}
	}
	if p.mu.state0.Partitions == nil {
		p.mu.state0.Partitions = map[checkpoint.TP]*checkpoint.Partition{}
	}
	for _, ap := range ps {
		tp := checkpoint.TP{Topic: ap.Topic, Partition: ap.Partition}
		var cp *checkpoint.Partition
		if st != nil {
			cp = st.Partitions[tp]
		}
		if cp != nil {
			p.mu.state0.Partitions[tp] = cp
		} else {
			delete(p.mu.state0.Partitions, tp)
		}
	}
	p.mu.Unlock()
	if st != nil {
		// Other daemons' producer ids: their batches on the destination
		// are this pipeline's copies (reconciliation, loop protection).
		for _, id := range st.ProducerIDs {
			p.e.ownPIDs.add(p.dstC.Name, id)
		}
	}
}

// owns is the pipeline's ownership filter: alone, a daemon owns every
// partition; in a fleet, the ones its assignment gave it.
func (p *pipeline) owns(tp checkpoint.TP) bool {
	return p.e.fleet == nil || p.e.fleet.owns(p.cfg.Name, tp)
}

// mayWrite is the lease gate in front of every destination write and
// checkpoint save.
func (p *pipeline) mayWrite() bool {
	return p.e.fleet == nil || p.e.fleet.canWrite(time.Now())
}

// sideEffects: this daemon runs the pipeline's once-per-fleet work.
func (p *pipeline) sideEffects() bool {
	return p.e.fleet == nil || p.e.fleet.leads()
}

// waitLease blocks a task's write until the lease allows it; false when the
// task stops first (a fence drops every task, so a write refused here is
// never made).
func (t *task) waitLease(ctx context.Context) bool {
	for !t.p.mayWrite() {
		if !t.wait(ctx, 20*time.Millisecond) {
			return false
		}
	}
	return true
}

// setDiscovered records the source partitions discovery found; the fleet
// leader rebalances when they change.
func (p *pipeline) setDiscovered(want map[string][]int32) {
	if p.e.fleet == nil {
		return
	}
	var ps []assign.Partition
	for topic, parts := range want {
		for _, k := range parts {
			ps = append(ps, assign.Partition{Pipeline: p.cfg.Name, Topic: topic, Partition: k})
		}
	}
	sortParts(ps)
	p.mu.Lock()
	changed := !p.mu.discovered || !slices.Equal(p.mu.parts, ps)
	p.mu.parts, p.mu.discovered = ps, true
	p.mu.Unlock()
	if changed {
		p.e.fleet.partitionsChanged()
	}
}

func (p *pipeline) discoveredParts() ([]assign.Partition, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.parts), p.mu.discovered
}

// FleetStatus is a pipeline's view of the workers group (nil without
// workers:).
type FleetStatus struct {
	Group      string `json:"group"`
	Daemon     string `json:"daemon"` // this daemon's id
	MemberID   string `json:"member_id,omitempty"`
	Generation int32  `json:"generation"`
	Leader     bool   `json:"leader"`
	Fenced     bool   `json:"fenced,omitempty"`
	// Mismatch says why this daemon gets no work: its configuration
	// differs from the leader's.
	Mismatch string `json:"mismatch,omitempty"`
	// Owned counts the pipeline's partitions this daemon owns.
	Owned int `json:"owned"`
	// Owners, on the leader, is the daemon each of the pipeline's
	// partitions is assigned to ("topic/partition" -> daemon id).
	Owners map[string]string `json:"owners,omitempty"`
	// Rebalances completed and how long the last one took.
	Rebalances    int64         `json:"rebalances"`
	LastRebalance time.Duration `json:"last_rebalance_ns"`
}

// decorate adds the fleet's view to each pipeline's status.
func (f *fleet) decorate(out []PipelineStatus) {
	var st member.State
	if m := f.m.Load(); m != nil {
		st = m.State()
	} else {
		st = member.State{Group: f.w.Group, Generation: -1}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range out {
		ps := &out[i]
		fs := &FleetStatus{Group: f.w.Group, Daemon: f.id, MemberID: st.MemberID, Generation: st.Generation,
			Leader: st.Leader, Fenced: st.Fenced, Mismatch: f.mu.mismatch,
			Rebalances: st.Rebalances, LastRebalance: st.LastRebalance}
		for p := range f.mu.owned {
			if p.Pipeline == ps.Name {
				fs.Owned++
			}
		}
		if st.Leader {
			for p, d := range f.mu.owners {
				if p.Pipeline == ps.Name {
					if fs.Owners == nil {
						fs.Owners = map[string]string{}
					}
					fs.Owners[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = d
				}
			}
		}
		ps.Fleet = fs
		for j := range ps.Partitions {
			ps.Partitions[j].Owner = f.id
		}
	}
}

func keys(m map[assign.Partition]bool) []assign.Partition {
	out := make([]assign.Partition, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sortParts(out)
	return out
}

func sortParts(ps []assign.Partition) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Compare(ps[j]) < 0 })
}

// workersKey is what of workers: a reload cannot change.
func workersKey(cfg *pipelines.Config) pipelines.Workers {
	w := *cfg.Workers
	w.Pos = pipelines.Position{}
	if w.Group == "" {
		w.Group = pipelines.DefaultGroup(cfg)
	}
	return w
}

func (f *fleet) workersKey() pipelines.Workers {
	w := f.w
	w.Pos = pipelines.Position{}
	return w
}

// loadFleetCheckpoints: on the fleet leader, group offset sync translates
// the partitions other daemons copy through their last checkpoints (exact
// for every commit at or below the checkpointed position; the rest
// translate to the checkpointed destination offset, which is behind and
// so safe: a consumer may re-read, never skip).
func (p *pipeline) loadFleetCheckpoints(ctx context.Context) {
	if p.e.fleet == nil || !p.storeReady() {
		return
	}
	st, err := p.store.Load(ctx, p.cfg.Name)
	if err != nil {
		p.log.Warn("cannot read checkpoints for group offset sync", "err", err)
		return
	}
	p.mu.Lock()
	p.mu.fleetCk = st
	p.mu.Unlock()
}

// translateFromCheckpoint translates through the loaded checkpoint of a
// partition this daemon does not copy (fleet leader only).
func (p *pipeline) translateFromCheckpoint(tp checkpoint.TP, offset int64) (string, int64, bool) {
	p.mu.Lock()
	st := p.mu.fleetCk
	p.mu.Unlock()
	if st == nil {
		return "", 0, false
	}
	return st.Translate(tp, offset)
}
