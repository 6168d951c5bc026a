package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"strait/pipelines"
)

// Sentinel errors of the control API.
var (
	ErrUnknownPipeline  = errors.New("mirror: unknown pipeline")
	ErrUnknownPartition = errors.New("mirror: unknown partition")
)

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger
	// Meter records the engine's metrics (nil: a no-op meter).
	Meter metric.Meter
	// MaxFailures consecutive failures auto-pause a partition (default 10).
	MaxFailures int
	// AutoPauseRetry is how long an auto-paused partition waits before it
	// tries again by itself (default 30s).
	AutoPauseRetry time.Duration
	// DaemonID names this daemon in its workers group (default: host
	// name and process id). Version is the strait version it reports
	// there (default: the binary's build version).
	DaemonID, Version string
}

func (o Options) maxFailures() int {
	if o.MaxFailures > 0 {
		return o.MaxFailures
	}
	return 10
}

func (o Options) cooldown() time.Duration {
	if o.AutoPauseRetry > 0 {
		return o.AutoPauseRetry
	}
	return 30 * time.Second
}

// Engine runs every pipeline of a configuration.
type Engine struct {
	opts    Options
	log     *slog.Logger
	met     *metrics
	ownPIDs pidRegistry
	applyMu sync.Mutex // serialises apply
	// fleet is the workers group membership; nil without workers:.
	// Set by New, never changed.
	fleet *fleet

	mu struct {
		sync.Mutex
		cfg     *pipelines.Config
		runs    map[string]*pipelineRun
		ctx     context.Context // set while Run runs
		running bool
	}
}

// pipelineRun is one started pipeline and how to stop it.
type pipelineRun struct {
	p      *pipeline
	key    pipelineKey
	cancel context.CancelFunc
	done   chan struct{}
}

// pipelineKey is everything whose change restarts a pipeline.
type pipelineKey struct {
	P        pipelines.Pipeline
	Src, Dst pipelines.Cluster
	Ck       pipelines.Checkpoints
}

func keyOf(cfg *pipelines.Config, p *pipelines.Pipeline) pipelineKey {
	k := pipelineKey{P: *p, Ck: cfg.Checkpoints}
	k.P.Pos, k.P.Compiled = pipelines.Position{}, nil
	if c := cfg.Cluster(p.Source); c != nil {
		k.Src = *c
	}
	if c := cfg.Cluster(p.Destination); c != nil {
		k.Dst = *c
	}
	return k
}

// pidRegistry remembers the producer ids the engine's pipelines write with,
// per destination cluster: a batch-mode pipeline reading that cluster drops
// their batches (they came from the other side of an active-active pair).
type pidRegistry struct {
	mu  sync.Mutex
	ids map[string]map[int64]bool
}

func (r *pidRegistry) add(cluster string, id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]map[int64]bool{}
	}
	if r.ids[cluster] == nil {
		r.ids[cluster] = map[int64]bool{}
	}
	r.ids[cluster][id] = true
}

func (r *pidRegistry) has(cluster string, id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[cluster][id]
}

// New checks cfg (already validated by pipelines.Load) and prepares an engine.
func New(cfg *pipelines.Config, opts Options) (*Engine, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil configuration", ErrConfig)
	}
	if err := check(cfg); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.mu.cfg = cfg
	e.mu.runs = map[string]*pipelineRun{}
	met, err := newMetrics(opts.Meter, e)
	if err != nil {
		return nil, fmt.Errorf("mirror: metrics: %w", err)
	}
	e.met = met
	if err := registerAuditMetrics(opts.Meter, e); err != nil {
		return nil, fmt.Errorf("mirror: audit metrics: %w", err)
	}
	if cfg.Workers != nil {
		if e.fleet, err = newFleet(e, cfg); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Engine) meter() metric.Meter {
	if e.opts.Meter == nil {
		return noop.NewMeterProvider().Meter("strait/mirror")
	}
	return e.opts.Meter
}

