package mirror

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// State is the state of a pipeline (PipelineStatus.State: starting,
// running, paused, failed, stopped) or of one partition's task
// (PartitionStatus.State: any of them). Its text, in JSON and in the admin
// API, is the lower-case word of the constant.
type State string

// The states a pipeline or a partition task can be in.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StatePaused     State = "paused"      // by an operator
	StateAutoPaused State = "auto-paused" // after repeated failures; retries by itself
	StateGap        State = "gap"         // source records lost; waits for a resume
	StateFailed     State = "failed"      // cannot continue without an operator
	StateStopped    State = "stopped"
)

func (s State) String() string { return string(s) }

// lifecycle is a task's pure decision core: it takes events with the time
// they happened and says what the driver must do next. It does no I/O and
// reads no clock; the task goroutine holds it under the task's lock.
//
//	starting --started--> running --pause--> paused --resume--> running
//	running --failure x N--> auto-paused --(retryAt passes | resume)--> running
//	running --gap--> gap --resume--> running (from the source log start)
//	starting --stranger--> failed (an operator must act)
type lifecycle struct {
	state   State
	reason  string // why auto-paused, in gap or failed
	retryAt time.Time
	// bo is made by the first failure and dropped by the next success
	// (dropping it is its reset): a task that never failed, the common
	// case at 10,000 partitions, holds none.
	bo       *backoff.ExponentialBackOff
	cooldown time.Duration
	// The small fields last, packed: the struct lives in every task.
	failures int32 // consecutive failures since the last success
	// maxFailures consecutive failures auto-pause the task for cooldown.
	maxFailures int32
	userPaused  bool // operator pause (pipeline or partition)
}

func newLifecycle(maxFailures int, cooldown time.Duration, paused bool) lifecycle {
	return lifecycle{state: StateStarting, userPaused: paused, maxFailures: int32(min(maxFailures, 1<<30)), cooldown: cooldown}
}

// nextBackOff is the wait after another failure in a row.
func (l *lifecycle) nextBackOff() time.Duration {
	if l.bo == nil {
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval = 50 * time.Millisecond
		bo.MaxInterval = 2 * time.Second
		bo.MaxElapsedTime = 0 // never give up: the auto-pause decides
		bo.Reset()
		l.bo = bo
	}
	return l.bo.NextBackOff()
}

// decision is what the driver does after an event.
type decision struct {
	Wait      time.Duration // wait this long before trying again
	AutoPause bool          // the task just auto-paused (log it loudly)
}

// started: the task knows its position and may copy.
func (l *lifecycle) started() {
	if l.state == StateStarting || l.state == StateAutoPaused {
		l.state = StateRunning
	}
}

// success: a call to a cluster worked; failures reset.
func (l *lifecycle) success() {
	l.failures = 0
	l.bo = nil
	if l.state == StateAutoPaused {
		l.state, l.reason = StateRunning, ""
	}
}

// failure: a retriable call failed. After maxFailures in a row the task
// auto-pauses until now+cooldown (or an operator resumes it).
func (l *lifecycle) failure(reason string, now time.Time) decision {
	l.failures++
	if l.failures >= l.maxFailures && l.state != StateAutoPaused {
		l.state, l.reason, l.retryAt = StateAutoPaused, reason, now.Add(l.cooldown)
		return decision{Wait: l.cooldown, AutoPause: true}
	}
	if l.state == StateAutoPaused {
		l.retryAt = now.Add(l.cooldown)
		return decision{Wait: l.cooldown}
	}
	return decision{Wait: l.nextBackOff()}
}

// unreachable: the cluster could not be reached at all. That says nothing
// about this partition (every partition of the pipeline sees it), so it
// backs off without counting toward an auto-pause; the task resumes by
// itself as soon as the cluster answers.
func (l *lifecycle) unreachable() decision {
	return decision{Wait: l.nextBackOff()}
}

// hardPause: a failure retrying cannot fix soon (a batch too large for the
// destination): auto-pause straight away.
func (l *lifecycle) hardPause(reason string, now time.Time) decision {
	l.state, l.reason, l.retryAt = StateAutoPaused, reason, now.Add(l.cooldown)
	return decision{Wait: l.cooldown, AutoPause: true}
}

// gap: the source lost records the task had not copied.
func (l *lifecycle) gap(reason string) { l.state, l.reason = StateGap, reason }

// fail: the task cannot continue without an operator.
func (l *lifecycle) fail(reason string) { l.state, l.reason = StateFailed, reason }

// pause and resume are operator actions. Resume also clears an auto-pause,
// a gap (the task continues from the source log start) and a failure
// (the task starts over).
func (l *lifecycle) pause() { l.userPaused = true }

func (l *lifecycle) resume() (wasGap, wasFailed bool) {
	l.userPaused = false
	switch l.state {
	case StateAutoPaused:
		l.state, l.reason, l.failures = StateRunning, "", 0
		l.bo = nil
	case StateGap:
		l.state, l.reason = StateRunning, ""
		return true, false
	case StateFailed:
		l.state, l.reason = StateStarting, ""
		return false, true
	}
	return false, false
}

// canCopy reports whether data may flow now.
func (l *lifecycle) canCopy(now time.Time) bool {
	if l.userPaused {
		return false
	}
	switch l.state {
	case StateRunning:
		return true
	case StateAutoPaused:
		return !now.Before(l.retryAt)
	}
	return false
}

// shown is the state for Status.
func (l *lifecycle) shown() State {
	if l.userPaused && (l.state == StateRunning || l.state == StateAutoPaused || l.state == StateStarting) {
		return StatePaused
	}
	return l.state
}

// bucket is a token bucket for the per-pipeline byte rate (pure: time
// comes in as a value). rate <= 0 means unlimited.
type bucket struct {
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate int64) *bucket {
	b := &bucket{rate: float64(rate), burst: float64(rate)}
	b.tokens = b.burst
	return b
}

// take spends n bytes and returns how long the caller must wait first. A
// request larger than the burst goes into debt, so big batches still pass
// at the configured average rate.
func (b *bucket) take(n int, now time.Time) time.Duration {
	if b == nil || b.rate <= 0 {
		return 0
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
