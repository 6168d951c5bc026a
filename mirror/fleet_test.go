package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/mirror/assign"
	"strait/pipelines"
)

// fleetConfig is a one-pipeline configuration whose daemons share the work
// in a workers group on the destination cluster, with the kafka store.
func fleetConfig(src, dst []string, mode pipelines.Mode, group string) *pipelines.Config {
	return &pipelines.Config{
		Clusters: map[string]*pipelines.Cluster{
			"east": {Name: "east", Bootstrap: src},
			"west": {Name: "west", Bootstrap: dst},
		},
		Checkpoints: pipelines.Checkpoints{Store: "kafka", Topic: "__strait_checkpoints", Interval: pipelines.Duration(200 * time.Millisecond)},
		Pipelines: []*pipelines.Pipeline{{
			Name: "east-to-west", Source: "east", Destination: "west",
			Topics: pipelines.Topics{Include: []string{"fleet"}},
			Rename: "{topic}", Mode: mode,
			Sync:    pipelines.Sync{TopicConfigs: true, Partitions: true, Interval: pipelines.Duration(time.Second)},
			Limits:  pipelines.Limits{Buffer: 16 << 20},
			Refresh: pipelines.Duration(300 * time.Millisecond),
		}},
		Workers: &pipelines.Workers{Group: group, Cluster: "west",
			SessionTimeout:    pipelines.Duration(3 * time.Second),
			RebalanceTimeout:  pipelines.Duration(10 * time.Second),
			HeartbeatInterval: pipelines.Duration(500 * time.Millisecond)},
	}
}

// stream produces a steady keyed stream: every tick one record into each
// partition, until stop is called.
type stream struct {
	stop func()
	done chan struct{}
}

func startStream(t *testing.T, addrs []string, topic string, parts int32, every time.Duration) *stream {
	t.Helper()
	cl := client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			for p := int32(0); p < parts; p++ {
				r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d-%d", p, i%97)),
					Value: []byte(fmt.Sprintf("%d/%d %s", p, i, strings.Repeat("v", 64)))}
				cl.Produce(ctx, r, nil)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	s.stop = func() {
		cancel()
		<-s.done
		_ = cl.Flush(context.Background())
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.stop()
		}
	})
	return s
}

// sample is one engine's partitions at a moment: source offset and the
// running task's record count (which restarts with a new task).
type sample map[int32][2]int64

func snapshot(e *Engine) sample {
	out := sample{}
	for _, ps := range e.Status() {
		for _, s := range ps.Partitions {
			out[s.Partition] = [2]int64{s.SourceOffset, s.RecordsTotal}
		}
	}
	return out
}

// owners maps every partition owned by one of es to its engine's index;
// a partition owned twice fails the test.
func owners(t *testing.T, es []*Engine) map[int32]int {
	t.Helper()
	out := map[int32]int{}
	for i, e := range es {
		if e == nil {
			continue
		}
		for p := range snapshot(e) {
			if j, ok := out[p]; ok {
				t.Fatalf("partition %d owned by engines %d and %d", p, j, i)
			}
			out[p] = i
		}
	}
	return out
}

func TestFleetBrokerd(t *testing.T) {
	for _, mode := range []pipelines.Mode{pipelines.ModeBatch, pipelines.ModeRecord} {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			fleetScenario(t, src.Addrs(), dst.Addrs(), mode, 60, 3)
			sameTopic(t, src, dst, "fleet", 60)
		})
	}
}

func TestFleetKfake(t *testing.T) {
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	dst, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dst.Close)
	fleetScenario(t, src.ListenAddrs(), dst.ListenAddrs(), pipelines.ModeBatch, 12, 2)
	for p := int32(0); p < 12; p++ {
		if err := sameRecords(readAll(t, src.ListenAddrs(), "fleet", p), readAll(t, dst.ListenAddrs(), "fleet", p)); err != nil {
			t.Fatalf("fleet/%d: %v", p, err)
		}
	}
}

