package brokerd

// The idle path of incremental fetches. A mirror's fetch session holds
// every partition a broker leads (thousands), and while nothing is written
// each of its long polls used to read, watch and unwatch every one of them.
// Now, before reading anything, an incremental fetch asks whether its
// session is quiet: every partition answered before, nothing listed in
// this request, the fetch offset at the high watermark, and the high
// watermark and log start offset what the session last sent. That check
// loads a few words per partition and allocates nothing. A quiet session
// then waits on its broker's idle waiters (one registration, woken by an
// append to any partition the broker leads) instead of one registration
// per partition, and checks again when woken. Only a session that is not
// quiet takes the full path (read every partition, answer what changed).

import (
	"sync"
	"sync/atomic"
	"time"
)

// idleWaiters are the quiet long polls of one broker, woken by an append to
// any partition it leads.
type idleWaiters struct {
	n  atomic.Int32 // len(mu.chs), read without the lock by notify
	mu struct {
		sync.Mutex
		chs map[chan struct{}]struct{}
	}
}

func newIdleWaiters(brokers int) []*idleWaiters {
	out := make([]*idleWaiters, brokers)
	for i := range out {
		out[i] = &idleWaiters{}
		out[i].mu.chs = make(map[chan struct{}]struct{})
	}
	return out
}

func (w *idleWaiters) watch(ch chan struct{}) {
	w.mu.Lock()
	w.mu.chs[ch] = struct{}{}
	w.n.Store(int32(len(w.mu.chs)))
	w.mu.Unlock()
}

func (w *idleWaiters) unwatch(ch chan struct{}) {
	w.mu.Lock()
	delete(w.mu.chs, ch)
	w.n.Store(int32(len(w.mu.chs)))
	w.mu.Unlock()
}

// notify wakes every quiet long poll; an append with none waiting costs
// one atomic load.
func (w *idleWaiters) notify() {
	if w == nil || w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for ch := range w.mu.chs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
}

// quiet reports whether serving fc now would answer no partition (see the
// file header). A session changed by another request is not quiet: the
// full path then answers the epoch error.
func (s *fetchSessions) quiet(fc *fetchCtx, broker int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fc.sess.epoch != fc.epoch {
		return false
	}
	for sp := fc.sess.head; sp != nil; sp = sp.next {
		p := sp.part
		if p == nil || sp.mustSend || sp.missing || p.gone.Load() || p.leader != broker {
			return false
		}
		hw := p.log.HighWatermark()
		if hw != sp.hw || sp.fetchOffset != hw || p.log.LogStartOffset() != sp.logStart {
			return false
		}
	}
	return true
}

// waitQuiet waits, for a quiet session, until an append to one of the
// broker's partitions, the deadline, or the end of the connection or the
// cluster. It returns at once if the session stopped being quiet after
// the watch was registered (an append between the check and the watch).
func (cc *conn) waitQuiet(fc *fetchCtx, deadline time.Time, timer **time.Timer) {
	w := cc.b.c.idle[cc.b.id]
	w.watch(cc.wake)
	defer w.unwatch(cc.wake)
	select {
	case <-cc.wake: // a stale wake-up from an earlier poll
	default:
	}
	if !cc.b.sessions.quiet(fc, cc.b.id) {
		return
	}
	if *timer == nil {
		*timer = time.NewTimer(time.Until(deadline))
	} else {
		(*timer).Reset(time.Until(deadline))
	}
	select {
	case <-cc.wake:
	case <-(*timer).C:
	case <-cc.ctx.Done():
	case <-cc.b.c.ctx.Done():
	}
}
