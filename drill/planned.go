package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/drill/failover"
)

// tally counts, record by record, what an application consumed: how often
// each seq was read and whether each partition's seqs came in order.
type tally struct {
	mu        sync.Mutex
	seen      map[uint64]int
	last      map[checkpoint.TP]uint64
	reordered int64
}

func newTally() *tally {
	return &tally{seen: make(map[uint64]int), last: make(map[checkpoint.TP]uint64)}
}

// add counts records read from one side; tp names the source partition
// (destination partition k is source partition k).
func (t *tally) add(recs []*kgo.Record, srcTopic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		seq, ok := decodeValue(r.Value)
		if !ok {
			continue
		}
		t.seen[seq]++
		tp := checkpoint.TP{Topic: srcTopic, Partition: r.Partition}
		if seq <= t.last[tp] && t.seen[seq] == 1 {
			t.reordered++
		}
		t.last[tp] = max(t.last[tp], seq)
	}
}

// app is one instance of the application: a group consumer that commits
// every poll synchronously, until stopped; then it leaves the group.
func app(ctx context.Context, opts []kgo.Opt, group, topic, srcTopic string, t *tally, first chan<- time.Time) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer closeBounded(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	})
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 200)
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if first != nil {
			first <- time.Now()
			first = nil
		}
		// Commit before counting, on a context the stop cannot cancel: a
		// record counts as consumed once its commit is acknowledged.
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.CommitRecords(cctx, recs...)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: commit: %w", ErrScenario, err)
		}
		t.add(recs, srcTopic)
	}
	return nil
}

// runPlanned: a stream to east with an application consuming it there; at
// the cutover the producer stops, the failover drains the mirror and waits
// for the group, the application is redeployed against west (it stops on
// east while the failover waits, then starts on west). Every acknowledged
// record must be consumed exactly once, in order per partition.
func runPlanned(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	pair, cfg, err := startEmbedded(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	const group, parts, rate = "orders-app", 4, 800
	east := []kgo.Opt{kgo.SeedBrokers(pair.East.Addrs()...)}
	west := []kgo.Opt{kgo.SeedBrokers(pair.West.Addrs()...)}
	prod, err := kgo.NewClient(append(east, kgo.DefaultProduceTopic(EmbeddedTopic))...)
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	if err := createTopics(ctx, kadm.NewClient(prod), []TopicSpec{{Name: EmbeddedTopic, Partitions: parts}}); err != nil {
		return nil, err
	}
	eng, err := failover.StartEngine(ctx, cfg, cfg.Pipelines[0].Name, log)
	if err != nil {
		return nil, err
	}
	defer eng.Stop(context.Background())

	t := newTally()
	appCtx, stopApp := context.WithCancel(ctx)
	appDone := make(chan error, 1)
	go func() { appDone <- app(appCtx, east, group, EmbeddedTopic, EmbeddedTopic, t, nil) }()

	// Produce for 5 s, then stop (the cutover starts with the producers
	// moved away from east).
	var acked sync.Map
	var seq uint64
	var wg sync.WaitGroup
	tick := time.NewTicker(20 * time.Millisecond)
	began := time.Now()
	for time.Since(began) < 5*time.Second {
		select {
		case <-ctx.Done():
			tick.Stop()
			stopApp()
			return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
		case <-tick.C:
		}
		for due := uint64(time.Since(began).Seconds() * rate); seq < due; {
			seq++
			s := seq
			wg.Add(1)
			prod.Produce(context.Background(), &kgo.Record{Key: keyOf(s), Value: encodeValue(s, 128)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					acked.Store(s, true)
				}
			})
		}
	}
	tick.Stop()
	wg.Wait()
	cut := time.Now()

	// The failover starts with the application still consuming on east;
	// two seconds later the application is stopped there (redeploy).
	type out struct {
		rep *failover.Report
		err error
	}
	fo := make(chan out, 1)
	go func() {
		rep, err := failover.Failover(ctx, failover.Options{Config: cfg, Pipeline: cfg.Pipelines[0].Name, Planned: true,
			Writer: eng, LagTimeout: time.Minute, GroupTimeout: time.Minute, Logger: log})
		fo <- out{rep, err}
	}()
	time.Sleep(2 * time.Second) // the group is active during the cutover
	stopApp()
	if err := <-appDone; err != nil {
		return nil, err
	}
	o := <-fo
	if o.err != nil {
		return nil, fmt.Errorf("%w: failover: %w", ErrScenario, o.err)
	}
	var rpo int64
	for _, p := range o.rep.Partitions {
		rpo += max(p.RPORecords, 0)
	}

	// The application on west, until it has read to the end.
	ends, err := kadm.NewClient(prod).ListEndOffsets(ctx, EmbeddedTopic)
	if err != nil {
		return nil, err
	}
	var total int64
	ends.Each(func(l kadm.ListedOffset) { total += l.Offset })
	firstRead := make(chan time.Time, 1)
	wctx, stopWest := context.WithCancel(ctx)
	westDone := make(chan error, 1)
	go func() { westDone <- app(wctx, west, group, EmbeddedTopic, EmbeddedTopic, t, firstRead) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		t.mu.Lock()
		n := int64(len(t.seen))
		t.mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopWest()
	if err := <-westDone; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	res := &Result{RPORecords: rpo}
	select {
	case at := <-firstRead:
		res.RTOMS = at.Sub(cut).Milliseconds()
	default:
		res.RTOMS = time.Since(cut).Milliseconds() // nothing left to read on west
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	acked.Range(func(k, _ any) bool {
		switch n := t.seen[k.(uint64)]; {
		case n == 0:
			res.Lost++
		case n > 1:
			res.Duplicated += int64(n - 1)
		}
		return true
	})
	res.Reordered = t.reordered
	if res.Lost+res.Duplicated+res.Reordered > 0 {
		return res, fmt.Errorf("%w: %d lost, %d duplicated, %d out of order", ErrVerify, res.Lost, res.Duplicated, res.Reordered)
	}
	return res, nil
}
