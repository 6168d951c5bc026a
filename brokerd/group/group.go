package group

// CONTRACT STUB: the agreed API between brokerd and its group coordinator.
// The implementation replaces the bodies; signatures may grow but existing
// ones stay so brokerd keeps compiling.

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNotGroupRequest is returned by Handle for keys it does not serve.
var ErrNotGroupRequest = errors.New("group: not a group request")

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
}

// Coordinator serves the classic consumer-group protocol for a whole
// cluster.
type Coordinator struct{}

// New replays the journal and returns a running coordinator.
func New(cfg Config) (*Coordinator, error) { return &Coordinator{}, nil }

// Keys lists the API keys Handle serves with their max versions.
func Keys() map[int16]int16 { return map[int16]int16{} }

// Handle serves one request of a key listed by Keys. It may block (JoinGroup
// waits for the rebalance) until ctx ends.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return nil, ErrNotGroupRequest
}

// Close stops timers and background work.
func (c *Coordinator) Close() error { return nil }
