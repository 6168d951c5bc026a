package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/pipelines"
)

// Writer is the pipeline's running writer that a planned failover drains
// and stops: the failover's own engine (StartEngine) or a daemon reached
// through its admin API.
type Writer interface {
	// Positions reports, per source partition, the next source offset the
	// pipeline will copy.
	Positions(ctx context.Context) (map[checkpoint.TP]int64, error)
	// Stop stops the pipeline's writes; it returns once no write is in
	// flight. Checkpoints may follow later; Failover waits for them.
	Stop(ctx context.Context) error
}

// Options say what Failover moves and how.
type Options struct {
	Config   *pipelines.Config
	Pipeline string
	// Groups selects source groups by an anchored expression; nil: every
	// group with commits on the pipeline's topics.
	Groups *regexp.Regexp
	// Planned drains and stops the pipeline and waits for each group to be
	// Empty on the source; false is the unplanned failover (source gone).
	Planned bool
	DryRun  bool
	// Force acts despite a cluster identity mismatch or unmirrored records.
	Force bool
	// Writer is drained and stopped by a planned failover; nil: the
	// pipeline is already stopped (its checkpoints are final).
	Writer Writer
	// LagTimeout bounds the drain, GroupTimeout the wait for each group to
	// be Empty, CheckpointTimeout the wait for the final checkpoints.
	LagTimeout, GroupTimeout, CheckpointTimeout time.Duration
	// SourceTimeout bounds each request to the source in an unplanned
	// failover (the source may be gone).
	SourceTimeout time.Duration
	// Progress receives one line per second of every wait (nil: none).
	Progress func(string)
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.LagTimeout <= 0 {
		o.LagTimeout = 5 * time.Minute
	}
	if o.GroupTimeout <= 0 {
		o.GroupTimeout = 5 * time.Minute
	}
	if o.CheckpointTimeout <= 0 {
		o.CheckpointTimeout = 30 * time.Second
	}
	if o.SourceTimeout <= 0 {
		o.SourceTimeout = 5 * time.Second
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Report is what a failover did (or, dry, would do).
type Report struct {
	Pipeline    string      `json:"pipeline"`
	Source      string      `json:"source"`
	Destination string      `json:"destination"`
	Mode        string      `json:"mode"` // planned | unplanned
	DryRun      bool        `json:"dry_run"`
	Identity    Identity    `json:"identity"`
	Drain       *Drain      `json:"drain,omitempty"`
	Partitions  []Partition `json:"partitions"`
	Groups      []GroupMove `json:"groups"`
	Warnings    []string    `json:"warnings,omitempty"`
	Started     time.Time   `json:"started"`
	DurationMS  int64       `json:"duration_ms"`
}

// Identity compares the clusters reached now with the ones recorded with
// the checkpoints ("" where unknown).
type Identity struct {
	Source         string `json:"source"`
	Dest           string `json:"dest"`
	RecordedSource string `json:"recorded_source"`
	RecordedDest   string `json:"recorded_dest"`
	Recorded       bool   `json:"recorded"`
}

// Drain is the planned failover's wait for lag 0.
type Drain struct {
	LagBefore int64 `json:"lag_before"` // records behind when it started
	WaitedMS  int64 `json:"waited_ms"`
	Stopped   bool  `json:"stopped"` // the pipeline's writes were stopped
}

// Partition is one mirrored partition at the moment of the move.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	DestTopic string `json:"dest_topic"`
	// Mirrored is the checkpointed next source offset; DestEnd the
	// destination's end.
	Mirrored int64 `json:"mirrored"`
	DestEnd  int64 `json:"dest_end"`
	// SourceEnd is the source's end (-1: source unreachable).
	SourceEnd int64 `json:"source_end"`
	// RPORecords: records the source acknowledged that the destination
	// never received (-1: unknown, the source is gone).
	RPORecords int64 `json:"rpo_records"`
	// RPOMS: for RPORecords > 0, the time from the oldest of them to the
	// newest; when the source is gone, the age of the last mirrored record
	// (an upper bound on the window of loss). -1: unknown.
	RPOMS int64 `json:"rpo_ms"`
}

// GroupMove is one group's move.
type GroupMove struct {
	Group       string   `json:"group"`
	SourceState string   `json:"source_state"` // at the move; "unreachable" when gone
	Removed     []string `json:"removed_static_members,omitempty"`
	WaitedMS    int64    `json:"waited_ms"`
	// From says where the moved offsets came from: "source commits"
	// (translated exactly) or "destination sync" (the mirror's last group
	// sync; the source is gone).
	From    string        `json:"from"`
	Offsets []GroupOffset `json:"offsets"`
	Error   string        `json:"error,omitempty"`
}

// GroupOffset is one partition of a group's move.
type GroupOffset struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	SourceOffset int64  `json:"source_offset"` // the group's final source commit (-1: unknown)
	DestTopic    string `json:"dest_topic"`
	DestOffset   int64  `json:"dest_offset"` // where the group resumes on the destination (-1: none)
	Before       int64  `json:"before"`      // the destination commit found (-1: none)
	// Action: committed | would-commit | unchanged | kept-ahead |
	// untranslatable | active-on-destination.
	Action string `json:"action"`
	// Redeliveries: records the group will read again on the destination
	// (0 after an exact translation; -1: unknown).
	Redeliveries int64 `json:"redeliveries"`
	// ToRead: records between the resume offset and the destination end.
	ToRead int64 `json:"to_read"`
}

