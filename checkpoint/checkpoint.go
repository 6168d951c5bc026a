package checkpoint

import (
	"context"
	"errors"
	"fmt"

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
	// ErrDestTruncated: the destination partition ends (or starts) on the
	// wrong side of the checkpoint: records the mirror wrote are gone
	// (topic re-created, records deleted).
	ErrDestTruncated = errors.New("checkpoint: destination lost checkpointed records")
	// ErrSourceTruncated: the source's log start passed the checkpoint
	// before the records after it could be matched (retention purged them).
	ErrSourceTruncated = errors.New("checkpoint: source purged records after the checkpoint")
	// ErrConfig: the store cannot be opened as configured.
	ErrConfig = errors.New("checkpoint: bad store configuration")
	// ErrIO: the store or a cluster failed to read or write.
	ErrIO = errors.New("checkpoint: i/o error")
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
	// Load returns the pipeline's stored state (empty, not nil, when none).
	Load(ctx context.Context, pipeline string) (*State, error)
	// Save stores the given partitions (a partial update: partitions not
	// named keep their stored state) and adds the given producer ids to the
	// stored ones. It returns once the update is durable.
	Save(ctx context.Context, pipeline string, st *State) error
	Close() error
}

// Open opens the store a configuration selects. dest is a client of the
// pipeline's destination cluster (used by the kafka store, which makes its
// own client from dest's options; dest stays the caller's).
func Open(ctx context.Context, cfg pipelines.Checkpoints, dest *kgo.Client) (Store, error) {
	switch cfg.Store {
	case "", "kafka":
		return OpenKafka(ctx, dest, cfg.Topic)
	case "file":
		return OpenFile(cfg.Dir, nil)
	default:
		return nil, fmt.Errorf("%w: unknown store %q (want kafka or file)", ErrConfig, cfg.Store)
	}
}

// OpenReadOnly opens the store a configuration selects for reading only:
// the kafka store does not create its topic (a missing one loads as empty
// states) and Save fails. Commands that only inspect checkpoints use it.
func OpenReadOnly(ctx context.Context, cfg pipelines.Checkpoints, dest *kgo.Client) (Store, error) {
	switch cfg.Store {
	case "", "kafka":
		return openKafka(ctx, dest, cfg.Topic, true)
	case "file":
		return OpenFile(cfg.Dir, readOnlyFS{OSFS})
	default:
		return nil, fmt.Errorf("%w: unknown store %q (want kafka or file)", ErrConfig, cfg.Store)
	}
}
