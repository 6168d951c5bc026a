package mirror

import (
	"context"

	"strait/checkpoint"
	"strait/pipelines"
)

// writer copies one task's fetched chunks into its destination partition.
// Each mode has its own (see doc.go, "Modes"): batchWriter forwards record
// batches under the pipeline's idempotent producer session, recordWriter
// re-produces every record through franz-go's producer. A task builds its
// writer once; nothing else in the task depends on the mode.
//
// The task's driver goroutine is the only caller of write, recover and
// reconciled; failed may be called from any goroutine.
type writer interface {
	// write copies c's records past the task's write position, in source
	// order, and gives c's bytes back to the pipeline budget once it no
	// longer holds them. The task's position only moves past records the
	// destination acknowledged. ErrProducerSession: the destination
	// dropped the writer's session; the task recovers and reconciles.
	write(ctx context.Context, c *chunk) error
	// failed returns the failure that holds the writer back until the
	// task has reconciled with the destination (nil: none). While it is
	// set the task fetches nothing.
	failed() error
	// recover prepares the reconciliation that follows a failure: batch
	// mode takes a new producer id, record mode waits until every write in
	// flight has an outcome and forgets them.
	recover(ctx context.Context) error
	// reconciled: the task's position now comes from the destination, so
	// every earlier write is accounted for and the failure is over.
	reconciled()
	// reconcileOptions tell checkpoint.ReconcileWith which source records
	// loop prevention leaves out, so that it pairs the destination's
	// records past them as this writer's copies did, and which destination
	// records are local writes (loop protection, active-active).
	reconcileOptions() checkpoint.ReconcileOptions
}

// newWriter builds the writer for the task's pipeline mode.
func newWriter(t *task) writer {
	if t.p.mode() == pipelines.ModeRecord {
		return newRecordWriter(t)
	}
	return &batchWriter{t: t}
}
