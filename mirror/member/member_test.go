package member

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd"
)

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backend starts a Kafka cluster to host the group and returns its seeds.
type backend struct {
	name  string
	start func(t *testing.T) []string
}

func backends() []backend {
	return []backend{
		{"brokerd", func(t *testing.T) []string {
			c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1, Partitions: 1,
				GroupMinSessionTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c.Addrs()
		}},
		{"kfake", func(t *testing.T) []string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c.ListenAddrs()
		}},
	}
}

// eventLog orders what every member of a test did.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) add(format string, args ...any) {
	e.mu.Lock()
	e.events = append(e.events, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *eventLog) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

// index is the position of the first event at or after from that has
// prefix, or -1.
func (e *eventLog) index(from int, prefix string) int {
	for i, ev := range e.snapshot() {
		if i >= from && strings.HasPrefix(ev, prefix) {
			return i
		}
	}
	return -1
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tmember is one daemon in a test: its Membership and what its callbacks saw.
type tmember struct {
	name string
	m    *Membership
	logs *lockedBuffer
	err  chan error

	mu struct {
		sync.Mutex
		gen        int32  // generation of the last Assigned
		assignment string // its payload
		assigned   int    // Assigned calls
		fenced     int    // Fenced calls
		leaderSaw  []string
	}
	// rejoinOnce makes the first Assigned ask for a second round.
	rejoinOnce atomic.Bool
	// cut fails every request, as a network partition would.
	cut atomic.Bool
	// stall, if set, becomes the loop's stall hook.
	stall func()
	// looseLeader accepts several members that believe they lead (kfake).
	looseLeader bool
}

type harness struct {
	t       *testing.T
	seeds   []string
	group   string
	events  *eventLog
	cfg     Config // timeouts for every member
	backend string
}

func newHarness(t *testing.T, b backend, session, heartbeat time.Duration) *harness {
	t.Cleanup(func() { checkNoLeaks(t) })
	return &harness{
		t:       t,
		seeds:   b.start(t),
		group:   "strait-fleet-" + strings.ReplaceAll(t.Name(), "/", "-"),
		events:  &eventLog{},
		backend: b.name,
		cfg:     Config{SessionTimeout: session, HeartbeatInterval: heartbeat, RebalanceTimeout: 5 * time.Second},
	}
}

func (h *harness) start(name string, mod func(*Config, *tmember)) *tmember {
	t := h.t
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	tm := &tmember{name: name, logs: &lockedBuffer{}, err: make(chan error, 1), looseLeader: h.backend == "kfake"}
	tm.mu.gen = -1
	cfg := h.cfg
	cfg.Group = h.group
	cfg.Logger = slog.New(slog.NewTextHandler(tm.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Metadata = func() []byte {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		// What the member owns changes its metadata, as the engine's
		// owned partitions do.
		return fmt.Appendf(nil, "%s#%d", name, tm.mu.assigned)
	}
	cfg.Assign = func(members []Member) (map[string][]byte, error) {
		names := make([]string, 0, len(members))
		plan := map[string][]byte{"ghost-member": []byte("dropped")}
		for _, mb := range members {
			names = append(names, string(mb.Metadata))
			plan[mb.ID] = fmt.Appendf(nil, "work-for-%s/%d", mb.Metadata, len(members))
		}
		tm.mu.Lock()
		tm.mu.leaderSaw = names
		tm.mu.Unlock()
		return plan, nil
	}
	cfg.Assigned = func(_ context.Context, gen int32, a []byte) bool {
		tm.mu.Lock()
		tm.mu.gen, tm.mu.assignment = gen, string(a)
		tm.mu.assigned++
		tm.mu.Unlock()
		h.events.add("%s assigned gen %d %s", name, gen, a)
		return tm.rejoinOnce.CompareAndSwap(true, false)
	}
	cfg.Fenced = func() {
		tm.mu.Lock()
		tm.mu.fenced++
		tm.mu.Unlock()
		h.events.add("%s fenced", name)
	}
	if mod != nil {
		mod(&cfg, tm)
	}
	m, err := New(cl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.hooks.request = func(req any) error {
		kr := req.(kmsg.Request)
		h.events.add("%s sends %s", name, kmsg.NameForKey(kr.Key()))
		if tm.cut.Load() {
			return errors.New("test: network cut")
		}
		return nil
	}
	m.hooks.stall = tm.stall
	tm.m = m
	go func() { tm.err <- m.Run(context.Background()) }()
	t.Cleanup(func() {
		m.Close()
		cl.Close()
	})
	return tm
}

func (tm *tmember) gen() (int32, string) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.mu.gen, tm.mu.assignment
}

func (tm *tmember) fences() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.mu.fenced
}

// settled waits until every member has an assignment of one generation
// after min and the leader assigned exactly them; it returns the generation.
func settled(t *testing.T, min int32, ms ...*tmember) int32 {
	t.Helper()
	var g int32
	waitFor(t, 20*time.Second, fmt.Sprintf("%d members settled after generation %d", len(ms), min), func() error {
		g0, _ := ms[0].gen()
		if g0 <= min {
			return fmt.Errorf("%s at generation %d", ms[0].name, g0)
		}
		leaders := 0
		for _, tm := range ms {
			g, a := tm.gen()
			if g != g0 {
				return fmt.Errorf("%s at generation %d, %s at %d", tm.name, g, ms[0].name, g0)
			}
			if want := fmt.Sprintf("/%d", len(ms)); !strings.HasPrefix(a, "work-for-"+tm.name+"#") || !strings.HasSuffix(a, want) {
				return fmt.Errorf("%s got %q", tm.name, a)
			}
			st := tm.m.State()
			if st.Generation != g0 || st.Fenced {
				return fmt.Errorf("%s state %+v", tm.name, st)
			}
			if st.Leader {
				leaders++
				tm.mu.Lock()
				saw := len(tm.mu.leaderSaw)
				tm.mu.Unlock()
				if saw != len(ms) {
					return fmt.Errorf("leader %s saw %d members", tm.name, saw)
				}
			}
		}
		// kfake, when the leader has left, names every member leader
		// of the next generation in its own join answer (it assigns
		// g.leader inside the reply loop); it then uses the last
		// one's sync. brokerd and Kafka name one.
		if leaders != 1 && !(ms[0].looseLeader && leaders > 1) {
			return fmt.Errorf("%d leaders: %+v %+v", leaders, ms[0].m.State(), ms[len(ms)-1].m.State())
		}
		g = g0
		return nil
	})
	return g
}

// checkNoLeaks waits until no goroutine of this package is left.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "membership goroutines to end", func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "strait/mirror/member.(*") {
				return fmt.Errorf("goroutine still running:\n%s", g)
			}
		}
		return nil
	})
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func TestJoinTwoThenThree(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// A member waiting in a JoinGroup counts that wait against its
		// fence deadline (doc.go), so "no fence in a healthy group" needs
		// a session that outlasts a rebalance on a loaded machine under
		// -race: 10 s (strait's default) rather than the 3 s other tests
		// use to see fences quickly.
		h := newHarness(t, b, 10*time.Second, 100*time.Millisecond)
		a, bm := h.start("a", nil), h.start("b", nil)
		g1 := settled(t, 0, a, bm)
		c := h.start("c", nil)
		g2 := settled(t, g1, a, bm, c)
		for _, tm := range []*tmember{a, bm, c} {
			if st := tm.m.State(); st.Rebalances == 0 || st.MemberID == "" || st.LastHeartbeat.IsZero() {
				t.Fatalf("%s state after generation %d: %+v", tm.name, g2, st)
			}
			if n := tm.fences(); n != 0 {
				t.Fatalf("%s fenced %d times in a healthy group", tm.name, n)
			}
		}
	})
}

