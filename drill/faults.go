package drill

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"strait/drill/failover"
	"strait/mirror"
	"strait/pipelines"
)

// westSeqs is where the seqs produced on the new primary start, so the
// check tells the two streams apart.
const westSeqs = 1 << 40

func classOf(s uint64) int {
	if s >= westSeqs {
		return 1
	}
	return 0
}

// cycleConfig is the embedded configuration of a failback: pipeline drill
// (east → west) and its reverse drill-back, both loop-protected.
func cycleConfig(dir string, p *Pair) (*pipelines.Config, error) {
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%s]}
  west: {bootstrap: [%s]}
checkpoints: {store: kafka, interval: 500ms}
pipelines:
  - name: drill
    source: east
    destination: west
    topics: {include: [%[3]q]}
    refresh: 1s
    loop_protection: true
  - name: drill-back
    source: west
    destination: east
    topics: {include: [%[3]q]}
    refresh: 1s
    loop_protection: true
`, quoteList(p.East.Addrs()), quoteList(p.West.Addrs()), regexp.QuoteMeta(EmbeddedTopic))
	path := filepath.Join(dir, "drill.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: drill configuration: %w", ErrScenario, err)
	}
	return cfg, nil
}

// runEngine runs cfg's pipelines in an engine until stop is called.
func runEngine(ctx context.Context, cfg *pipelines.Config, log *slog.Logger) (stop func() error, err error) {
	eng, err := mirror.New(cfg, mirror.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	t := goTask(ctx, eng.Run)
	return func() error { return t.stopWithin(2 * time.Minute) }, nil
}

// runFailback: east mirrored to west; the mirror stops while east keeps
// acknowledging (the divergent tail), east goes down, the unplanned
// failover moves on to west, which takes writes of its own; east comes
// back, `strait failback` copies the tail and seeds the reverse pipeline,
// which brings east up to date while west keeps taking writes. Every
// acknowledged record must be on both clusters exactly once, in order per
// partition and stream, and nothing may echo.
func runFailback(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	pair, err := StartPair(ctx, dir, 1, log)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	cfg, err := cycleConfig(dir, pair)
	if err != nil {
		return nil, err
	}
	const rate = 1000
	eastProd, err := producerFor(pair.East.Addrs())
	if err != nil {
		return nil, err
	}
	defer closeBounded(eastProd.Close)
	if err := createTopics(ctx, kadm.NewClient(eastProd), []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}}); err != nil {
		return nil, err
	}
	fwd, err := failover.StartEngine(ctx, cfg, "drill", log)
	if err != nil {
		return nil, err
	}
	s := newStream(EmbeddedTopic)
	stopProd := s.start(ctx, eastProd, 1, rate)
	defer stopProd()
	if err := sleepCtx(ctx, 4*time.Second); err != nil {
		return nil, err
	}
	// The mirror loses the source; east still acknowledges for a second.
	if err := fwd.Stop(ctx); err != nil {
		return nil, fmt.Errorf("%w: stopping the mirror: %w", ErrScenario, err)
	}
	_ = sleepCtx(ctx, time.Second)
	stopProd()
	closeBounded(eastProd.Close)
	cut := time.Now()
	if err := pair.StopEast(); err != nil {
		return nil, fmt.Errorf("%w: stopping east: %w", ErrScenario, err)
	}
	if _, err := failover.Failover(ctx, failover.Options{Config: cfg, Pipeline: "drill", SourceTimeout: time.Second, Logger: log}); err != nil {
		return nil, fmt.Errorf("%w: unplanned failover: %w", ErrScenario, err)
	}
	res := &Result{RTOMS: time.Since(cut).Milliseconds()}

	// West is the primary now.
	westProd, err := producerFor(pair.West.Addrs())
	if err != nil {
		return nil, err
	}
	defer closeBounded(westProd.Close)
	ws := newStream(EmbeddedTopic)
	stopWest := ws.start(ctx, westProd, westSeqs, rate)
	defer stopWest()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}

	// East is back: fail back while west keeps taking writes.
	if err := pair.RestartEast(ctx, log); err != nil {
		return nil, err
	}
	rep, err := failover.Failback(ctx, failover.FailbackOptions{Config: cfg, Pipeline: "drill", Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: failback: %w", ErrScenario, err)
	}
	res.RPORecords = rep.Copied
	c := *cfg
	back := *cfg.Pipeline("drill")
	back.Paused = true
	c.Pipelines = []*pipelines.Pipeline{&back, cfg.Pipeline("drill-back")}
	stopRev, err := runEngine(ctx, &c, log)
	if err != nil {
		return nil, err
	}
	defer stopRev()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	stopWest()

	// Catch-up: east must hold its own records and every one of west's.
	want := s.ackedCount() + ws.ackedCount()
	if err := waitCount(ctx, pair.East.Addrs(), EmbeddedTopic, want, 90*time.Second); err != nil {
		return res, err
	}
	// An echo would show as more records: give it a moment to appear.
	_ = sleepCtx(ctx, 2*time.Second)
	if err := stopRev(); err != nil {
		return res, fmt.Errorf("%w: stopping the reverse pipeline: %w", ErrScenario, err)
	}
	acked := make(map[uint64]bool, want)
	for _, st := range []*stream{s, ws} {
		st.mu.Lock()
		for k := range st.acked {
			acked[k] = true
		}
		st.mu.Unlock()
	}
	for _, addrs := range [][]string{pair.East.Addrs(), pair.West.Addrs()} {
		got, err := readAll(ctx, addrs, EmbeddedTopic)
		if err != nil {
			return res, err
		}
		l, d, r := check(got, acked, classOf)
		res.Lost, res.Duplicated, res.Reordered = res.Lost+l, res.Duplicated+d, res.Reordered+r
	}
	return res, verdict(res, 0, 0, 0)
}

// runDestinationOutage: the destination is down for 30 s while the source
// takes 1000 records/s; the mirror waits with bounded memory and, once the
// destination is back, copies everything once, in order.
func runDestinationOutage(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	pair, cfg, err := startEmbedded(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	prod, err := producerFor(pair.East.Addrs())
	if err != nil {
		return nil, err
	}
	defer closeBounded(prod.Close)
	if err := createTopics(ctx, kadm.NewClient(prod), []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}}); err != nil {
		return nil, err
	}
	stopEng, err := runEngine(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer stopEng()
	s := newStream(EmbeddedTopic)
	stopProd := s.start(ctx, prod, 1, 1000)
	defer stopProd()
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return nil, err
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := pair.StopWest(); err != nil {
		return nil, fmt.Errorf("%w: stopping west: %w", ErrScenario, err)
	}
	down := time.Now()
	var peak uint64
	for time.Since(down) < 30*time.Second {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := pair.RestartWest(ctx, log); err != nil {
		return nil, err
	}
	res := &Result{}
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return nil, err
	}
	stopProd()
	if err := waitCount(ctx, pair.West.Addrs(), EmbeddedTopic, s.ackedCount(), 90*time.Second); err != nil {
		return res, err
	}
	res.RTOMS = time.Since(down).Milliseconds() - 30_000
	_ = sleepCtx(ctx, time.Second)
	if err := stopEng(); err != nil {
		return res, fmt.Errorf("%w: stopping the mirror: %w", ErrScenario, err)
	}
	got, err := readAll(ctx, pair.West.Addrs(), EmbeddedTopic)
	if err != nil {
		return res, err
	}
	// The heap during the outage: what the mirror buffers is bounded by its
	// pipeline buffer (default 64 MiB), whatever the source holds.
	const bound = 256 << 20
	if growth := int64(peak) - int64(before.HeapInuse); growth > bound {
		return res, fmt.Errorf("%w: heap grew by %d MiB during the outage (bound %d MiB)", ErrVerify, growth>>20, bound>>20)
	}
	l, d, r := check(got, s.acked, classOf)
	return res, verdict(res, l, d, r)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
	case <-t.C:
		return nil
	}
}
