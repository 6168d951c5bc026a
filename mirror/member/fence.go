package member

import "time"

// fenceMargin is how long before the coordinator could expire the session a
// member that has not heard from it stops writing: at least one heartbeat
// interval (the heartbeat that would have saved the session may be the one
// that got lost) and at least a fifth of the session (room for the engine to
// stop its writers and for clocks to disagree).
func fenceMargin(session, heartbeat time.Duration) time.Duration {
	return max(heartbeat, session/5)
}

// fenceAt is the moment a member that last heard from the coordinator at
// lastHeard must have fenced itself.
func fenceAt(lastHeard time.Time, session, heartbeat time.Duration) time.Time {
	return lastHeard.Add(session - fenceMargin(session, heartbeat))
}

// fenceDecision is the zombie rule as a pure function: given the time now,
// the send time of the last request whose answer proved the membership
// alive (lastHeard) and the timeouts, it reports whether the member must
// fence now and, if not, how long it may still wait before it must.
//
// lastHeard is the send time, not the receive time, because the coordinator
// restarted the session clock when it received the request, which was
// after it was sent; a response that arrives late (the process was
// stopped with the answer in its socket buffer) must not extend the
// member's belief in its session.
func fenceDecision(now, lastHeard time.Time, session, heartbeat time.Duration) (fence bool, left time.Duration) {
	left = fenceAt(lastHeard, session, heartbeat).Sub(now)
	if left <= 0 {
		return true, 0
	}
	return false, left
}