func TestLeaveRebalancesPromptly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// A long session: a new generation within it comes from the
		// LeaveGroup, not from the coordinator expiring the member.
		h := newHarness(t, b, 20*time.Second, 100*time.Millisecond)
		a, bm, c := h.start("a", nil), h.start("b", nil), h.start("c", nil)
		g := settled(t, 0, a, bm, c)
		start := time.Now()
		c.m.Close()
		if err := <-c.err; err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
		if !strings.Contains(c.logs.String(), "left the group") {
			t.Fatalf("no leave logged:\n%s", c.logs)
		}
		if c.fences() != 1 {
			t.Fatalf("closing member fenced %d times, want 1 (stop writing before leaving)", c.fences())
		}
		settled(t, g, a, bm)
		if took := time.Since(start); took >= h.cfg.SessionTimeout {
			t.Fatalf("rebalance after a leave took %v, as long as a session expiry", took)
		}
	})
}

func TestCutOffMemberFencesBeforeTheOthersMoveOn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, 2*time.Second, 100*time.Millisecond)
		a, bm := h.start("a", nil), h.start("b", nil)
		g := settled(t, 0, a, bm)
		mark := len(h.events.snapshot())
		bm.cut.Store(true)
		waitFor(t, 20*time.Second, "a alone in a new generation", func() error {
			if g2, p := a.gen(); g2 <= g || !strings.HasSuffix(p, "/1") {
				return fmt.Errorf("a at generation %d with %q", g2, p)
			}
			return nil
		})
		fenced := h.events.index(mark, "b fenced")
		moved := h.events.index(mark, "a assigned")
		if fenced < 0 || fenced > moved {
			t.Fatalf("b fenced at event %d, a's new assignment at %d: the zombie could still write\n%s",
				fenced, moved, strings.Join(h.events.snapshot()[mark:], "\n"))
		}
		if !bm.m.State().Fenced || !strings.Contains(bm.logs.String(), "fenced: no heartbeat for") {
			t.Fatalf("b state %+v, log:\n%s", bm.m.State(), bm.logs)
		}
		// The network heals: b joins again (its old id is gone) and
		// the two share the work once more.
		bm.cut.Store(false)
		settled(t, g, a, bm)
	})
}

func TestStoppedMemberFencesFirstOnWakeUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, 2*time.Second, 100*time.Millisecond)
		var stalling atomic.Bool
		release := make(chan struct{})
		a := h.start("a", nil)
		bm := h.start("b", func(_ *Config, tm *tmember) {
			tm.stall = func() {
				if stalling.Load() {
					<-release
					stalling.Store(false)
				}
			}
		})
		g := settled(t, 0, a, bm)
		stalling.Store(true) // SIGSTOP: b's loop stops at its next turn
		waitFor(t, 20*time.Second, "a alone in a new generation", func() error {
			if g2, p := a.gen(); g2 <= g || !strings.HasSuffix(p, "/1") {
				return fmt.Errorf("a at generation %d with %q", g2, p)
			}
			return nil
		})
		mark := len(h.events.snapshot())
		close(release) // SIGCONT
		waitFor(t, 10*time.Second, "b to fence", func() error {
			if bm.fences() == 0 {
				return errors.New("not yet")
			}
			return nil
		})
		var first string
		for _, ev := range h.events.snapshot()[mark:] {
			if strings.HasPrefix(ev, "b ") {
				first = ev
				break
			}
		}
		if first != "b fenced" {
			t.Fatalf("b's first action after waking up was %q, want the fence\n%s", first, strings.Join(h.events.snapshot()[mark:], "\n"))
		}
		if !strings.Contains(bm.logs.String(), "fenced: no heartbeat for") {
			t.Fatalf("no fence logged:\n%s", bm.logs)
		}
		settled(t, g, a, bm)
	})
}

func TestRejoinAfterRevokeGivesASecondGeneration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, 3*time.Second, 100*time.Millisecond)
		a := h.start("a", nil)
		g1 := settled(t, 0, a)
		bm := h.start("b", func(_ *Config, tm *tmember) { tm.rejoinOnce.Store(true) })
		// b's first Assigned asks for a second round; a second
		// generation must follow with both in it.
		g2 := settled(t, g1, a, bm)
		waitFor(t, 20*time.Second, "the second round", func() error {
			bm.mu.Lock()
			n := bm.mu.assigned
			bm.mu.Unlock()
			if n < 2 {
				return fmt.Errorf("b assigned %d times", n)
			}
			return nil
		})
		g3 := settled(t, g2-1, a, bm)
		if bm.rejoinOnce.Load() || g3 <= g1+1 {
			t.Fatalf("generations %d, %d, %d: no second round", g1, g2, g3)
		}
	})
}

func TestCoordinatorRestart(t *testing.T) {
	dir := t.TempDir()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 1, Partitions: 1, Listen: "127.0.0.1:0",
		GroupMinSessionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.Addrs()
	var c2 *brokerd.Cluster
	t.Cleanup(func() {
		if c2 != nil {
			_ = c2.Close()
		}
	})
	h := newHarness(t, backend{"brokerd", func(*testing.T) []string { return addrs }}, 6*time.Second, 100*time.Millisecond)
	a, bm := h.start("a", nil), h.start("b", nil)
	g := settled(t, 0, a, bm)
	_ = c.Close()
	restarted := time.Now()
	if c2, err = brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 1, Partitions: 1, Listen: addrs[0],
		GroupMinSessionTimeout: 100 * time.Millisecond}); err != nil {
		t.Fatalf("restart on %s: %v", addrs[0], err)
	}
	waitFor(t, 20*time.Second, "heartbeats to the restarted coordinator", func() error {
		for _, tm := range []*tmember{a, bm} {
			if st := tm.m.State(); !st.LastHeartbeat.After(restarted) || st.Fenced {
				return fmt.Errorf("%s: %+v", tm.name, st)
			}
		}
		return nil
	})
	// brokerd brings the group back Stable: both carry on in the
	// generation they had, or settle in a new one.
	settled(t, g-1, a, bm)
}

func TestForeignProtocolTypeIsFatal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, 3*time.Second, 100*time.Millisecond)
		// A consumer-type member holds the group.
		cl, err := kgo.NewClient(kgo.SeedBrokers(h.seeds...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group = h.group
		join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 30000, 30000
		join.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		join.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		for range 2 {
			resp, err := join.RequestWith(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); errors.Is(err, kerr.MemberIDRequired) {
				join.MemberID = resp.MemberID
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			break
		}
		tm := h.start("a", nil)
		select {
		case err := <-tm.err:
			if !errors.Is(err, ErrInconsistentProtocol) {
				t.Fatalf("Run = %v, want ErrInconsistentProtocol", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run kept going in a group of another protocol type")
		}
	})
}
