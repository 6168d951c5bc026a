package failover

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"strait/checkpoint"
	"strait/mirror"
	"strait/pipelines"
)

// EngineWriter runs one pipeline in an engine of its own, for a planned
// failover when no daemon runs it (the daemon must be stopped: two writers
// of one destination partition are refused by checkpoint reconciliation).
type EngineWriter struct {
	eng      *mirror.Engine
	pipeline string
	cancel   context.CancelFunc
	done     chan error
}

// StartEngine starts the named pipeline of cfg (unpaused; of the others
// only those writing into its source, paused).
func StartEngine(ctx context.Context, cfg *pipelines.Config, pipeline string, log *slog.Logger) (*EngineWriter, error) {
	p := cfg.Pipeline(pipeline)
	if p == nil {
		return nil, fmt.Errorf("%w: no pipeline %q in the configuration", ErrInput, pipeline)
	}
	one := *p
	one.Paused = false
	c := *cfg
	c.Pipelines = []*pipelines.Pipeline{&one}
	// The pipelines writing into its source come along, paused: batch
	// mode's loop protection knows their copies by the producer ids it
	// reads from their checkpoints (the reverse pipeline of a failback must
	// not copy the forward pipeline's copies back).
	for _, q := range cfg.Pipelines {
		if q != p && q.Destination == p.Source {
			peer := *q
			peer.Paused = true
			c.Pipelines = append(c.Pipelines, &peer)
		}
	}
	eng, err := mirror.New(&c, mirror.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &EngineWriter{eng: eng, pipeline: pipeline, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- eng.Run(rctx) }()
	return w, nil
}

// Positions reports the engine's next source offset per running task.
func (w *EngineWriter) Positions(context.Context) (map[checkpoint.TP]int64, error) {
	out := make(map[checkpoint.TP]int64)
	for _, ps := range w.eng.Status() {
		if ps.Name != w.pipeline {
			continue
		}
		if ps.State == "failed" {
			return nil, fmt.Errorf("pipeline %s failed: %s", ps.Name, ps.LastError)
		}
		for _, t := range ps.Partitions {
			if t.State == "running" || t.State == "paused" {
				out[checkpoint.TP{Topic: t.Topic, Partition: t.Partition}] = t.SourceOffset
			}
		}
	}
	return out, nil
}

// Stop stops the engine; it returns once the final checkpoints are saved.
func (w *EngineWriter) Stop(ctx context.Context) error {
	w.cancel()
	select {
	case err := <-w.done:
		w.done <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("engine did not stop within 2m")
	}
}
