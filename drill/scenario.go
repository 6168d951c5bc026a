package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// Sentinel errors.
var (
	// ErrScenario: the failover scenario could not run to its end.
	ErrScenario = errors.New("drill: failover scenario failed")
	// ErrVerify: the scenario ran but its result breaks a promise (records
	// lost or duplicated, a corrupt record, an inexact translation).
	ErrVerify = errors.New("drill: failover verification failed")
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
	phase    atomic.Int32 // a Phase: the driver sets it, snapshots read it

	// caughtUpOnce is closed by the progress watcher the first time it sees
	// the mirror caught up (see caughtUp); caughtUpAt, written before the
	// close, is when.
	caughtUpOnce chan struct{}
	caughtUpAt   time.Time

	// Set by one phase for the later ones; only the driver's goroutine
	// touches them (eng is set before the watcher starts reading it).
	rep         *Report
	src         *kgo.Client // the source producer's client
	closeSrc    func()      // closes src once, bounded (see closeBounded)
	eng         *mirror.Engine
	engineStart time.Time
	engine      *task // eng.Run
	watcher     *task // watch
	producer    *task // produceSteady
	consumer    *task // consumeSource
	cut         time.Time
	dst         *kgo.Client
	ends        kadm.ListedOffsets // destination end offsets after the cut
	got         map[uint64]int     // seq → times the group read it on the destination
	releases    []func()           // undone by release, last first

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
	r.caughtUpOnce = make(chan struct{})
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
