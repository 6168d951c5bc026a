package checkpoint

// CONTRACT STUB: the agreed API between mirror and checkpoint. The
// implementation replaces the bodies; signatures may grow but existing ones
// stay so mirror keeps compiling.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// Sentinel errors.
var (
	// ErrStranger: the destination partition holds records the mirror did
	// not write after its checkpoint (someone else writes there).
	ErrStranger = errors.New("checkpoint: destination written by another producer")
	// ErrCorrupt: a stored checkpoint record cannot be decoded.
	ErrCorrupt = errors.New("checkpoint: corrupt checkpoint record")
)

// TP names one source partition of a pipeline.
type TP struct {
	Topic     string // source topic name
	Partition int32
}

// Position is how far a partition has been mirrored: Source is the offset of
// the next source record to copy, Dest the destination log end offset after
// the last acknowledged write (the offset the next copied record will get).
type Position struct {
	Source int64
	Dest   int64
}

// OffsetMap records where source offsets landed on the destination. It keeps
// only breakpoints (where dest-source changes), so its size is bounded by the
// number of gaps, not records; Translate is exact.
type OffsetMap struct{}

// Add records that the source offsets [src, src+n) were written at
// destination offsets [dst, dst+n) (records absent inside the range, e.g.
// compacted away within a batch, are absent at both ends). Calls come in
// increasing src order.
func (m *OffsetMap) Add(src, dst, n int64) {}

// Translate maps a committed source offset (the next record a consumer would
// read) to the destination offset at which that consumer must resume. pos is
// the partition's current position, for offsets at or past it.
func (m *OffsetMap) Translate(src int64, pos Position) (int64, bool) { return 0, false }

// Partition is everything checkpointed for one source partition.
type Partition struct {
	Pos Position
	Map *OffsetMap
	// DestTopic is the destination topic the partition is mirrored into.
	DestTopic string
}

// State is a pipeline's checkpointed state.
type State struct {
	Partitions map[TP]*Partition
	// ProducerIDs are the idempotent producer ids the pipeline has used on
	// the destination cluster (loop detection in batch mode).
	ProducerIDs []int64
}

// Store persists pipeline states. Two implementations: the kafka store (a
// compacted topic on the destination cluster) and the file store.
type Store interface {
	Load(ctx context.Context, pipeline string) (*State, error)
	// Save stores the given partitions (a partial update) and producer ids.
	Save(ctx context.Context, pipeline string, st *State) error
	Close() error
}

// Open opens the store a configuration selects. dest is a client of the
// pipeline's destination cluster (used by the kafka store).
func Open(ctx context.Context, cfg pipelines.Checkpoints, dest *kgo.Client) (Store, error) {
	return nil, errors.New("checkpoint: not implemented")
}

// Reconcile runs when a task starts from a checkpoint: it reads the
// destination partition from pos.Dest to its end, checks those records are
// the source records following pos.Source (the first one compared by key,
// value and timestamp), records them in m, and returns the position after
// them, so the task neither repeats nor skips a record. It returns
// ErrStranger when the destination holds records that do not match.
func Reconcile(ctx context.Context, src, dst *kgo.Client, tp TP, destTopic string, pos Position, m *OffsetMap) (Position, error) {
	return pos, errors.New("checkpoint: not implemented")
}
