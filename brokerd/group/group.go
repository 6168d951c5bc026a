package group

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors. Kafka-level failures (unknown member, illegal
// generation, ...) are answered inside the response with a kerr code; these
// are for the caller of the Go API.
var (
	// ErrNotGroupRequest is returned by Handle for keys it does not serve.
	ErrNotGroupRequest = errors.New("group: not a group request")
	// ErrClosed is returned by Handle once Close has been called.
	ErrClosed = errors.New("group: coordinator closed")
	// ErrCorruptJournal is returned by New when a journal record of a
	// known version cannot be decoded.
	ErrCorruptJournal = errors.New("group: corrupt journal record")
	// ErrJournal wraps a failure of Journal.Replay or Journal.Append.
	ErrJournal = errors.New("group: journal")
)

// Journal is where the coordinator keeps committed offsets and group
// metadata durably: brokerd backs it with the compacted __consumer_offsets
// log. A nil value is a tombstone.
type Journal interface {
	// Append stores the records durably (as durable as the broker's
	// produce path) before returning.
	Append(records []KV) error
	// Replay calls fn for every record, oldest first.
	Replay(fn func(key, value []byte) error) error
}

// KV is one journal record.
type KV struct{ Key, Value []byte }

// Config configures a Coordinator.
type Config struct {
	Journal Journal
	Logger  *slog.Logger
	// OffsetsRetention is Kafka's offsets.retention.minutes: how long
	// committed offsets are kept once a group is Empty (or after each
	// commit, for groups that never had members). 0 takes Kafka's default
	// of 7 days; negative keeps offsets until the group is deleted.
	OffsetsRetention time.Duration
	// RetentionCheckInterval is Kafka's
	// offsets.retention.check.interval.ms: how often expired offsets are
	// looked for (0: 10 minutes). The first check runs one interval after
	// New.
	RetentionCheckInterval time.Duration
	// MinSessionTimeout is Kafka's group.min.session.timeout.ms: a join
	// asking for a shorter session fails with INVALID_SESSION_TIMEOUT.
	// 0 takes Kafka's default, DefaultMinSessionTimeout (6 s); tests
	// that expire members quickly set it lower.
	MinSessionTimeout time.Duration
}

// Coordinator serves the classic consumer-group protocol for a whole
// cluster. All group state is owned by one goroutine (run); Handle hands
// each request to it over a channel and waits for the answer, so no lock
// guards the state and no request sees a half-applied change.
type Coordinator struct {
	journal Journal
	log     *slog.Logger
	// sweepEvery is the retention check interval; 0 when offsets are
	// kept forever.
	sweepEvery time.Duration

	calls chan *call
	quit  chan struct{}
	done  chan struct{}

	// Owned by the run goroutine.
	st *state
}

// call is one request handed to the run goroutine. reply has room for one
// answer so the loop never blocks on a caller that has gone away.
type call struct {
	// fn, when set, is run on the loop instead of serving req (calls
	// from brokerd's Go API, such as CompleteTxn); reply then gets nil.
	fn     func(now time.Time)
	req    kmsg.Request
	client ClientInfo
	reply  chan kmsg.Response
}

// ClientInfo identifies the connection a request came from; DescribeGroups
// reports it per member.
type ClientInfo struct {
	ClientID   string
	ClientHost string
}

type clientKey struct{}

// WithClient returns a context carrying the client id and host of the
// connection, for Handle to record on group members.
func WithClient(ctx context.Context, info ClientInfo) context.Context {
	return context.WithValue(ctx, clientKey{}, info)
}

// New replays the journal and returns a running coordinator.
func New(cfg Config) (*Coordinator, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		journal: cfg.Journal,
		log:     lg,
		calls:   make(chan *call),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	st, err := load(cfg.Journal, time.Now(), cfg.MinSessionTimeout)
	if err != nil {
		return nil, err
	}
	c.st = st
	c.st.append = c.appendJournal
	c.st.log = lg
	switch {
	case cfg.OffsetsRetention < 0:
		c.st.retention = -1
	case cfg.OffsetsRetention > 0:
		c.st.retention = cfg.OffsetsRetention
	}
	if c.st.retention >= 0 {
		c.sweepEvery = cmp.Or(max(cfg.RetentionCheckInterval, 0), defaultRetentionCheck)
	}
	go c.run()
	return c, nil
}

// load replays the journal into a fresh state and starts the restored
// members' sessions at now. minSession is group.min.session.timeout.ms (0:
// the default).
func load(j Journal, now time.Time, minSession time.Duration) (*state, error) {
	st := newState()
	if minSession > 0 {
		st.minSession = minSession
	}
	if j != nil {
		if err := j.Replay(st.replay); err != nil {
			if errors.Is(err, ErrCorruptJournal) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: replay: %w", ErrJournal, err)
		}
	}
	st.loaded(now)
	return st, nil
}

// Keys lists the API keys Handle serves with their max versions.
func Keys() map[int16]int16 {
	return map[int16]int16{
		int16(kmsg.OffsetCommit):    9, // v10 names topics by ID
		int16(kmsg.OffsetFetch):     8, // v9 is for KIP-848 groups, v10 topic IDs
		int16(kmsg.JoinGroup):       9,
		int16(kmsg.Heartbeat):       4,
		int16(kmsg.LeaveGroup):      5,
		int16(kmsg.SyncGroup):       5,
		int16(kmsg.DescribeGroups):  6,
		int16(kmsg.ListGroups):      5,
		int16(kmsg.DeleteGroups):    2,
		int16(kmsg.OffsetDelete):    0,
		int16(kmsg.TxnOffsetCommit): 3, // v4+ is KIP-890 part 2
	}
}

// Handle serves one request of a key listed by Keys. It may block (JoinGroup
// waits for the rebalance) until ctx ends.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if req == nil {
		return nil, ErrNotGroupRequest
	}
	top, ok := Keys()[req.Key()]
	if !ok {
		return nil, ErrNotGroupRequest
	}
	if v := req.GetVersion(); v < 0 || v > top {
		return nil, fmt.Errorf("%w: %s v%d not served", ErrNotGroupRequest, kmsg.NameForKey(req.Key()), v)
	}
	cl := &call{req: req, reply: make(chan kmsg.Response, 1)}
	if info, ok := ctx.Value(clientKey{}).(ClientInfo); ok {
		cl.client = info
	}
	select {
	case c.calls <- cl:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrClosed
	}
	select {
	case resp := <-cl.reply:
		if resp == nil {
			// A request type the state machine has no case for.
			return nil, ErrNotGroupRequest
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrClosed
	}
}