// check rejects what the engine cannot run.
func check(cfg *pipelines.Config) error {
	seen := map[string]bool{}
	for _, p := range cfg.Pipelines {
		if p == nil || p.Name == "" {
			return fmt.Errorf("%w: pipeline without a name", ErrConfig)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: pipeline %q defined twice", ErrConfig, p.Name)
		}
		seen[p.Name] = true
		if cfg.Cluster(p.Source) == nil {
			return fmt.Errorf("%w: pipeline %q: unknown source cluster %q", ErrConfig, p.Name, p.Source)
		}
		if cfg.Cluster(p.Destination) == nil {
			return fmt.Errorf("%w: pipeline %q: unknown destination cluster %q", ErrConfig, p.Name, p.Destination)
		}
		switch p.Mode {
		case "", pipelines.ModeBatch, pipelines.ModeRecord:
		default:
			return fmt.Errorf("%w: pipeline %q: unknown mode %q", ErrConfig, p.Name, p.Mode)
		}
	}
	return nil
}

// Run mirrors until ctx is done, then stops cleanly: in-flight batches are
// acknowledged and positions checkpointed before it returns.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.mu.running {
		e.mu.Unlock()
		return fmt.Errorf("mirror: engine already running")
	}
	e.mu.running, e.mu.ctx = true, ctx
	cfg := e.mu.cfg
	e.mu.Unlock()
	err := e.apply(cfg)
	if err == nil && e.fleet != nil {
		if err = e.fleet.start(ctx); err == nil {
			<-ctx.Done()
			// Hand every partition back drained and checkpointed while
			// the lease holds, then leave the group.
			e.fleet.stop()
		}
	} else if err == nil {
		<-ctx.Done()
	}
	e.applyMu.Lock() // no reload half-way while stopping
	defer e.applyMu.Unlock()
	e.mu.Lock()
	runs := e.mu.runs
	e.mu.runs = map[string]*pipelineRun{}
	e.mu.ctx = nil
	e.mu.Unlock()
	for _, r := range runs {
		r.cancel()
	}
	for _, r := range runs {
		<-r.done
	}
	e.mu.Lock()
	e.mu.running = false
	e.mu.Unlock()
	return err
}

// Reload applies a new configuration: added pipelines start, removed ones
// stop, changed ones restart, unchanged ones are not disturbed.
func (e *Engine) Reload(cfg *pipelines.Config) (err error) {
	_, span := startSpan(context.Background(), "mirror.reload")
	defer func() { endSpan(span, err) }()
	if cfg == nil {
		return fmt.Errorf("%w: nil configuration", ErrConfig)
	}
	if err := check(cfg); err != nil {
		return err
	}
	if (cfg.Workers != nil) != (e.fleet != nil) || (cfg.Workers != nil && !reflect.DeepEqual(e.fleet.workersKey(), workersKey(cfg))) {
		return fmt.Errorf("%w: the workers: section changed; restart the daemon to apply it", ErrFleet)
	}
	e.mu.Lock()
	e.mu.cfg = cfg
	running := e.mu.running
	e.mu.Unlock()
	if e.fleet != nil {
		e.fleet.setFingerprint(cfg.Fingerprint())
	}
	if !running {
		return nil
	}
	return e.apply(cfg)
}

// apply makes the running pipelines match cfg. Calls are serialised by
// applyMu; e.mu is not held while old pipelines stop, so Status and the
// control API stay responsive during a reload.
func (e *Engine) apply(cfg *pipelines.Config) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	if e.mu.ctx == nil {
		e.mu.Unlock()
		return nil
	}
	want := map[string]*pipelines.Pipeline{}
	for _, p := range cfg.Pipelines {
		want[p.Name] = p
	}
	var stopping []*pipelineRun
	for name, r := range e.mu.runs {
		p, ok := want[name]
		if ok && reflect.DeepEqual(r.key, keyOf(cfg, p)) {
			continue
		}
		stopping = append(stopping, r)
		delete(e.mu.runs, name)
	}
	e.mu.Unlock()
	// A restarted pipeline must not overlap its old self: stop first.
	for _, r := range stopping {
		r.cancel()
	}
	for _, r := range stopping {
		<-r.done
		e.log.Info("pipeline stopped", "pipeline", r.p.cfg.Name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.ctx == nil {
		return nil // Run ended meanwhile
	}
	for _, p := range cfg.Pipelines {
		name := p.Name
		if _, ok := e.mu.runs[name]; ok {
			continue
		}
		pl, err := newPipeline(e, cfg, p)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(e.mu.ctx)
		r := &pipelineRun{p: pl, key: keyOf(cfg, p), cancel: cancel, done: make(chan struct{})}
		e.mu.runs[name] = r
		go func() {
			defer close(r.done)
			if err := pl.run(ctx); err != nil {
				e.log.Error("pipeline ended with an error", "pipeline", name, "err", err)
			}
		}()
		e.log.Info("pipeline started", "pipeline", name, "source", p.Source, "destination", p.Destination, "mode", pl.mode())
	}
	return nil
}

func (e *Engine) run(name string) *pipelineRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.runs[name]
}

