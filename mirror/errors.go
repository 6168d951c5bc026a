package mirror

import "errors"

// Sentinel errors, checked with errors.Is.
var (
	// ErrConfig: the configuration cannot run (unknown cluster, bad mode).
	ErrConfig = errors.New("mirror: invalid configuration")
	// ErrCorruptBatch: fetched bytes do not parse as record batches.
	ErrCorruptBatch = errors.New("mirror: corrupt record batch")
	// ErrGap: the source lost records the task had not copied yet.
	ErrGap = errors.New("mirror: source records lost before they were mirrored")
	// ErrTooLarge: the destination refuses a batch as too large.
	ErrTooLarge = errors.New("mirror: batch too large for the destination")
	// ErrProducerSession: the destination no longer accepts the mirror's
	// idempotent producer session (sequence or producer id errors); the
	// task re-initialises its producer and reconciles.
	ErrProducerSession = errors.New("mirror: destination producer session lost")
	// ErrCluster: a cluster's answer left out part of the question (a
	// topic of a batched admin request without a result).
	ErrCluster = errors.New("mirror: incomplete answer from the cluster")
	// ErrStopped: the engine or pipeline is stopping.
	ErrStopped = errors.New("mirror: stopped")
)
