package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/mirror"
)

// Phase is a stage of a run. The driver runs them in this order, and
// Snapshot.Phase reports the current one.
type Phase int32

const (
	PhaseBacklog   Phase = iota + 1 // the mirror starts and drains records produced before it
	PhaseStreaming                  // steady state: produce, mirror, consume
	PhaseCut                        // the source is being cut
	PhaseFailover                   // the group moves to the destination
	PhaseVerify                     // reading the destination back
)

var phaseNames = [...]string{
	PhaseBacklog:   "backlog",
	PhaseStreaming: "streaming",
	PhaseCut:       "cut",
	PhaseFailover:  "failover",
	PhaseVerify:    "verify",
}

func (p Phase) String() string {
	if p >= PhaseBacklog && p <= PhaseVerify {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", int32(p))
}

func (r *run) setPhase(p Phase) { r.phase.Store(int32(p)) }

// do drives the run: each phase in order, each one method that returns nil
// to go on or the error that ends the run. Whatever the phases started is
// released, last started first, however far the run got.
func (r *run) do(ctx context.Context) (*Report, error) {
	r.start = time.Now()
	r.rep = &Report{Pipeline: r.sc.Pipeline, Group: r.sc.Group}
	defer r.release()
	phases := []struct {
		phase Phase
		run   func(context.Context) error
	}{
		{PhaseBacklog, r.backlog},
		{PhaseStreaming, r.streaming},
		{PhaseCut, r.cutSource},
		{PhaseFailover, r.failover},
		{PhaseVerify, r.verify},
	}
	for _, p := range phases {
		r.setPhase(p.phase)
		if err := p.run(ctx); err != nil {
			if errors.Is(err, ErrVerify) {
				return r.rep, err // it ran: the report says what broke
			}
			return nil, err
		}
	}
	return r.rep, nil
}

// onRelease registers fn for release.
func (r *run) onRelease(fn func()) { r.releases = append(r.releases, fn) }

// release undoes what the phases started, last first: the destination
// client, the source group, the producer, the watcher, the engine, the
// source client. Each undo is harmless when a phase already did it.
func (r *run) release() {
	for i := len(r.releases) - 1; i >= 0; i-- {
		r.releases[i]()
	}
	r.releases = nil
}

// backlog prepares the source (its topics, and the backlog: records
// produced before the mirror starts, so that this phase shows the engine
// draining them), then starts the engine, the progress watcher, the steady
// producer and the source group, and waits for the engine to catch up with
// the backlog, within the whole run.
func (r *run) backlog(ctx context.Context) error {
	sc := r.sc
	src, err := kgo.NewClient(append(append([]kgo.Opt{}, r.srcOpts...),
		kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(2*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("%w: source client: %w", ErrScenario, err)
	}
	r.src = src
	r.closeSrc = sync.OnceFunc(func() { closeBounded(src.Close) })
	r.onRelease(r.closeSrc)
	if err := createTopics(ctx, kadm.NewClient(src), sc.Topics); err != nil {
		return err
	}
	if sc.Backlog > 0 {
		if err := r.produceBacklog(ctx, src, sc.Backlog); err != nil {
			return err
		}
		r.rep.BacklogN = int64(sc.Backlog)
	}

	r.engineStart = time.Now()
	eng, err := mirror.New(sc.Config, mirror.Options{Logger: r.log, Meter: sc.Meter})
	if err != nil {
		return fmt.Errorf("%w: engine: %w", ErrScenario, err)
	}
	r.eng = eng
	// Not under ctx: the engine is stopped in its turn, by the cut or by
	// release, so that its last checkpoint is written.
	r.engine = goTask(context.Background(), eng.Run)
	r.onRelease(func() { _ = r.stopEngine() })
	r.watcher = goTask(ctx, r.watch)
	r.onRelease(func() { _ = r.watcher.stop() })
	r.producer = goTask(ctx, func(ctx context.Context) error { r.produceSteady(ctx, src); return nil })
	r.onRelease(func() { _ = r.producer.stop() })
	r.consumer = goTask(ctx, r.consumeSource)
	r.onRelease(func() { _ = r.consumer.stop() })

	if sc.Backlog == 0 {
		return nil
	}
	if err := r.waitUntil(ctx, r.caughtUpOnce, r.start.Add(sc.Duration)); err != nil {
		return err
	}
	select {
	case <-r.caughtUpOnce:
		r.rep.DrainTime = r.caughtUpAt.Sub(r.engineStart)
		r.rep.DrainRate = float64(r.rep.BacklogN) / r.rep.DrainTime.Seconds()
	default: // never drained: no drain time to report
	}
	return nil
}

// streaming is the steady state, until the cut is due: the failover keeps
// a third of the run (4s to 20s). A cut before the mirror ever caught up
// would measure its start-up, not a failover, so past that time it also
// waits for the catch-up, within the whole run.
func (r *run) streaming(ctx context.Context) error {
	budget := min(max(r.sc.Duration/3, 4*time.Second), 20*time.Second)
	if err := r.waitUntil(ctx, nil, r.start.Add(r.sc.Duration-budget)); err != nil {
		return err
	}
	return r.waitUntil(ctx, r.caughtUpOnce, r.start.Add(r.sc.Duration))
}

// cutSource cuts the source. An embedded cluster is stopped, as a disaster
// would stop it, and the application's source side with it. A real cluster
// must survive: producing stops, the records in flight settle (so acked is
// final) and the pipeline pauses. Then the engine stops: its last
// checkpoint holds every acknowledged position, and the failover reads it
// there, as a failover on another host would.
func (r *run) cutSource(ctx context.Context) error {
	sc := r.sc
	if sc.CutSource != nil {
		r.cut = time.Now()
		r.consumer.cancel()
		if err := sc.CutSource(); err != nil {
			return fmt.Errorf("%w: cutting the source: %w", ErrScenario, err)
		}
		// Records in flight to a dead cluster would wait out every retry;
		// closing the client fails them now (they count as not acked).
		r.producer.cancel()
		r.closeSrc()
		_ = r.producer.stop()
	} else {
		_ = r.producer.stop()
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = r.src.Flush(fctx)
		cancel()
		r.consumer.cancel()
		if err := r.eng.Pause(sc.Pipeline, "", 0); err != nil {
			return fmt.Errorf("%w: pausing the pipeline: %w", ErrScenario, err)
		}
		r.cut = time.Now()
	}
	if err := r.consumer.stop(); err != nil {
		r.log.Warn("source consumer", "err", err)
	}
	r.closeSrc()
	if err := r.stopEngine(); err != nil {
		return fmt.Errorf("%w: stopping the engine: %w", ErrScenario, err)
	}
	return nil
}

// failover moves the group: its last source commits are translated through
// the checkpoint store and committed on the destination, where it resumes
// and reads to the end. RTO runs from the cut to its first read there.
func (r *run) failover(ctx context.Context) error {
	dst, err := kgo.NewClient(r.dstOpts...)
	if err != nil {
		return fmt.Errorf("%w: destination client: %w", ErrScenario, err)
	}
	r.dst = dst
	r.onRelease(func() { closeBounded(dst.Close) })
	trans, err := r.translate(ctx, dst, r.rep)
	if err != nil {
		return err
	}
	if r.ends, err = r.destEnds(ctx, dst); err != nil {
		return err
	}
	firstRead, got, err := r.consumeDest(ctx, trans, r.ends)
	if err != nil {
		return err
	}
	r.got = got
	if !firstRead.IsZero() {
		r.rep.RTO = firstRead.Sub(r.cut)
	}
	return nil
}

// verify reads the destination back and measures the run; a broken promise
// is ErrVerify.
func (r *run) verify(ctx context.Context) error {
	mirrored, err := r.readDest(ctx, r.dst, r.ends)
	if err != nil {
		return err
	}
	r.measure(r.rep, r.cut, mirrored, r.got)
	r.rep.Duration = time.Since(r.start)
	if !r.rep.OK() {
		return fmt.Errorf("%w: %v", ErrVerify, r.rep.Problems)
	}
	return nil
}

// waitUntil waits until ready is closed (nil: never) or deadline passes.
// The end of ctx, or of the engine before its time, ends the run.
func (r *run) waitUntil(ctx context.Context, ready <-chan struct{}, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
	case <-r.engine.done:
		return fmt.Errorf("%w: engine stopped early: %v", ErrScenario, r.engine.err)
	case <-ready:
	case <-timer.C:
	}
	return nil
}

// engineStopWait bounds how long stopping the engine may take.
const engineStopWait = 30 * time.Second

// stopEngine stops the engine, or reports that it would not stop.
func (r *run) stopEngine() error {
	err := r.engine.stopWithin(engineStopWait)
	switch {
	case errors.Is(err, errTaskStuck):
		return fmt.Errorf("%w: engine did not stop within %s", ErrScenario, engineStopWait)
	case errors.Is(err, context.Canceled):
		return nil
	}
	return err
}
