package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProtocolType is the group's protocol type: it keeps consumers (type
// "consumer") and Kafka Connect workers ("connect") out of a strait group
// and strait daemons out of theirs, since a coordinator refuses a member
// whose type differs from the group's.
const ProtocolType = "strait"

// ProtocolName is the one protocol every daemon of this version offers. A
// future incompatible metadata layout gets a new name; daemons offering
// both let the coordinator pick the one all support during an upgrade.
const ProtocolName = "strait-v1"

// Defaults, the ones Kafka Connect uses for its workers.
const (
	DefaultSessionTimeout    = 10 * time.Second
	DefaultRebalanceTimeout  = 60 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
)

// Member is one member of a generation as the leader sees it.
type Member struct {
	// ID is the member id the coordinator gave it; it keys the
	// assignment map Assign returns.
	ID string
	// InstanceID is its static instance id, "" for a dynamic member.
	InstanceID string
	// Metadata is what its Metadata callback returned for this join.
	Metadata []byte
}

// Config configures a Membership. Group, Metadata, Assign, Assigned and
// Fenced are required; zero timeouts take the defaults.
type Config struct {
	// Group is the group id every daemon of the fleet joins.
	Group string
	// InstanceID, if set, makes the member static (KIP-345): a daemon
	// restarted within the session timeout takes its place back without
	// a rebalance. Each daemon needs its own.
	InstanceID string
	// SessionTimeout is how long the coordinator keeps a silent member.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for every
	// member to rejoin once a rebalance starts; it bounds Assigned's
	// revocations.
	RebalanceTimeout time.Duration
	// HeartbeatInterval is the pace of heartbeats while the group is
	// stable. It must be under half the session timeout.
	HeartbeatInterval time.Duration

	// Metadata is called before every JoinGroup; its bytes reach the
	// leader's Assign unchanged.
	Metadata func() []byte
	// Assign is called on the elected leader only, with every member of
	// the new generation, oldest first; it returns each member's
	// assignment. A member missing from the map gets an empty one; ids
	// not in members are dropped. An error skips the generation: the
	// leader rejoins, so ownership does not change.
	Assign func(members []Member) (map[string][]byte, error)
	// Assigned is called after every successful SyncGroup with the
	// generation and this member's assignment, one call at a time and in
	// generation order. It revokes what the member lost (blocking until
	// drained and checkpointed), starts what it gained, and returns
	// rejoin=true when it revoked something, so the leader can hand the
	// revoked work out in a second round. Heartbeats go on while it runs.
	// ctx is cancelled when the member must fence or Run stops: Assigned
	// must then return promptly without starting anything.
	Assigned func(ctx context.Context, generation int32, assignment []byte) (rejoin bool)
	// Fenced is called when the member can no longer be sure it owns its
	// assignment; it must return only once nothing the member started
	// can still write (in-flight writes answered or abandoned). After it,
	// the member owns nothing until the next Assigned, and Metadata must
	// say so. Never called concurrently with Assigned.
	Fenced func()

	// Rebalanced, if set, is called after each Assigned with the
	// generation and how long the rebalance took from the start of the
	// join to the end of Assigned (for metrics).
	Rebalanced func(generation int32, took time.Duration)
	// Logger receives membership events; nil discards them.
	Logger *slog.Logger
	// Now is the clock the fence decision reads; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Group == "":
		return fmt.Errorf("%w: no group", ErrConfig)
	case c.Metadata == nil || c.Assign == nil || c.Assigned == nil || c.Fenced == nil:
		return fmt.Errorf("%w: Metadata, Assign, Assigned and Fenced are required", ErrConfig)
	case c.SessionTimeout < 0 || c.RebalanceTimeout < 0 || c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: negative timeout", ErrConfig)
	case c.SessionTimeout > time.Duration(1<<31-1)*time.Millisecond || c.RebalanceTimeout > time.Duration(1<<31-1)*time.Millisecond:
		return fmt.Errorf("%w: timeout too large", ErrConfig)
	case 2*c.HeartbeatInterval >= c.SessionTimeout:
		// The fence comes a margin of at least one heartbeat interval
		// before the session ends; under half the session leaves room
		// for at least one more heartbeat before it.
		return fmt.Errorf("%w: heartbeat interval %v must be under half the session timeout %v", ErrConfig, c.HeartbeatInterval, c.SessionTimeout)
	}
	return nil
}