// Failover moves the groups of opts.Pipeline to its destination.
func Failover(ctx context.Context, opts Options) (*Report, error) {
	opts.defaults()
	began := time.Now()
	f, err := open(ctx, opts.Config, opts.Pipeline)
	if err != nil {
		return nil, err
	}
	defer f.close()
	rep := &Report{Pipeline: f.p.Name, Source: f.p.Source, Destination: f.p.Destination,
		Mode: "unplanned", DryRun: opts.DryRun, Started: began.UTC(), Partitions: []Partition{}, Groups: []GroupMove{}}
	if opts.Planned {
		rep.Mode = "planned"
	}
	defer func() { rep.DurationMS = time.Since(began).Milliseconds() }()

	srcUp := true
	if err := f.checkIdentity(ctx, &rep.Identity, opts.Planned, opts.SourceTimeout); err != nil {
		var down sourceDown
		switch {
		case errors.As(err, &down) && !opts.Planned:
			srcUp = false
			rep.Warnings = append(rep.Warnings, "source unreachable: "+down.err.Error())
		case errors.Is(err, ErrIdentity) && opts.Force:
			rep.Warnings = append(rep.Warnings, err.Error()+" (forced)")
		default:
			return rep, err
		}
	}
	if opts.Planned {
		if err := f.drain(ctx, opts, rep); err != nil {
			return rep, err
		}
		// A fresh store: the first one's client may have cached the
		// checkpoint topic as missing before the engine created it.
		_ = f.store.Close()
		if f.store, err = checkpoint.OpenReadOnly(ctx, f.cfg.Checkpoints, f.dst); err != nil {
			return rep, fmt.Errorf("%w: checkpoint store: %w", ErrCluster, err)
		}
		if !rep.Identity.Recorded {
			// The engine just drained records them when it starts.
			if err := f.checkIdentity(ctx, &rep.Identity, true, opts.SourceTimeout); err != nil && !(errors.Is(err, ErrIdentity) && opts.Force) {
				return rep, err
			}
		}
	}
	if !rep.Identity.Recorded {
		rep.Warnings = append(rep.Warnings, "the checkpoints record no cluster ids (written by an older mirror, or none yet): identity not verified")
	}
	st, err := f.finalState(ctx, opts, srcUp)
	if err != nil {
		return rep, err
	}
	if err := f.partitions(ctx, st, srcUp, opts.SourceTimeout, rep); err != nil {
		return rep, err
	}
	if opts.Planned {
		var behind int64
		for _, p := range rep.Partitions {
			behind += max(p.RPORecords, 0)
		}
		if behind > 0 {
			err := fmt.Errorf("%w: %d records acknowledged on the source were not mirrored (producers still writing to the source?)", ErrNotDrained, behind)
			switch {
			case opts.DryRun:
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d records are not mirrored yet: the failover drains them first", behind))
			case !opts.Force:
				return rep, err
			default:
				rep.Warnings = append(rep.Warnings, err.Error()+" (forced)")
			}
		}
	}
	groups, err := f.groups(ctx, opts, srcUp, st)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, g := range groups {
		gm, err := f.moveGroup(ctx, opts, g, srcUp, st, rep)
		if err != nil {
			gm.Error = err.Error()
			errs = append(errs, err)
		}
		rep.Groups = append(rep.Groups, gm)
	}
	return rep, errors.Join(errs...)
}