// fleetScenario: n engines share parts partitions of a steady stream
// (shares by bytes within 20% of 1/n); one loses its membership without
// leaving (its connection to the group is cut) and the others own its
// partitions within the session timeout + 5s; another joins and only moved
// partitions stop, the others keep their task and advance throughout; at
// the end every destination partition equals its source.
func fleetScenario(t *testing.T, src, dst []string, mode pipelines.Mode, parts int32, n int) {
	createTopicIfMissing(t, src, "fleet", parts)
	st := startStream(t, src, "fleet", parts, 40*time.Millisecond)
	group := "fleet-" + string(mode)
	es := make([]*Engine, 0, n+1)
	stops := make([]func(), 0, n+1)
	for i := 0; i < n; i++ {
		e, stop := runEngine(t, fleetConfig(src, dst, mode, group), Options{DaemonID: fmt.Sprintf("d%d", i)})
		es, stops = append(es, e), append(stops, stop)
	}
	all := func(es []*Engine) bool {
		o := owners(t, es)
		if len(o) != int(parts) {
			return false
		}
		for _, e := range es {
			if e != nil && len(snapshot(e)) == 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "every partition owned by one engine, each engine owning some", func() bool { return all(es) })

	// Shares by bytes/s: what each engine owns of the source's traffic
	// over a window, measured on the source itself (end offsets; every
	// record of the stream has the same size, give or take a digit), so
	// the share does not depend on how the copying was timed on a loaded
	// machine. The window is taken once the fleet has caught up and its
	// ownership holds still.
	waitFor(t, 60*time.Second, "the fleet caught up with the stream", func() bool {
		for _, e := range es {
			for _, ps := range e.Status() {
				for _, s := range ps.Partitions {
					if s.Lag > 5 {
						return false
					}
				}
			}
		}
		return true
	})
	var got []int64
	waitFor(t, 60*time.Second, "a window of steady ownership", func() bool {
		own0, end0 := owners(t, es), endOffsets(t, src, "fleet")
		before := make([]sample, n)
		for i, e := range es {
			before[i] = snapshot(e)
		}
		time.Sleep(3 * time.Second)
		own1, end1 := owners(t, es), endOffsets(t, src, "fleet")
		if !reflect.DeepEqual(own0, own1) || len(own1) != int(parts) {
			return false
		}
		got = make([]int64, n)
		for p, i := range own1 {
			got[i] += end1[p] - end0[p]
		}
		// Every engine copied during the window too.
		for i, e := range es {
			moved := int64(0)
			for p, v := range snapshot(e) {
				if b, ok := before[i][p]; ok {
					moved += v[0] - b[0]
				}
			}
			if moved == 0 {
				t.Errorf("engine %d copied nothing in the window", i)
			}
		}
		return true
	})
	var total int64
	for _, g := range got {
		total += g
	}
	if total == 0 {
		t.Fatalf("the source took no records in the window")
	}
	for i := range got {
		share := float64(got[i]) / float64(total)
		if share < 0.8/float64(n) || share > 1.2/float64(n) {
			t.Errorf("engine %d owns %.1f%% of the source's records/s, want within 20%% of %.1f%%", i, 100*share, 100/float64(n))
		}
	}

	// Death: the last engine loses the group (no leave, no checkpoint).
	dead := n - 1
	deadParts := len(snapshot(es[dead]))
	es[dead].fleet.cl.Close()
	cut := time.Now()
	alive := append([]*Engine(nil), es[:dead]...)
	waitFor(t, 3*time.Second+5*time.Second+2*time.Second, "the dead engine's partitions owned again", func() bool { return all(alive) })
	t.Logf("%d partitions of a dead engine owned again after %v", deadParts, time.Since(cut).Round(10*time.Millisecond))
	if took := time.Since(cut); took > 8*time.Second {
		t.Errorf("partitions owned again after %v, want within session timeout + 5s", took)
	}
	waitFor(t, 10*time.Second, "the dead engine fenced", func() bool { return len(snapshot(es[dead])) == 0 })

	// A newcomer: record progress during the rebalance.
	first := map[int32]int{}
	for p, i := range owners(t, alive) {
		first[p] = i
	}
	start := make([]sample, len(alive))
	for i, e := range alive {
		start[i] = snapshot(e)
	}
	ne, nstop := runEngine(t, fleetConfig(src, dst, mode, group), Options{DaemonID: "newcomer"})
	withNew := append(append([]*Engine(nil), alive...), ne)
	stayed := map[int32]bool{}
	for p := range first {
		stayed[p] = true
	}
	var mu sync.Mutex
	last := map[int32][2]int64{}
	for i := range alive {
		for p, v := range start[i] {
			last[p] = v
		}
	}
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range alive {
			for p, v := range snapshot(e) {
				if first[p] != i || !stayed[p] {
					stayed[p] = false
					continue
				}
				if l := last[p]; v[1] < l[1] {
					// A new task: the partition was revoked and given
					// back between two samples (round two may place a
					// released partition back), so it moved.
					t.Logf("partition %d went and came back to engine %d", p, i)
					stayed[p] = false
				}
				last[p] = v
			}
		}
		for p := range snapshot(ne) {
			stayed[p] = false
		}
	}
	waitFor(t, 60*time.Second, "the newcomer owns partitions", func() bool {
		check()
		return all(withNew)
	})
	// Settled: a moment more of progress.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		check()
		time.Sleep(100 * time.Millisecond)
	}
	check()
	moved, kept := 0, 0
	for p, ok := range stayed {
		if !ok {
			moved++
			continue
		}
		kept++
		i := first[p]
		if last[p][0] <= start[i][p][0] {
			t.Errorf("partition %d stayed on engine %d but did not advance during the rebalance (%d)", p, i, last[p][0])
		}
	}
	t.Logf("newcomer: %d partitions moved, %d stayed and kept copying", moved, kept)
	if moved == 0 || kept == 0 {
		t.Errorf("moved %d, kept %d: want both", moved, kept)
	}
	for _, e := range withNew {
		if fs := e.Status()[0].Fleet; fs == nil || fs.Generation < 0 || fs.Daemon == "" {
			t.Errorf("fleet status missing: %+v", fs)
		}
	}

	// The end: stop the stream, let the fleet catch up, compare.
	st.stop()
	ends := endOffsets(t, src, "fleet")
	waitFor(t, 60*time.Second, "the fleet caught up", func() bool {
		got := map[int32]int64{}
		for _, e := range withNew {
			for p, v := range snapshot(e) {
				got[p] = v[0]
			}
		}
		for p, end := range ends {
			if got[p] != end {
				return false
			}
		}
		return true
	})
	nstop()
	for i, s := range stops {
		if i != dead {
			s()
		}
	}
	stops[dead]()
}

