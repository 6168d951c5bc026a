package brokerd

import "errors"

// Sentinel errors returned by Start and the Cluster methods; callers test
// them with errors.Is. Every error brokerd returns wraps one of them.
var (
	// ErrConfig reports an invalid Config (bad listen address, broker count…).
	ErrConfig = errors.New("brokerd: invalid config")
	// ErrInUse reports a Dir another running cluster holds.
	ErrInUse = errors.New("brokerd: data folder in use")
	// ErrMeta reports cluster metadata on disk that cannot be read or written.
	ErrMeta = errors.New("brokerd: cluster metadata")
	// ErrListen reports a listener that could not be opened.
	ErrListen = errors.New("brokerd: listen")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("brokerd: cluster closed")
	// ErrFrame reports a malformed request frame; the connection is closed.
	ErrFrame = errors.New("brokerd: malformed request")
	// ErrTooBig reports a request above MaxRequestBytes; the connection is closed.
	ErrTooBig = errors.New("brokerd: request too large")
	// ErrUnsupported reports a request key or version brokerd does not serve.
	ErrUnsupported = errors.New("brokerd: unsupported request")
	// ErrUnauthenticated reports a request sent before SASL
	// authentication completed; the connection is closed.
	ErrUnauthenticated = errors.New("brokerd: not authenticated")
	// ErrAcksZero reports a failed acks=0 produce; the connection is
	// closed, as Kafka does, since no response can carry the error.
	ErrAcksZero = errors.New("brokerd: acks=0 produce failed")
	// ErrJournal reports a damaged record in the group journal.
	ErrJournal = errors.New("brokerd: group journal")
)
