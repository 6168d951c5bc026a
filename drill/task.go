package drill

import (
	"context"
	"errors"
	"time"
)

// errTaskStuck: a task did not return within the time it was given.
var errTaskStuck = errors.New("drill: task did not stop in time")

// task is a goroutine a run started, on a context of its own. Stopping it
// cancels that context and waits for the goroutine to return; a task that
// already returned (on its own or stopped before) stops at once. Only the
// run's driver stops tasks.
type task struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when fn has returned
	err    error         // fn's result; read only after done is closed
	stuck  bool          // stopWithin gave up on it: later stops return at once
}

// goTask runs fn in a goroutine on a context derived from parent.
func goTask(parent context.Context, fn func(context.Context) error) *task {
	ctx, cancel := context.WithCancel(parent)
	t := &task{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = fn(ctx)
	}()
	return t
}

// stop cancels the task and returns its result once it has returned.
func (t *task) stop() error {
	t.cancel()
	<-t.done
	return t.err
}

// stopWithin is stop, waiting at most d; errTaskStuck when the task did
// not return in time, then and on every later call.
func (t *task) stopWithin(d time.Duration) error {
	t.cancel()
	if t.stuck {
		return errTaskStuck
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.done:
		return t.err
	case <-timer.C:
		t.stuck = true
		return errTaskStuck
	}
}

// closeBounded closes a client without letting a dead cluster hold the run:
// franz-go's Close may wait on requests to brokers that are gone.
func closeBounded(fn func()) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}