// run holds the clients and the pipeline of one failover or failback.
type run struct {
	cfg      *pipelines.Config
	p        *pipelines.Pipeline
	src, dst *kgo.Client
	sadm     *kadm.Client
	dadm     *kadm.Client
	store    checkpoint.Store
}

func open(ctx context.Context, cfg *pipelines.Config, name string) (*run, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: no configuration", ErrInput)
	}
	p := cfg.Pipeline(name)
	if p == nil {
		return nil, fmt.Errorf("%w: no pipeline %q in the configuration", ErrInput, name)
	}
	f := &run{cfg: cfg, p: p}
	var err error
	if f.src, err = Client(cfg, p.Source); err != nil {
		return nil, err
	}
	if f.dst, err = Client(cfg, p.Destination); err != nil {
		f.src.Close()
		return nil, err
	}
	f.sadm, f.dadm = kadm.NewClient(f.src), kadm.NewClient(f.dst)
	if f.store, err = checkpoint.OpenReadOnly(ctx, cfg.Checkpoints, f.dst); err != nil {
		f.close()
		return nil, fmt.Errorf("%w: checkpoint store: %w", ErrCluster, err)
	}
	return f, nil
}

func (f *run) close() {
	if f.store != nil {
		_ = f.store.Close()
	}
	f.src.Close()
	f.dst.Close()
}

// Client connects to a cluster of the configuration.
func Client(cfg *pipelines.Config, name string, extra ...kgo.Opt) (*kgo.Client, error) {
	c := cfg.Cluster(name)
	if c == nil {
		return nil, fmt.Errorf("%w: cluster %q is not defined", ErrInput, name)
	}
	opts, err := c.ClientOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %w", ErrInput, name, err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %w", ErrInput, name, err)
	}
	return cl, nil
}

// sourceDown: the source did not answer (an unplanned failover goes on).
type sourceDown struct{ err error }

func (s sourceDown) Error() string { return "source unreachable: " + s.err.Error() }

// checkIdentity reads both clusters' ids and compares them with the
// recorded ones. The source is asked with a short timeout unless needed.
func (f *run) checkIdentity(ctx context.Context, id *Identity, needSource bool, srcTimeout time.Duration) error {
	rec, ok, err := checkpoint.LoadClusters(ctx, f.store, f.p.Name)
	if err != nil {
		return fmt.Errorf("%w: reading the recorded cluster ids: %w", ErrCluster, err)
	}
	id.Recorded, id.RecordedSource, id.RecordedDest = ok, rec.Source, rec.Dest
	if id.Dest, err = checkpoint.ClusterID(ctx, f.dst); err != nil {
		return fmt.Errorf("%w: destination %s: %w", ErrCluster, f.p.Destination, err)
	}
	sctx := ctx
	if !needSource {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, srcTimeout)
		defer cancel()
	}
	var srcErr error
	if id.Source, srcErr = checkpoint.ClusterID(sctx, f.src); srcErr != nil {
		if needSource {
			return fmt.Errorf("%w: source %s: %w", ErrCluster, f.p.Source, srcErr)
		}
	}
	if ok && id.Dest != rec.Dest {
		return fmt.Errorf("%w: destination %s is cluster %q, the checkpoints were taken into %q", ErrIdentity, f.p.Destination, id.Dest, rec.Dest)
	}
	if ok && srcErr == nil && id.Source != rec.Source {
		return fmt.Errorf("%w: source %s is cluster %q, the checkpoints were taken from %q", ErrIdentity, f.p.Source, id.Source, rec.Source)
	}
	if srcErr != nil {
		return sourceDown{srcErr}
	}
	return nil
}

