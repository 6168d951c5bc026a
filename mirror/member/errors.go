package member

import "errors"

// Errors returned by New and Run. Kafka error codes the coordinator sends
// back are wrapped too, so errors.Is works with both these and kerr's.
var (
	// ErrConfig is a Config that cannot work (no group, no callbacks,
	// timeouts that leave no room for a heartbeat before the fence).
	ErrConfig = errors.New("member: bad config")
	// ErrAuthorization is GROUP_AUTHORIZATION_FAILED: the principal may
	// not use the group. Retrying cannot help.
	ErrAuthorization = errors.New("member: not authorized to use the group")
	// ErrInconsistentProtocol is INCONSISTENT_GROUP_PROTOCOL: the group is
	// in use by members of another protocol type (a consumer group with
	// the same name, say) or another strait protocol version.
	ErrInconsistentProtocol = errors.New("member: group is in use with another protocol")
	// ErrFencedInstance is FENCED_INSTANCE_ID: another process joined with
	// the same static instance id and took the membership over.
	ErrFencedInstance = errors.New("member: instance id taken over by another process")
	// ErrRejected is any other non-retriable answer to a join
	// (INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED, INVALID_GROUP_ID, ...).
	ErrRejected = errors.New("member: coordinator rejected the member")
	// ErrRunning is a second Run on the same Membership.
	ErrRunning = errors.New("member: Run called twice")
	// ErrClosed is Run after Close.
	ErrClosed = errors.New("member: closed")
)
