package drill

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startPair(t *testing.T) *Pair {
	t.Helper()
	p, err := StartPair(context.Background(), t.TempDir(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// phaseLog records the phases the ticks reported.
type phaseLog struct {
	mu     sync.Mutex
	phases []Phase
}

func (l *phaseLog) tick(s Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, s.Phase)
}

// checkOrder fails when the ticks saw a phase go backwards or an unnamed
// phase.
func (l *phaseLog) checkOrder(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.phases) == 0 {
		t.Fatal("Tick was never called")
	}
	for i, p := range l.phases {
		if p < PhaseBacklog || p > PhaseVerify {
			t.Fatalf("tick %d reported %v", i, p)
		}
		if i > 0 && p < l.phases[i-1] {
			t.Fatalf("phases went backwards: %v", l.phases)
		}
	}
}

// TestScenarioEmbeddedCut runs the embedded story in process: a backlog,
// the stream, east stopped, the group moved to west, everything checked.
func TestScenarioEmbeddedCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	pair := startPair(t)
	cfg, err := EmbeddedConfig(t.TempDir(), pair, "batch")
	if err != nil {
		t.Fatal(err)
	}
	var log phaseLog
	sc := &Scenario{
		Config:    cfg,
		Pipeline:  cfg.Pipelines[0].Name,
		Topics:    []TopicSpec{{Name: EmbeddedTopic, Partitions: 2}},
		Group:     "g",
		Rate:      300,
		Backlog:   300,
		Duration:  6 * time.Second,
		CutSource: pair.StopEast,
		Tick:      log.tick,
	}
	rep, err := sc.Run(context.Background())
	if err != nil {
		t.Fatalf("%v (report %+v)", err, rep)
	}
	if !rep.OK() || !rep.TranslationExact || rep.BacklogN != 300 || len(rep.Partitions) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Acked < rep.BacklogN || rep.Mirrored+rep.RPORecords < rep.Acked || rep.ConsumedSource == 0 {
		t.Fatalf("acked %d, mirrored %d, RPO %d, consumed on the source %d", rep.Acked, rep.Mirrored, rep.RPORecords, rep.ConsumedSource)
	}
	log.checkOrder(t)
}

// TestScenarioPausedSource runs the story a drill runs on real clusters:
// the source survives, producing stops and the pipeline pauses; then
// Cleanup removes what the drill created.
func TestScenarioPausedSource(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	pair := startPair(t)
	base, err := EmbeddedConfig(t.TempDir(), pair, "record")
	if err != nil {
		t.Fatal(err)
	}
	const topic = "orders.drill"
	cfg, err := RealConfig(base, "", topic, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var log phaseLog
	sc := &Scenario{
		Config:   cfg,
		Pipeline: cfg.Pipelines[0].Name,
		Topics:   []TopicSpec{{Name: topic, Partitions: 2}},
		Group:    "drill-group",
		Rate:     300,
		Duration: 6 * time.Second,
		Tick:     log.tick,
	}
	rep, err := sc.Run(context.Background())
	if err != nil {
		t.Fatalf("%v (report %+v)", err, rep)
	}
	if !rep.OK() || rep.Acked == 0 || rep.Mirrored+rep.RPORecords < rep.Acked {
		t.Fatalf("report %+v", rep)
	}
	log.checkOrder(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if errs := Cleanup(ctx, cfg, topic, sc.Group); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, addrs := range [][]string{pair.East.Addrs(), pair.West.Addrs()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		topics, err := kadm.NewClient(cl).ListTopics(ctx)
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		if topics.Has(topic) {
			t.Errorf("%v still has topic %s", addrs, topic)
		}
	}
}

// TestScenarioCancelled: cancelling the run's context ends it with
// ErrScenario, and whatever it had started is stopped (the pair closes,
// the test's goroutines end).
func TestScenarioCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	pair := startPair(t)
	cfg, err := EmbeddedConfig(t.TempDir(), pair, "batch")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := &Scenario{
		Config:    cfg,
		Pipeline:  cfg.Pipelines[0].Name,
		Topics:    []TopicSpec{{Name: EmbeddedTopic, Partitions: 1}},
		Group:     "g",
		Rate:      100,
		Duration:  time.Hour,
		CutSource: pair.StopEast,
		Tick:      func(Snapshot) { cancel() },
	}
	rep, err := sc.Run(ctx)
	if !errors.Is(err, ErrScenario) || !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("Run = %+v, %v; want no report and a cancelled ErrScenario", rep, err)
	}
}

func TestScenarioBadInput(t *testing.T) {
	pair := startPair(t)
	cfg, err := EmbeddedConfig(t.TempDir(), pair, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, sc := range map[string]*Scenario{
		"no group":         {Config: cfg, Pipeline: "drill"},
		"unknown pipeline": {Config: cfg, Pipeline: "nope", Group: "g"},
		"unmirrored topic": {Config: cfg, Pipeline: "drill", Group: "g", Topics: []TopicSpec{{Name: "other", Partitions: 1}}},
	} {
		if rep, err := sc.Run(context.Background()); !errors.Is(err, ErrScenario) || rep != nil {
			t.Errorf("%s: Run = %+v, %v; want ErrScenario", name, rep, err)
		}
	}
}

func TestPhaseString(t *testing.T) {
	want := map[Phase]string{
		PhaseBacklog:    "backlog",
		PhaseStreaming:  "streaming",
		PhaseCut:        "cut",
		PhaseFailover:   "failover",
		PhaseVerify:     "verify",
		0:               "Phase(0)",
		PhaseVerify + 1: "Phase(6)",
	}
	for p, s := range want {
		if p.String() != s {
			t.Errorf("Phase(%d).String() = %q, want %q", int32(p), p.String(), s)
		}
	}
}
