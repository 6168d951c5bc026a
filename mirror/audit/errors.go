package audit

import "errors"

// Sentinel errors.
var (
	// ErrConfig: the audit cannot be set up as configured.
	ErrConfig = errors.New("audit: bad configuration")
	// ErrRead: a cluster or the checkpoint store could not be read.
	ErrRead = errors.New("audit: read failed")
)
