package mirror

// CONTRACT STUB: the agreed API between the engine and its users (the
// daemon, status, demo, drill). The implementation replaces the bodies;
// signatures may grow but existing ones stay.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"strait/pipelines"
)

// Sentinel errors.
var (
	ErrUnknownPipeline  = errors.New("mirror: unknown pipeline")
	ErrUnknownPartition = errors.New("mirror: unknown partition")
)

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger
	// Meter records the engine's metrics (nil: a no-op meter).
	Meter metric.Meter
}

// Engine runs every pipeline of a configuration.
type Engine struct{}

// New checks cfg (already validated by pipelines.Load) and prepares an engine.
func New(cfg *pipelines.Config, opts Options) (*Engine, error) {
	return nil, errors.New("mirror: not implemented")
}

// Run mirrors until ctx is done, then stops cleanly: in-flight batches are
// acknowledged and positions checkpointed before it returns.
func (e *Engine) Run(ctx context.Context) error { return errors.New("mirror: not implemented") }

// Reload applies a new configuration: added pipelines start, removed ones
// stop, changed ones restart, unchanged ones are not disturbed.
func (e *Engine) Reload(cfg *pipelines.Config) error { return errors.New("mirror: not implemented") }

// Pause pauses a pipeline, or one source partition of it when topic != "".
func (e *Engine) Pause(pipeline, topic string, partition int32) error { return ErrUnknownPipeline }

// Resume undoes Pause (and clears an auto-pause).
func (e *Engine) Resume(pipeline, topic string, partition int32) error { return ErrUnknownPipeline }

// Status is a snapshot of every pipeline, for the admin API and status.
func (e *Engine) Status() []PipelineStatus { return nil }

// PipelineStatus describes one pipeline.
type PipelineStatus struct {
	Name        string            `json:"name"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Mode        string            `json:"mode"`
	State       string            `json:"state"` // starting | running | paused | failed | stopped
	Connected   bool              `json:"connected"`
	LastError   string            `json:"last_error,omitempty"`
	Partitions  []PartitionStatus `json:"partitions"`
}

// PartitionStatus describes one task (one source partition).
type PartitionStatus struct {
	Topic          string        `json:"topic"`
	Partition      int32         `json:"partition"`
	DestTopic      string        `json:"dest_topic"`
	State          string        `json:"state"` // running | paused | auto-paused | gap | failed
	PausedReason   string        `json:"paused_reason,omitempty"`
	SourceOffset   int64         `json:"source_offset"`   // next source offset to copy
	DestOffset     int64         `json:"dest_offset"`     // destination log end after the last ack
	HighWatermark  int64         `json:"high_watermark"`  // source high watermark last seen
	Lag            int64         `json:"lag"`             // records behind
	TimeLag        time.Duration `json:"time_lag_ns"`     // age of the newest record not yet mirrored (0 when caught up)
	RecordsPerSec  float64       `json:"records_per_sec"` // recent rate
	BytesPerSec    float64       `json:"bytes_per_sec"`
	RecordsTotal   int64         `json:"records_total"`
	LastError      string        `json:"last_error,omitempty"`
	GapRecords     int64         `json:"gap_records,omitempty"` // records lost to source retention
	LastProgressAt time.Time     `json:"last_progress_at"`
}