// Close stops timers and background work. Requests parked in a rebalance
// return ErrClosed.
func (c *Coordinator) Close() error {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
	return nil
}

// run is the single owner of the group state. It reads the clock once per
// event and passes that time into the state logic, which never reads the
// clock itself. One timer is armed for the earliest deadline: a request can
// only move its own group's deadlines earlier, so only that group is looked
// at per request; the full scan runs when the timer fires. A timer that
// fires early (heartbeats pushed the deadline back) finds nothing to do and
// is re-armed. The next retention sweep is one more deadline on the same
// timer.
func (c *Coordinator) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		timerC    <-chan time.Time // nil while no deadline is armed
		armed     time.Time
		nextSweep time.Time // zero when offsets are kept forever
	)
	arm := func(at time.Time) {
		timer.Reset(max(time.Until(at), 0))
		timerC, armed = timer.C, at
	}
	rearm := func() {
		dl, ok := c.st.nextDeadline()
		if !nextSweep.IsZero() && (!ok || nextSweep.Before(dl)) {
			dl, ok = nextSweep, true
		}
		if ok {
			arm(dl)
		}
	}
	if c.sweepEvery > 0 {
		nextSweep = time.Now().Add(c.sweepEvery)
	}
	// Restored members' sessions are already running.
	rearm()
	for {
		select {
		case cl := <-c.calls:
			g := c.st.handle(cl, time.Now())
			if g == nil {
				continue
			}
			if dl, ok := groupDeadline(g); ok && (timerC == nil || dl.Before(armed)) {
				arm(dl)
			}
		case <-timerC:
			timerC = nil
			now := time.Now()
			c.st.expire(now)
			if !nextSweep.IsZero() && !now.Before(nextSweep) {
				c.st.sweep(now)
				nextSweep = now.Add(c.sweepEvery)
			}
			rearm()
		case <-c.quit:
			timer.Stop()
			return
		}
	}
}

// appendJournal writes records through the journal; the state applies a
// change in memory only after this returned nil.
func (c *Coordinator) appendJournal(kvs []KV) error {
	if c.journal == nil || len(kvs) == 0 {
		return nil
	}
	if err := c.journal.Append(kvs); err != nil {
		c.log.Error("group: journal append failed", "records", len(kvs), "err", err)
		return fmt.Errorf("%w: append: %w", ErrJournal, err)
	}
	return nil
}