func createTopicIfMissing(t *testing.T, addrs []string, topic string, parts int32) {
	t.Helper()
	resp, err := kadm.NewClient(client(t, addrs)).CreateTopic(context.Background(), parts, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// Two daemons with different configurations in one group: the second is
// told why it gets no work, says so in its status, and no partition is
// copied by both.
func TestFleetMismatch(t *testing.T) {
	src, dst := clusterPair(t)
	createTopicIfMissing(t, src.Addrs(), "fleet", 6)
	st := startStream(t, src.Addrs(), "fleet", 6, 50*time.Millisecond)
	a, astop := runEngine(t, fleetConfig(src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "mixed"), Options{DaemonID: "a"})
	waitFor(t, 30*time.Second, "a owns every partition", func() bool { return len(snapshot(a)) == 6 })
	other := fleetConfig(src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "mixed")
	other.Pipelines[0].Refresh = pipelines.Duration(time.Second) // a different configuration
	b, bstop := runEngine(t, other, Options{DaemonID: "b"})
	waitFor(t, 30*time.Second, "b reports the mismatch", func() bool {
		fs := b.Status()[0].Fleet
		return fs != nil && fs.Mismatch != ""
	})
	// A while of steady copying: never two owners, b owns nothing.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		owners(t, []*Engine{a, b})
		if n := len(snapshot(b)); n != 0 {
			t.Fatalf("mismatched daemon runs %d partitions", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fs := a.Status()[0].Fleet; fs.Mismatch != "" || !fs.Leader || len(fs.Owners) != 6 {
		t.Errorf("leader's fleet status: %+v", fs)
	}
	t.Logf("mismatch: %s", b.Status()[0].Fleet.Mismatch)
	st.stop()
	ends := endOffsets(t, src.Addrs(), "fleet")
	waitFor(t, 30*time.Second, "a caught up", func() bool {
		s := snapshot(a)
		for p, end := range ends {
			if s[p][0] != end {
				return false
			}
		}
		return true
	})
	bstop()
	astop()
	sameTopic(t, src, dst, "fleet", 6)
}

// A partition that leaves a daemon and comes back gets a new task under
// the same destination producer session. The session's sequence numbers
// on that partition go on from where the first task stopped: had the new
// task counted from 0 again, the destination would have taken its first
// batches (one record each, like the first task's) for retries of the
// first task's, answered them with the old offsets and written nothing.
// The handoff is driven through the fleet's own Assigned callback, so the
// interleaving is the same every run: copy three one-record batches,
// revoke, three more records on the source, assign back.
func TestFleetPartitionComesBack(t *testing.T) {
	for _, mode := range []pipelines.Mode{pipelines.ModeBatch, pipelines.ModeRecord} {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			createTopicIfMissing(t, src.Addrs(), "fleet", 1)
			prod := client(t, src.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
			produce := func(from, to int) {
				t.Helper()
				for i := from; i < to; i++ {
					// One batch per record: each its own request.
					r := &kgo.Record{Topic: "fleet", Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("0/%d", i))}
					if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
			}
			copied := func(e *Engine, n int64) func() bool {
				return func() bool { s, ok := snapshot(e)[0]; return ok && s[0] == n }
			}
			produce(0, 3)
			e, stop := runEngine(t, fleetConfig(src.Addrs(), dst.Addrs(), mode, "comes-back-"+string(mode)), Options{DaemonID: "solo"})
			waitFor(t, 60*time.Second, "the first task copied 3 records", copied(e, 3))

			f := e.fleet
			gen := f.m.Load().State().Generation
			tp := assign.Partition{Pipeline: "east-to-west", Topic: "fleet", Partition: 0}
			ctx := context.Background()
			if !f.assigned(ctx, gen, assign.EncodeAssignment(assign.Assignment{})) {
				t.Fatal("revoking the partition asked for no rejoin")
			}
			if n := len(snapshot(e)); n != 0 {
				t.Fatalf("%d partitions run after the revocation", n)
			}
			produce(3, 6)
			f.assigned(ctx, gen, assign.EncodeAssignment(assign.Assignment{Assigned: []assign.Partition{tp}}))
			waitFor(t, 60*time.Second, "the second task copied the 3 new records", copied(e, 6))
			stop()
			sameTopic(t, src, dst, "fleet", 1)
		})
	}
}

// logBuffer collects an engine's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Batch mode: a task stopped waiting for the answer to a batch it sent
// (a handoff while the destination was slow), and the batch landed after
// all. The partition's next task on this daemon must not write at that
// sequence under the same session (a batch of the same length would be
// taken for a retry of the landed one and dropped): it renews the session
// first, and the reconciliation finds the landed batch.
func TestFleetBatchUnansweredBeforeHandoff(t *testing.T) {
	src, dst := clusterPair(t)
	createTopicIfMissing(t, src.Addrs(), "fleet", 1)
	prod := client(t, src.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			r := &kgo.Record{Topic: "fleet", Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("0/%d", i))}
			if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	copied := func(e *Engine, n int64) func() bool {
		return func() bool { s, ok := snapshot(e)[0]; return ok && s[0] == n }
	}
	produce(0, 3)
	logs := &logBuffer{}
	e, stop := runEngine(t, fleetConfig(src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "unanswered"),
		Options{DaemonID: "solo", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	waitFor(t, 60*time.Second, "the first task copied 3 records", copied(e, 3))
	f := e.fleet
	gen := f.m.Load().State().Generation
	tp := assign.Partition{Pipeline: "east-to-west", Topic: "fleet", Partition: 0}
	ctx := context.Background()
	f.assigned(ctx, gen, assign.EncodeAssignment(assign.Assignment{}))
	produce(3, 6)

	// The first task's last batch, source record 3 at sequence 3, lands
	// after its task stopped waiting for the answer.
	p := e.runsSnapshot()[0].p
	id, epoch, sgen := p.producer()
	k := seqKey{topic: "fleet", partition: 0}
	p.setSequence(k, partSeq{gen: sgen, next: 3, unsure: true})
	rec := readAll(t, src.Addrs(), "fleet", 0)[3]
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "fleet"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = encodeBatch([]*kgo.Record{rec}, id, epoch, 3)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client(t, dst.Addrs()))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("the late batch: %v", err)
	}

	f.assigned(ctx, gen, assign.EncodeAssignment(assign.Assignment{Assigned: []assign.Partition{tp}}))
	waitFor(t, 60*time.Second, "the second task copied the new records", copied(e, 6))
	if _, _, g := p.producer(); g == sgen {
		t.Errorf("the producer session was not renewed")
	}
	stop()
	sameTopic(t, src, dst, "fleet", 1)
	out := logs.String()
	if !strings.Contains(out, "has no known outcome; renewing the session") {
		t.Errorf("the unanswered batch was not noticed before the write")
	}
	if strings.Contains(out, "as a duplicate of an earlier one") {
		t.Errorf("a batch was written at the unanswered sequence")
	}
}
