package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// TestEngineFailoverExact runs the real engine over a source whose topic
// holds committed transactions and aborted data (brokerd) and compaction
// gaps as well (kfake, whose compaction a test can run on demand),
// stops it, and checks through the saved checkpoints that every committed
// source offset translates exactly: a consumer failing over reads, record
// by record, exactly what it had not read on the source. Both modes, both
// stores.
func TestEngineFailoverExact(t *testing.T) {
	for _, mode := range []string{"batch", "record"} {
		for _, store := range []string{"kafka", "file"} {
			for _, compact := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/compacted=%v", mode, store, compact)
				t.Run(name, func(t *testing.T) { engineFailover(t, mode, store, compact) })
			}
		}
	}
}

func engineFailover(t *testing.T, mode, store string, compact bool) {
	ctx := context.Background()
	var srcSeeds []string
	var src *kgo.Client
	var compactNow func()
	var cfgs map[string]*string
	if compact {
		srcC, cl := checkpoint.NewKfake(t)
		srcSeeds, src, compactNow = srcC.ListenAddrs(), cl, srcC.Compact
		p := "compact"
		cfgs = map[string]*string{"cleanup.policy": &p}
	} else {
		srcC, cl := checkpoint.NewBrokerd(t)
		srcSeeds, src = srcC.Addrs(), cl
	}
	checkpoint.CreateTopic(t, src, "orders", 1, cfgs)
	checkpoint.FillSource(t, srcSeeds, "orders", 150, compactNow)
	dstC, dst := checkpoint.NewBrokerd(t)
	// The destination topic exists up front, as in a prepared DR site.
	checkpoint.CreateTopic(t, dst, "east.orders", 1, nil)

	dir := t.TempDir()
	ckpt := "{store: kafka, interval: 100ms}"
	if store == "file" {
		ckpt = fmt.Sprintf("{store: file, dir: %q, interval: 100ms}", filepath.Join(dir, "ckpt"))
	}
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: %s
pipelines:
  - name: p
    source: east
    destination: west
    topics: {include: ["orders"]}
    rename: "east.{topic}"
    mode: %s
    sync: {topic_configs: false}
`, srcSeeds[0], dstC.Addrs()[0], ckpt, mode)
	cfg := loadConfig(t, dir, yaml)
	eng, stop := runEngine(t, ctx, cfg)

	srcRecs := checkpoint.ConsumeAll(t, srcSeeds, "orders", 0, 0)
	lso, err := kadm.NewClient(src).ListCommittedOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := lso.Lookup("orders", 0)
	// kfake's compaction drops whole leading batches and moves the log
	// start up; the engine starts there (start: earliest), and offsets
	// below it are out of range for a source consumer too.
	starts, err := kadm.NewClient(src).ListStartOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	logStart, _ := starts.Lookup("orders", 0)
	checkpoint.WaitFor(t, time.Minute, "the engine to copy every record", func() error {
		p, err := soleTask(eng)
		if err != nil || p.SourceOffset >= end.Offset {
			return err
		}
		return fmt.Errorf("at %d of %d (%s %s)", p.SourceOffset, end.Offset, p.State, p.LastError)
	})
	if err := stop(); err != nil {
		t.Fatalf("engine: %v", err)
	}

	s, err := checkpoint.Open(ctx, cfg.Checkpoints, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	tp := checkpoint.TP{Topic: "orders", Partition: 0}
	if part := st.Partitions[tp]; part == nil || part.Pos.Source < end.Offset {
		t.Fatalf("saved checkpoint %+v does not reach %d", part, end.Offset)
	}
	dstRecs := checkpoint.ConsumeAll(t, dstC.Addrs(), "east.orders", 0, 0)
	if len(dstRecs) != len(srcRecs) {
		t.Fatalf("destination has %d records, source %d", len(dstRecs), len(srcRecs))
	}
	if _, _, ok := st.Translate(tp, logStart.Offset-1); ok && logStart.Offset > 0 {
		t.Errorf("offset %d below the source log start %d translates", logStart.Offset-1, logStart.Offset)
	}
	for c := logStart.Offset; c <= end.Offset; c++ {
		destTopic, d, ok := st.Translate(tp, c)
		if !ok || destTopic != "east.orders" {
			t.Fatalf("offset %d: Translate = %s %d %v", c, destTopic, d, ok)
		}
		var want, got []*kgo.Record
		for _, r := range srcRecs {
			if r.Offset >= c {
				want = append(want, r)
			}
		}
		for _, r := range dstRecs {
			if r.Offset >= d {
				got = append(got, r)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("commit %d → %d: the destination consumer reads %d records, the source %d", c, d, len(got), len(want))
		}
		for i := range want {
			if !checkpoint.SameRecord(got[i], want[i]) {
				t.Fatalf("commit %d → %d: record %d is %q, want %q", c, d, i, got[i].Value, want[i].Value)
			}
		}
	}
}

// TestEngineGroupSync: with the real engine, a group committed on the
// source shows up translated on the destination, never moves backwards,
// and is left alone while a member of it is active on the destination.
// On kfake the source holds transactions (control records, aborted data);
// on brokerd, both clusters strait ships, retention removed the source's
// first records before the mirror started, so translation is not identity
// there either.
func TestEngineGroupSync(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		srcC, src := checkpoint.NewKfake(t)
		checkpoint.CreateTopic(t, src, "orders", 1, nil)
		checkpoint.FillSource(t, srcC.ListenAddrs(), "orders", 60, nil)
		dstC, dst := checkpoint.NewKfake(t)
		checkpoint.CreateTopic(t, dst, "orders", 1, nil)
		engineGroupSync(t, "record", srcC.ListenAddrs(), dstC.ListenAddrs(), src, dst)
	})
	for _, mode := range []string{"record", "batch"} {
		t.Run("brokerd/"+mode, func(t *testing.T) {
			srcC, src := checkpoint.NewBrokerd(t)
			checkpoint.CreateTopic(t, src, "orders", 1, nil)
			for i := 0; i < 68; i++ {
				checkpoint.Produce(t, src, checkpoint.Rec("orders", 0, i))
			}
			del := kadm.Offsets{}
			del.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 8})
			dr, err := kadm.NewClient(src).DeleteRecords(context.Background(), del)
			if err == nil {
				err = dr.Error()
			}
			if err != nil {
				t.Fatalf("delete records: %v", err)
			}
			dstC, dst := checkpoint.NewBrokerd(t)
			checkpoint.CreateTopic(t, dst, "orders", 1, nil)
			engineGroupSync(t, mode, srcC.Addrs(), dstC.Addrs(), src, dst)
		})
	}
}

func engineGroupSync(t *testing.T, mode string, srcSeeds, dstSeeds []string, src, dst *kgo.Client) {
	ctx := context.Background()

	dir := t.TempDir()
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 100ms}
pipelines:
  - name: p
    source: east
    destination: west
    topics: {include: ["orders"]}
    mode: %s
    sync: {topic_configs: false, groups: ["billing-.*"], interval: 200ms}
`, srcSeeds[0], dstSeeds[0], filepath.Join(dir, "ckpt"), mode)
	cfg := loadConfig(t, dir, yaml)
	eng, _ := runEngine(t, ctx, cfg)

	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(dst)
	srcRecs := checkpoint.ConsumeAll(t, srcSeeds, "orders", 0, 0)
	commit := func(at int64) {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "orders", Partition: 0, At: at, LeaderEpoch: -1})
		if err := srcAdm.CommitAllOffsets(ctx, "billing-a", os); err != nil {
			t.Fatal(err)
		}
	}
	destAt := func() int64 {
		os, err := dstAdm.FetchOffsets(ctx, "billing-a")
		if err != nil {
			return -2
		}
		o, ok := os.Lookup("orders", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	// The copy of source record i sits wherever the engine put it; find it
	// by content on the destination.
	dstRecs := func() []*kgo.Record { return checkpoint.ConsumeAll(t, dstSeeds, "orders", 0, 0) }
	checkpoint.WaitFor(t, time.Minute, "the engine to copy every record", func() error {
		if n := len(dstRecs()); n < len(srcRecs) {
			return fmt.Errorf("%d of %d (%+v)", n, len(srcRecs), eng.Status())
		}
		return nil
	})
	copies := dstRecs()
	want := func(i int) int64 { return copies[i].Offset } // resume at the copy of srcRecs[i]
	if len(copies) != len(srcRecs) {
		t.Fatalf("destination holds %d records, source %d", len(copies), len(srcRecs))
	}
	for i := range copies {
		if !checkpoint.SameRecord(copies[i], srcRecs[i]) {
			t.Fatalf("copy %d is %s, want %s", i, copies[i].Value, srcRecs[i].Value)
		}
	}
	if want(40) == srcRecs[40].Offset {
		t.Fatalf("translation of %d is identity; the test needs a source with gaps", srcRecs[40].Offset)
	}

	commit(srcRecs[40].Offset)
	checkpoint.WaitFor(t, time.Minute, "billing-a on the destination", func() error {
		if got := destAt(); got != want(40) {
			return fmt.Errorf("destination commit %d, want %d", got, want(40))
		}
		return nil
	})

	// syncRound commits source record i's offset for the marker group
	// and waits until it arrives on the destination: a whole sync round
	// has run since anything committed before it.
	syncRound := func(i int, what string) {
		t.Helper()
		marker := kadm.Offsets{}
		marker.Add(kadm.Offset{Topic: "orders", Partition: 0, At: srcRecs[i].Offset, LeaderEpoch: -1})
		if err := srcAdm.CommitAllOffsets(ctx, "billing-marker", marker); err != nil {
			t.Fatal(err)
		}
		checkpoint.WaitFor(t, time.Minute, what, func() error {
			os, err := dstAdm.FetchOffsets(ctx, "billing-marker")
			if o, ok := os.Lookup("orders", 0); err != nil || !ok || o.At != want(i) {
				return fmt.Errorf("marker not synced: %v", err)
			}
			return nil
		})
	}

	// Backwards on the source: the destination stays. Wait until a later
	// commit of another group (a sync marker) went through first.
	commit(srcRecs[10].Offset)
	syncRound(5, "a sync round after the lower commit")
	if got := destAt(); got != want(40) {
		t.Fatalf("destination moved backwards to %d, want %d", got, want(40))
	}

	// A member active on the destination: the group is not touched.
	member, err := kgo.NewClient(kgo.SeedBrokers(dstSeeds...),
		kgo.ConsumerGroup("billing-a"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	checkpoint.WaitFor(t, time.Minute, "the member to join", func() error {
		pctx, c := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(pctx)
		c()
		d, err := dstAdm.DescribeGroups(ctx, "billing-a")
		if err != nil || len(d["billing-a"].Members) == 0 {
			return fmt.Errorf("not joined (%v)", err)
		}
		return nil
	})
	commit(srcRecs[50].Offset)
	syncRound(6, "a sync round with the member active")
	if got := destAt(); got != want(40) {
		t.Fatalf("destination moved to %d while a member was active, want %d", got, want(40))
	}
	member.Close()
	checkpoint.WaitFor(t, time.Minute, "billing-a synced after the member left", func() error {
		if got := destAt(); got != want(50) {
			return fmt.Errorf("destination commit %d, want %d", got, want(50))
		}
		return nil
	})
}

// TestEngineRestartLoopPrevention: in an active-active setup record mode
// leaves out the records that came from the destination cluster. A restart
// from an older checkpoint must pair the destination's records past those
// left-out source records too: no duplicate, no stranger alarm.
func TestEngineRestartLoopPrevention(t *testing.T) {
	ctx := context.Background()
	srcC, src := checkpoint.NewKfake(t)
	checkpoint.CreateTopic(t, src, "orders", 1, nil)
	dstC, dst := checkpoint.NewBrokerd(t)
	checkpoint.CreateTopic(t, dst, "orders", 1, nil)
	for i := 0; i < 60; i++ {
		r := &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if i%4 == 3 {
			// Mirrored here from west by the reverse pipeline.
			r.Headers = []kgo.RecordHeader{{Key: checkpoint.ProvenanceHeader, Value: []byte("west/back")}}
		}
		if err := src.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 100ms}
pipelines:
  - name: p
    source: east
    destination: west
    topics: {include: ["orders"]}
    mode: record
    sync: {topic_configs: false}
`, srcC.ListenAddrs()[0], dstC.Addrs()[0], filepath.Join(dir, "ckpt"))
	cfg := loadConfig(t, dir, yaml)
	runUntilCopied := func() {
		t.Helper()
		eng, stop := runEngine(t, ctx, cfg)
		checkpoint.WaitFor(t, time.Minute, "the engine to copy every record", func() error {
			p, err := soleTask(eng)
			if err != nil {
				return err
			}
			if p.State == "failed" {
				t.Fatalf("task failed: %s", p.LastError)
			}
			if p.SourceOffset >= 60 {
				return nil
			}
			return fmt.Errorf("at %d (%s %s)", p.SourceOffset, p.State, p.LastError)
		})
		if err := stop(); err != nil {
			t.Fatalf("engine: %v", err)
		}
	}
	runUntilCopied()

	// Roll the checkpoint back to source offset 21, as if the saves after
	// it were lost in a crash; the records copied after it stay.
	s, err := checkpoint.Open(ctx, cfg.Checkpoints, dst)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	tp := checkpoint.TP{Topic: "orders", Partition: 0}
	part := st.Partitions[tp]
	d, ok := part.Map.Translate(21, part.Pos)
	if !ok {
		t.Fatal("offset 21 does not translate")
	}
	old := &checkpoint.State{Partitions: map[checkpoint.TP]*checkpoint.Partition{
		tp: {Pos: checkpoint.Position{Source: 21, Dest: d}, Map: part.Map, DestTopic: part.DestTopic},
	}}
	if err := s.Save(ctx, "p", old); err != nil {
		t.Fatal(err)
	}
	s.Close()
	runUntilCopied()

	var want []*kgo.Record
	for _, r := range checkpoint.ConsumeAll(t, srcC.ListenAddrs(), "orders", 0, 0) {
		if len(r.Headers) == 0 {
			want = append(want, r)
		}
	}
	got := checkpoint.ConsumeAll(t, dstC.Addrs(), "orders", 0, 0)
	if len(got) != len(want) {
		t.Fatalf("destination has %d records, want the %d not looped", len(got), len(want))
	}
	for i := range want {
		if string(got[i].Value) != string(want[i].Value) {
			t.Fatalf("record %d is %s, want %s", i, got[i].Value, want[i].Value)
		}
	}
}

// loadConfig writes yaml to dir/strait.yaml and loads it.
func loadConfig(t *testing.T, dir, yaml string) *pipelines.Config {
	t.Helper()
	path := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runEngine runs a mirror engine on cfg until stop, which returns what Run
// returned; later calls of stop return nil, and the test's end stops it.
func runEngine(t *testing.T, ctx context.Context, cfg *pipelines.Config) (*mirror.Engine, func() error) {
	t.Helper()
	eng, err := mirror.New(cfg, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	var once sync.Once
	stop := func() (err error) {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() }) // a failed test stops it too
	return eng, stop
}

// soleTask returns the status of the only task of a test whose one
// pipeline mirrors one partition.
func soleTask(eng *mirror.Engine) (mirror.PartitionStatus, error) {
	st := eng.Status()
	if len(st) == 0 {
		return mirror.PartitionStatus{}, errors.New("no pipelines")
	}
	if ps := st[0]; len(ps.Partitions) == 0 {
		return mirror.PartitionStatus{}, fmt.Errorf("pipeline %s: no partitions yet (%s %s)", ps.Name, ps.State, ps.LastError)
	}
	return st[0].Partitions[0], nil
}