// Pause pauses a pipeline, or one source partition of it when topic != "".
func (e *Engine) Pause(pipeline, topic string, partition int32) error {
	return e.control(pipeline, topic, partition, true)
}

// Resume undoes Pause (and clears an auto-pause; a partition stopped in
// state gap continues from the source log start).
func (e *Engine) Resume(pipeline, topic string, partition int32) error {
	return e.control(pipeline, topic, partition, false)
}

func (e *Engine) control(pipeline, topic string, partition int32, pause bool) error {
	r := e.run(pipeline)
	if r == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPipeline, pipeline)
	}
	if topic == "" {
		r.p.setPaused(pause)
		return nil
	}
	t := r.p.task(topic, partition)
	if t == nil {
		return fmt.Errorf("%w: %s/%s/%d", ErrUnknownPartition, pipeline, topic, partition)
	}
	if pause {
		t.pause()
	} else {
		t.resume()
	}
	return nil
}

// Status is a snapshot of every pipeline, for the admin API and status.
func (e *Engine) Status() []PipelineStatus {
	e.mu.Lock()
	cfg := e.mu.cfg
	runs := make(map[string]*pipelineRun, len(e.mu.runs))
	for k, v := range e.mu.runs {
		runs[k] = v
	}
	e.mu.Unlock()
	now := time.Now()
	out := make([]PipelineStatus, 0, len(cfg.Pipelines))
	for _, p := range cfg.Pipelines {
		if r := runs[p.Name]; r != nil {
			out = append(out, r.p.status(now))
			continue
		}
		mode := p.Mode
		if mode == "" {
			mode = pipelines.DefaultMode
		}
		out = append(out, PipelineStatus{Name: p.Name, Source: p.Source, Destination: p.Destination,
			Mode: string(mode), State: StateStopped, Partitions: []PartitionStatus{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if e.fleet != nil {
		e.fleet.decorate(out)
	}
	return out
}

// PipelineStatus describes one pipeline.
type PipelineStatus struct {
	Name        string            `json:"name"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Mode        string            `json:"mode"`
	State       State             `json:"state"` // starting | running | paused | failed | stopped
	Connected   bool              `json:"connected"`
	LastError   string            `json:"last_error,omitempty"`
	Partitions  []PartitionStatus `json:"partitions"`
	// Fleet is this daemon's view of its workers group (workers: only).
	Fleet *FleetStatus `json:"fleet,omitempty"`

	// SourceConnected and DestinationConnected say which cluster answered
	// its last call; both start false. Connected is both.
	SourceConnected      bool           `json:"source_connected"`
	DestinationConnected bool           `json:"destination_connected"`
	ACLs                 *ACLSyncStatus `json:"acls,omitempty"` // with sync.acls
}

// PartitionStatus describes one task (one source partition).
type PartitionStatus struct {
	Topic          string        `json:"topic"`
	Partition      int32         `json:"partition"`
	DestTopic      string        `json:"dest_topic"`
	State          State         `json:"state"` // starting | running | paused | auto-paused | gap | failed | stopped
	PausedReason   string        `json:"paused_reason,omitempty"`
	SourceOffset   int64         `json:"source_offset"`   // next source offset to copy
	DestOffset     int64         `json:"dest_offset"`     // destination log end after the last ack
	HighWatermark  int64         `json:"high_watermark"`  // source high watermark last seen
	Lag            int64         `json:"lag"`             // records behind
	TimeLag        time.Duration `json:"time_lag_ns"`     // age of the newest mirrored record while behind (0 when caught up)
	RecordsPerSec  float64       `json:"records_per_sec"` // recent rate
	BytesPerSec    float64       `json:"bytes_per_sec"`
	RecordsTotal   int64         `json:"records_total"`
	LastError      string        `json:"last_error,omitempty"`
	GapRecords     int64         `json:"gap_records,omitempty"` // records lost to source retention
	LastProgressAt time.Time     `json:"last_progress_at"`
	Owner          string        `json:"owner,omitempty"` // the daemon copying it (workers: only)
}