// sourceEnds lists the end offset of every source partition the pipeline
// mirrors.
func (f *run) sourceEnds(ctx context.Context) (map[checkpoint.TP]int64, error) {
	topics, err := f.sadm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: listing source topics: %w", ErrCluster, err)
	}
	var names []string
	for _, t := range topics.Sorted() {
		if f.p.Matches(t.Topic) {
			names = append(names, t.Topic)
		}
	}
	return listEnds(ctx, f.sadm, names...)
}

func listEnds(ctx context.Context, adm *kadm.Client, topics ...string) (map[checkpoint.TP]int64, error) {
	out := make(map[checkpoint.TP]int64)
	if len(topics) == 0 {
		return out, nil
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("%w: listing end offsets: %w", ErrCluster, err)
	}
	var perr error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			// Not created yet (a destination before the first copy): empty.
		case o.Err != nil:
			perr = o.Err
		default:
			out[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		}
	})
	if perr != nil {
		return nil, fmt.Errorf("%w: listing end offsets: %w", ErrCluster, perr)
	}
	return out, nil
}

// drain waits for the writer to reach the source's end, then stops it.
func (f *run) drain(ctx context.Context, opts Options, rep *Report) error {
	d := &Drain{}
	rep.Drain = d
	began := time.Now()
	defer func() { d.WaitedMS = time.Since(began).Milliseconds() }()
	if opts.Writer == nil {
		return nil // already stopped: finalState checks the checkpoints
	}
	if opts.DryRun {
		ends, err := f.sourceEnds(ctx)
		if err != nil {
			return err
		}
		pos, err := opts.Writer.Positions(ctx)
		if err != nil {
			return fmt.Errorf("%w: pipeline positions: %w", ErrCluster, err)
		}
		d.LagBefore = lagOf(ends, pos)
		return nil
	}
	deadline := time.Now().Add(opts.LagTimeout)
	first := true
	for {
		ends, err := f.sourceEnds(ctx)
		if err != nil {
			return err
		}
		pos, err := opts.Writer.Positions(ctx)
		if err != nil {
			return fmt.Errorf("%w: pipeline positions: %w", ErrCluster, err)
		}
		lag := lagOf(ends, pos)
		if first {
			d.LagBefore, first = lag, false
		}
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: lag still %d records after %v", ErrNotDrained, lag, opts.LagTimeout)
		}
		opts.Progress(fmt.Sprintf("draining %s: %d records behind", f.p.Name, lag))
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	if err := opts.Writer.Stop(ctx); err != nil {
		return fmt.Errorf("%w: stopping the pipeline: %w", ErrCluster, err)
	}
	d.Stopped = true
	opts.Progress(fmt.Sprintf("pipeline %s drained and stopped", f.p.Name))
	return nil
}

// lagOf sums, over every source partition, how far pos is behind the end;
// a partition the writer does not report yet counts whole.
func lagOf(ends, pos map[checkpoint.TP]int64) int64 {
	var lag int64
	for tp, end := range ends {
		p, ok := pos[tp]
		if !ok {
			p = 0
		}
		lag += max(end-p, 0)
	}
	return lag
}

