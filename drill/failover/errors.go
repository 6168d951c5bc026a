package failover

import "errors"

// Sentinel errors.
var (
	// ErrInput: the options name no such pipeline, or are inconsistent.
	ErrInput = errors.New("failover: bad input")
	// ErrIdentity: a cluster's id differs from the one recorded with the
	// pipeline's checkpoints.
	ErrIdentity = errors.New("failover: cluster identity differs from the checkpoints")
	// ErrNotDrained: planned failover could not bring the pipeline's lag to
	// zero, or records were acknowledged on the source after the pipeline
	// stopped.
	ErrNotDrained = errors.New("failover: pipeline not drained")
	// ErrGroupActive: a group stayed active on the source past the wait.
	ErrGroupActive = errors.New("failover: group still active on the source")
	// ErrMismatch: failback found copies on the new primary that are not
	// the old source's records after the checkpoint.
	ErrMismatch = errors.New("failover: new primary does not match the old source")
	// ErrCluster: a cluster could not be read or written.
	ErrCluster = errors.New("failover: cluster request failed")
)
