package mirror

import (
	"log/slog"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"time"
)

// Idle memory return.
//
// An idle mirror allocates so little (about 6 MB per 10 s refresh at
// 10,000 partitions) that the collector, paced to run when the heap
// reaches twice the last live heap, may not run for minutes: the runtime
// forces a collection only every two minutes. Whatever the last burst
// left behind stays resident until then: the start round, and above all
// a /metrics scrape, which at 10,000 partitions builds over 120 MB of
// series and leaves its collection's live heap (and so the next goal)
// inflated. The scale test saw 22.8–27.9 KiB of RSS per partition after
// 30 idle seconds for a live heap of a fifth of that.
//
// So once per idleMemoryInterval, from the pipelines' checkpoint tick
// (no goroutine of its own), the mirror samples the runtime's counters;
// if no collection ran since the previous sample, a whole interval
// earlier, and the heap holds at least max(idleMemoryFloor, live/2) more
// than its live bytes, it calls debug.FreeOSMemory once: one blocking collection
// that returns every free page. A collection in the interval means the
// mirror is busy (or the runtime is already collecting on its own): it
// does nothing then.
//
// Cost, measured by the scale test (10,000 partitions, 2 shared vCPUs,
// gctrace, two runs): the forced collection took heaps of 115 and 194 MB
// down to 29 MB live in 12–15 ms of wall time and 22–37 ms of CPU;
// with the scavenge, debug.FreeOSMemory took 41 and 48 ms, and the RSS
// above the empty baseline fell from 22.8–27.9 to 4.6 KiB per partition.
// It runs at most once per interval, in practice once after each burst:
// the return brings the retained bytes under the floor, and another
// needs 64 MiB of new garbage that no collection has freed.
const (
	// idleMemoryInterval is both the sampling period and the idle time
	// required: no collection for one whole interval. 15 s leaves room
	// for a return within the scale test's 30 s idle window after the
	// scrape that ends its copy (first sample at most 15 s after that
	// scrape's collection, the deciding one 15 s later).
	idleMemoryInterval = 15 * time.Second
	// idleMemoryFloor is the least retained heap worth a collection.
	idleMemoryFloor = 64 << 20
)

// memSample is what the decision reads from runtime/metrics.
type memSample struct {
	at       time.Time
	gcCycles uint64 // /gc/cycles/total:gc-cycles
	live     uint64 // /gc/heap/live:bytes, as marked by the last collection
	// held is the heap the process keeps in memory: objects (live and
	// garbage not yet collected), unused parts of spans, and free pages
	// not yet returned to the OS.
	held uint64
}

// retained is what the heap holds beyond its live bytes.
func (s memSample) retained() uint64 {
	if s.held <= s.live {
		return 0
	}
	return s.held - s.live
}

// shouldReturnMemory decides from two consecutive samples whether to
// collect and return free memory to the OS: the samples are an interval
// apart, no collection ran between them, and the heap retains at least
// max(idleMemoryFloor, live/2) beyond its live bytes.
//
// Half the live heap, not all of it: the live figure is the last
// collection's, and at 10,000 partitions that collection ran during a
// scrape holding 120+ MB of series, so it overstates the idle live heap
// about threefold. The bound keeps the cost proportionate: a collection
// marks the live heap, so it must free at least half as much.
func shouldReturnMemory(prev, cur memSample, interval time.Duration) bool {
	if prev.at.IsZero() || cur.at.Sub(prev.at) < interval {
		return false
	}
	if cur.gcCycles != prev.gcCycles {
		return false // a collection ran: busy, or already collected
	}
	return cur.retained() >= max(idleMemoryFloor, cur.live/2)
}

var idleMemory struct {
	sync.Mutex
	prev    memSample
	samples []rtmetrics.Sample
}

// readMemSampleLocked reads the runtime's counters; idleMemory's lock
// must be held (the samples slice is reused).
func readMemSampleLocked(now time.Time) memSample {
	if idleMemory.samples == nil {
		for _, name := range []string{
			"/gc/cycles/total:gc-cycles",
			"/gc/heap/live:bytes",
			"/memory/classes/heap/objects:bytes",
			"/memory/classes/heap/unused:bytes",
			"/memory/classes/heap/free:bytes",
		} {
			idleMemory.samples = append(idleMemory.samples, rtmetrics.Sample{Name: name})
		}
	}
	rtmetrics.Read(idleMemory.samples)
	u := func(i int) uint64 {
		if v := idleMemory.samples[i].Value; v.Kind() == rtmetrics.KindUint64 {
			return v.Uint64()
		}
		return 0
	}
	return memSample{at: now, gcCycles: u(0), live: u(1), held: u(2) + u(3) + u(4)}
}

// returnIdleMemory samples at most once per idleMemoryInterval (any
// pipeline's tick may call it) and returns memory when the samples say
// so. It is process-wide: one heap, however many pipelines.
func returnIdleMemory(now time.Time, log *slog.Logger) {
	idleMemory.Lock()
	if !idleMemory.prev.at.IsZero() && now.Sub(idleMemory.prev.at) < idleMemoryInterval {
		idleMemory.Unlock()
		return
	}
	cur := readMemSampleLocked(now)
	ok := shouldReturnMemory(idleMemory.prev, cur, idleMemoryInterval)
	idleMemory.prev = cur
	idleMemory.Unlock()
	if !ok {
		return
	}
	began := time.Now()
	debug.FreeOSMemory()
	took := time.Since(began)
	idleMemory.Lock()
	after := readMemSampleLocked(now)
	// The return's own collection is not a sign of work: the next
	// decision compares with the count after it.
	idleMemory.prev.gcCycles = after.gcCycles
	idleMemory.Unlock()
	log.Info("returned idle memory to the OS", "retained_bytes", cur.retained(), "live_bytes_before", cur.live,
		"live_bytes_after", after.live, "held_bytes_after", after.held, "took", took)
}
