package txn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors for the caller of the Go API; Kafka-level failures are
// answered in the responses.
var (
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("txn: coordinator closed")
	// ErrNotTxnRequest is returned by Handle for keys it does not serve.
	ErrNotTxnRequest = errors.New("txn: not a transaction request")
	// ErrCorruptJournal is returned by New when a journal record of a
	// known version cannot be decoded.
	ErrCorruptJournal = errors.New("txn: corrupt journal record")
	// ErrJournal wraps a failure of Journal.Replay or Journal.Append.
	ErrJournal = errors.New("txn: journal")
)

// OffsetsTopic is how a transaction's consumer-group offsets are listed
// among its partitions (partition 0), as Kafka lists them.
const OffsetsTopic = "__consumer_offsets"

// Journal is where the coordinator keeps transactional ids durably: brokerd
// backs it with the compacted __transaction_state log.
type Journal interface {
	Append(records []KV) error
	Replay(fn func(key, value []byte) error) error
}

// KV is one journal record.
type KV struct{ Key, Value []byte }

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Markers ends transactions outside the coordinator.
type Markers interface {
	// WriteMarkers writes a commit or abort marker for the producer to
	// every partition listed; {OffsetsTopic, 0} stands for the producer's
	// pending group offsets. It must be safe to repeat.
	WriteMarkers(producerID int64, epoch int16, commit bool, parts []TopicPartition) error
}

// Config configures a Coordinator.
type Config struct {
	Journal Journal
	Markers Markers
	// AllocProducerID hands out a never-used producer id.
	AllocProducerID func() (int64, error)
	// PartitionExists reports whether a partition can join a transaction.
	PartitionExists func(topic string, partition int32) bool
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes): a
	// longer transaction timeout is INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// RetryInterval is how often failed marker writes are retried
	// (default 1s).
	RetryInterval time.Duration
	// MaxTransactionalIDs bounds the transactional ids the coordinator
	// holds: once it holds that many, InitProducerId for a new id gets
	// POLICY_VIOLATION (ids already held keep working). Kafka has no such
	// limit (it expires idle ids, transactional.id.expiration.ms, which
	// strait does not); zero or negative: no limit.
	MaxTransactionalIDs int
	// Now is the clock (default time.Now); the loop reads it once per
	// event.
	Now    func() time.Time
	Logger *slog.Logger
}

// Coordinator serves the transaction protocol for a whole cluster.
type Coordinator struct {
	cfg   Config
	log   *slog.Logger
	calls chan func(now time.Time)
	quit  chan struct{}
	done  chan struct{}
	st    *state // owned by run
}

// New replays the journal and returns a running coordinator. Transactions
// the journal left in Prepare* get their markers written at once.
func New(cfg Config) (*Coordinator, error) {
	cfg.MaxTimeout = cmp.Or(cfg.MaxTimeout, 15*time.Minute)
	cfg.RetryInterval = cmp.Or(cfg.RetryInterval, time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		cfg:   cfg,
		log:   cfg.Logger,
		calls: make(chan func(time.Time)),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	st := newState(cfg)
	if cfg.Journal != nil {
		if err := cfg.Journal.Replay(st.replay); err != nil {
			if errors.Is(err, ErrCorruptJournal) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: replay: %w", ErrJournal, err)
		}
	}
	c.st = st
	go c.run()
	return c, nil
}

// Keys lists the API keys Handle serves with their version ranges (InitProducerId
// only with a transactional id; brokerd serves the rest of it).
func Keys() map[int16][2]int16 {
	return map[int16][2]int16{
		int16(kmsg.AddPartitionsToTxn):   {0, 3},
		int16(kmsg.AddOffsetsToTxn):      {0, 3},
		int16(kmsg.EndTxn):               {0, 3},
		int16(kmsg.DescribeTransactions): {0, 0},
		int16(kmsg.ListTransactions):     {0, 1},
	}
}

// do runs fn on the loop and waits for it.
func (c *Coordinator) do(ctx context.Context, fn func(now time.Time)) error {
	ran := make(chan struct{})
	wrapped := func(now time.Time) {
		fn(now)
		close(ran)
	}
	select {
	case c.calls <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
	select {
	case <-ran:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// Handle serves one transaction request.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var resp kmsg.Response
	var fn func(now time.Time)
	switch r := req.(type) {
	case *kmsg.InitProducerIDRequest:
		fn = func(now time.Time) { resp = c.st.initProducerID(r, now) }
	case *kmsg.AddPartitionsToTxnRequest:
		fn = func(now time.Time) { resp = c.st.addPartitions(r, now) }
	case *kmsg.AddOffsetsToTxnRequest:
		fn = func(now time.Time) { resp = c.st.addOffsets(r, now) }
	case *kmsg.EndTxnRequest:
		fn = func(now time.Time) { resp = c.st.endTxn(r, now) }
	case *kmsg.DescribeTransactionsRequest:
		fn = func(now time.Time) { resp = c.st.describe(r) }
	case *kmsg.ListTransactionsRequest:
		fn = func(now time.Time) { resp = c.st.list(r, now) }
	default:
		return nil, ErrNotTxnRequest
	}
	if err := c.do(ctx, fn); err != nil {
		return nil, err
	}
	return resp, nil
}

// Verify checks that the producer (pid, epoch) of transactionalID has an
// open transaction holding every partition listed, and answers one kerr
// code per partition (0 when it does): PRODUCER_FENCED for an older epoch,
// INVALID_PRODUCER_ID_MAPPING for another producer id, INVALID_TXN_STATE
// for a partition not added.
func (c *Coordinator) Verify(ctx context.Context, transactionalID string, pid int64, epoch int16, parts []TopicPartition) ([]int16, error) {
	var codes []int16
	err := c.do(ctx, func(time.Time) { codes = c.st.verify(transactionalID, pid, epoch, parts) })
	return codes, err
}

// Close stops the loop. Open transactions stay in the journal and resume
// (or time out) after the next New.
func (c *Coordinator) Close() error {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
	return nil
}

// run owns the state. After every event it re-arms one timer for the
// earliest deadline: a transaction timing out or markers to retry.
func (c *Coordinator) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var timerC <-chan time.Time
	rearm := func(now time.Time) {
		if dl, ok := c.st.nextDeadline(now); ok {
			timer.Reset(max(dl.Sub(now), 0))
			timerC = timer.C
		} else {
			timer.Stop()
			timerC = nil
		}
	}
	now := c.cfg.Now()
	c.st.tick(now) // finish what a crash left in Prepare*
	rearm(now)
	for {
		select {
		case fn := <-c.calls:
			now := c.cfg.Now()
			fn(now)
			rearm(now)
		case <-timerC:
			now := c.cfg.Now()
			c.st.tick(now)
			rearm(now)
		case <-c.quit:
			timer.Stop()
			return
		}
	}
}