// State is a snapshot of the membership for status pages.
type State struct {
	Group      string
	MemberID   string
	Generation int32
	Leader     bool
	// LastHeartbeat is the send time of the last request the coordinator
	// answered in a way that proved the membership alive.
	LastHeartbeat time.Time
	// Fenced is true from a fence until the next assignment.
	Fenced bool
	// Rebalances counts completed rebalances (Assigned calls);
	// LastRebalance is how long the last one took.
	Rebalances    int64
	LastRebalance time.Duration
	// Fences counts self-fences.
	Fences int64
}

// Membership is one daemon's membership in the group.
type Membership struct {
	cl  *kgo.Client
	cfg Config
	log *slog.Logger

	mu struct {
		sync.Mutex
		st      State
		cancel  context.CancelFunc // Run's, nil when not running
		started bool
		closed  bool
		// lease is the fence deadline while the member holds an
		// assignment (zero otherwise); see Lease.
		lease time.Time
	}
	done chan struct{}
	// rejoinReq (cap 1) asks the loop for a new rebalance; see Rejoin.
	rejoinReq chan struct{}

	// hooks let package tests simulate a network cut or a stopped process.
	hooks testHooks
}

type testHooks struct {
	// request, if set, runs before every request is sent; an error
	// fails the request as a network error would.
	request func(req any) error
	// stall, if set, runs at the top of every loop iteration; blocking
	// in it is a process stopped with SIGSTOP.
	stall func()
}

// New returns a Membership that talks to the cluster cl is connected to. It
// does nothing until Run.
func New(cl *kgo.Client, cfg Config) (*Membership, error) {
	if cl == nil {
		return nil, fmt.Errorf("%w: nil client", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Membership{cl: cl, cfg: cfg, log: cfg.Logger.With("group", cfg.Group), done: make(chan struct{}), rejoinReq: make(chan struct{}, 1)}
	m.mu.st = State{Group: cfg.Group, Generation: -1}
	return m, nil
}

// State returns a snapshot of the membership.
func (m *Membership) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.st
}

// Lease is the moment until which the daemon may write what it was
// assigned: lastHeard + SessionTimeout - margin, the same deadline the
// loop fences at. It is zero while the member holds nothing (before its
// first assignment, from the start of a fence). The engine checks it right
// before every destination write and checkpoint save, because a process
// resumed by SIGCONT runs its writers before the loop gets to fence.
func (m *Membership) Lease() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.lease
}

// CanWrite reports whether a write may start at now (now < Lease()).
func (m *Membership) CanWrite(now time.Time) bool {
	return now.Before(m.Lease())
}

// Rejoin asks the member to rejoin the group, which starts a rebalance:
// the leader calls it when the set of partitions to share changed. It does
// not block; requests made while one is pending merge.
func (m *Membership) Rejoin() {
	select {
	case m.rejoinReq <- struct{}{}:
	default:
	}
}

func (m *Membership) setLease(t time.Time) {
	m.mu.Lock()
	m.mu.lease = t
	m.mu.Unlock()
}

func (m *Membership) update(f func(*State)) {
	m.mu.Lock()
	f(&m.mu.st)
	m.mu.Unlock()
}

// Run joins the group and keeps the membership until ctx is done or Close
// is called; then it fences (if it held an assignment) and leaves the
// group. It returns nil on a requested stop and an error only for a
// failure retrying cannot fix (authorization, protocol mismatch, a stolen
// instance id). Transient failures are retried with backoff for as long as
// Run runs.
func (m *Membership) Run(ctx context.Context) error {
	m.mu.Lock()
	switch {
	case m.mu.closed:
		m.mu.Unlock()
		return ErrClosed
	case m.mu.started:
		m.mu.Unlock()
		return ErrRunning
	}
	m.mu.started = true
	ctx, cancel := context.WithCancel(ctx)
	m.mu.cancel = cancel
	m.mu.Unlock()
	defer close(m.done)
	defer cancel()

	l := newLoop(m)
	err := l.run(ctx)
	l.stop()
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	return err
}

// Close stops Run and waits for it to leave the group and return. It is
// safe to call more than once and without Run.
func (m *Membership) Close() {
	m.mu.Lock()
	m.mu.closed = true
	cancel, started := m.mu.cancel, m.mu.started
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if started {
		<-m.done
	}
}