// finalState loads the checkpoints; in a planned failover it waits until
// they record the drained position on every partition.
func (f *run) finalState(ctx context.Context, opts Options, srcUp bool) (*checkpoint.State, error) {
	deadline := time.Now().Add(opts.CheckpointTimeout)
	for {
		st, err := f.store.Load(ctx, f.p.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: loading checkpoints of %s: %w", ErrCluster, f.p.Name, err)
		}
		if !opts.Planned || opts.DryRun || !srcUp {
			return st, nil
		}
		ends, err := f.sourceEnds(ctx)
		if err != nil {
			return nil, err
		}
		behind := int64(0)
		for tp, end := range ends {
			if p := st.Partitions[tp]; p == nil || p.Pos.Source < end {
				behind++
			}
		}
		if behind == 0 || time.Now().After(deadline) {
			return st, nil // partitions reports what is still behind
		}
		opts.Progress(fmt.Sprintf("waiting for the checkpoints of %d partitions", behind))
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// partitions fills the report's per-partition table and RPO.
func (f *run) partitions(ctx context.Context, st *checkpoint.State, srcUp bool, srcTimeout time.Duration, rep *Report) error {
	var srcEnds map[checkpoint.TP]int64
	if srcUp {
		sctx, cancel := context.WithTimeout(ctx, max(srcTimeout, 10*time.Second))
		var err error
		srcEnds, err = f.sourceEnds(sctx)
		cancel()
		if err != nil {
			if rep.Mode == "planned" {
				return err
			}
			srcUp = false
			rep.Warnings = append(rep.Warnings, "source end offsets unavailable: "+err.Error())
		}
	}
	destTopics := map[string]bool{}
	tps := map[checkpoint.TP]bool{}
	for tp, p := range st.Partitions {
		tps[tp] = true
		destTopics[p.DestTopic] = true
	}
	for tp := range srcEnds {
		tps[tp] = true
		destTopics[f.p.DestTopic(tp.Topic)] = true
	}
	var names []string
	for t := range destTopics {
		names = append(names, t)
	}
	dstEnds, err := listEnds(ctx, f.dadm, names...)
	if err != nil {
		return err
	}
	var last map[checkpoint.TP]time.Time
	if !srcUp {
		last = lastTimestamps(ctx, f.dst, dstEnds)
	}
	for _, tp := range sortTPs(tps) {
		row := Partition{Topic: tp.Topic, Partition: tp.Partition, DestTopic: f.p.DestTopic(tp.Topic), SourceEnd: -1, RPORecords: -1, RPOMS: -1}
		if p := st.Partitions[tp]; p != nil {
			row.Mirrored, row.DestTopic = p.Pos.Source, p.DestTopic
		}
		dtp := checkpoint.TP{Topic: row.DestTopic, Partition: tp.Partition}
		row.DestEnd = dstEnds[dtp]
		if p := st.Partitions[tp]; p != nil && row.DestEnd > p.Pos.Dest {
			// Written after the last checkpoint: mirrored too (a restart
			// would reconcile them).
			row.Mirrored += row.DestEnd - p.Pos.Dest
		}
		if end, ok := srcEnds[tp]; ok {
			row.SourceEnd = end
			row.RPORecords = max(end-row.Mirrored, 0)
			row.RPOMS = 0
			if row.RPORecords > 0 {
				row.RPOMS = f.window(ctx, tp, row.Mirrored, end)
			}
		} else if t, ok := last[dtp]; ok {
			row.RPOMS = time.Since(t).Milliseconds()
		}
		rep.Partitions = append(rep.Partitions, row)
	}
	return nil
}

// window is the time between the first and the last unmirrored source
// record of tp (-1 when they cannot be read).
func (f *run) window(ctx context.Context, tp checkpoint.TP, from, end int64) int64 {
	first, ok1 := readOne(ctx, f.src, tp.Topic, tp.Partition, from)
	lastT, ok2 := readOne(ctx, f.src, tp.Topic, tp.Partition, end-1)
	if !ok1 || !ok2 {
		return -1
	}
	return lastT.Sub(first).Milliseconds()
}

// lastTimestamps reads the last record of every non-empty destination
// partition (bounded): when the source is gone, the age of the last
// mirrored record bounds the window of loss.
func lastTimestamps(ctx context.Context, cl *kgo.Client, ends map[checkpoint.TP]int64) map[checkpoint.TP]time.Time {
	out := make(map[checkpoint.TP]time.Time)
	for tp, end := range ends {
		if end <= 0 {
			continue
		}
		if t, ok := readOne(ctx, cl, tp.Topic, tp.Partition, end-1); ok {
			out[tp] = t
		}
	}
	return out
}

// readOne returns the timestamp of the record at (or first after) offset.
func readOne(ctx context.Context, base *kgo.Client, topic string, partition int32, offset int64) (time.Time, bool) {
	cl, err := kgo.NewClient(append(base.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return time.Time{}, false
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for rctx.Err() == nil {
		fs := cl.PollFetches(rctx)
		for _, r := range fs.Records() {
			if r.Offset >= offset {
				return r.Timestamp, true
			}
		}
	}
	return time.Time{}, false
}

func sortTPs(set map[checkpoint.TP]bool) []checkpoint.TP {
	out := make([]checkpoint.TP, 0, len(set))
	for tp := range set {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
