package audit

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
)

// RingSpans is how many settled spans a ledger's completeness looks back
// over: a difference keeps completeness below 1 until that many clean
// spans followed it.
const RingSpans = 10

// Span is a stretch [From, To) of one partition's source offsets that the
// continuous audit checks as a whole: what the mirror read, summed per
// event-time bucket, against the same sums over the destination range its
// copies occupy.
type Span struct {
	From, To int64
	// Source sums what the mirror read, per event-time bucket (Unix
	// milliseconds of the bucket start).
	Source map[int64]*Digest
	// DestFrom/DestTo: the destination range read back for it.
	DestFrom, DestTo int64
	Dest             map[int64]*Digest
}

// Records is how many source records the span holds.
func (s *Span) Records() int64 {
	var n int64
	for _, d := range s.Source {
		n += d.Records
	}
	return n
}

// FoldDest sums one destination record read back.
func (s *Span) FoldDest(ts time.Time, w time.Duration, hash uint64, size int64) {
	k := Bucket(ts, w).UnixMilli()
	d := s.Dest[k]
	if d == nil {
		d = &Digest{}
		s.Dest[k] = d
	}
	d.Add(hash, size)
}

// Match compares the span's buckets: equal buckets confirm their records;
// a bucket with fewer copies than records counts the difference missing,
// one with more extra, one with as many but other content altered (at
// least one record). ok reports that every bucket matched.
func (s *Span) Match() (c Counts, ok bool) {
	keys := map[int64]bool{}
	for k := range s.Source {
		keys[k] = true
	}
	for k := range s.Dest {
		keys[k] = true
	}
	ok = true
	for k := range keys {
		var a, b Digest
		if d := s.Source[k]; d != nil {
			a = *d
		}
		if d := s.Dest[k]; d != nil {
			b = *d
		}
		c.Compared += a.Records
		switch {
		case a == b:
			c.Confirmed += a.Records
		case a.Records > b.Records:
			ok = false
			c.Missing += a.Records - b.Records
			c.Confirmed += b.Records
		case a.Records < b.Records:
			ok = false
			c.Extra += b.Records - a.Records
			c.Confirmed += a.Records
		default:
			ok = false
			c.Altered++
			c.Confirmed += a.Records - 1
		}
	}
	return c, ok
}

// Ledger is one partition's continuous audit, pure: the engine feeds it the
// records the mirror read (Observe), cuts spans on a clock (Cut), and
// settles each span once it has read the destination back (Settle). Which
// spans are audited is decided by a hash of the partition and the span's
// number, so a sample of them is checked fully while the others cost
// nothing; Sample 1 checks every span.
//
// Not safe for concurrent use; the engine serialises calls.
type Ledger struct {
	bucket time.Duration
	sample float64
	seed   uint64

	// Invariant: records below next were folded (or passed over); a record
	// the mirror reads again after a retry is not counted twice.
	next    int64
	started bool
	idx     uint64
	open    *Span // nil while the current span is not audited
	pending []*Span

	ring   []Counts
	totals Counts
	// confirmedTo is the end of the last span that matched.
	confirmedFrom, confirmedTo int64
	settled                    int64
	lastDiffs                  []Diff
	dstCursor                  int64 // destination offset after the last span read back
	dstCursorAt                int64 // the source offset it corresponds to (-1: none)
}

// NewLedger starts a partition's ledger; key names the partition (it seeds
// the sampling so partitions are audited at different times).
func NewLedger(key string, bucket time.Duration, sample float64) *Ledger {
	if bucket <= 0 {
		bucket = time.Minute
	}
	return &Ledger{bucket: bucket, sample: sample, seed: xxhash.Sum64String(key), dstCursorAt: -1}
}

// sampled decides whether span i is audited.
func (l *Ledger) sampled(i uint64) bool {
	if l.sample >= 1 {
		return true
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], l.seed)
	binary.BigEndian.PutUint64(b[8:], i)
	return float64(xxhash.Sum64(b[:])>>11)/float64(1<<53) < l.sample
}

// Wants reports whether the record at offset should be hashed and
// observed: it is new, and the current span is audited.
func (l *Ledger) Wants(offset int64) bool {
	if !l.started {
		return true
	}
	return offset >= l.next && l.open != nil
}

// Observe folds a record the mirror read. Records at or below what was
// already observed are ignored.
func (l *Ledger) Observe(offset int64, ts time.Time, hash uint64, size int64) {
	if !l.started {
		l.started = true
		l.next = offset
		l.startSpan()
	}
	if offset < l.next {
		return
	}
	l.next = offset + 1
	if l.open == nil {
		return
	}
	k := Bucket(ts, l.bucket).UnixMilli()
	d := l.open.Source[k]
	if d == nil {
		d = &Digest{}
		l.open.Source[k] = d
	}
	d.Add(hash, size)
}

// Pass moves the observed position past offsets with nothing to audit
// (control records, records left out on purpose).
func (l *Ledger) Pass(end int64) {
	if l.started && end > l.next {
		l.next = end
	}
}

func (l *Ledger) startSpan() {
	l.idx++
	if l.sampled(l.idx) {
		l.open = &Span{From: l.next, Source: map[int64]*Digest{}, Dest: map[int64]*Digest{}}
	} else {
		l.open = nil
	}
}

// Cut closes the current span at what has been observed so far and starts
// the next one. A span with records waits for Settle.
func (l *Ledger) Cut() {
	if !l.started {
		return
	}
	if l.open != nil {
		l.open.To = l.next
		if l.open.To > l.open.From {
			l.pending = append(l.pending, l.open)
		}
	}
	if l.open == nil || l.open.To > l.open.From {
		l.startSpan()
	}
}

// Ready returns the closed spans whose records the destination has all
// acknowledged (acked is the task's acknowledged source position).
func (l *Ledger) Ready(acked int64) []*Span {
	var out []*Span
	for _, s := range l.pending {
		if s.To <= acked {
			out = append(out, s)
		}
	}
	return out
}

// DestFrom is where the read-back of span s starts: right after the
// previous span read back when it ended where s begins (so a stranger's
// record between the two is read too), else at translated.
func (l *Ledger) DestFrom(s *Span, translated int64) int64 {
	if l.dstCursorAt == s.From {
		return min(l.dstCursor, translated)
	}
	return translated
}

// Settle records span s's outcome: c are its counts (Match's, or an exact
// comparison's), diffs the differences found. The span leaves the pending
// list.
func (l *Ledger) Settle(s *Span, c Counts, diffs []Diff) {
	for i, p := range l.pending {
		if p == s {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			break
		}
	}
	l.totals.Add(c)
	l.settled++
	l.ring = append(l.ring, c)
	if len(l.ring) > RingSpans {
		l.ring = l.ring[1:]
	}
	if c.Differences() == 0 {
		if l.confirmedTo != s.From || l.confirmedTo == 0 && l.confirmedFrom == 0 {
			l.confirmedFrom = s.From
		}
		l.confirmedTo = s.To
	} else {
		l.lastDiffs = diffs
	}
	l.dstCursor, l.dstCursorAt = s.DestTo, s.To
}

// Drop forgets span s unsettled (its destination range could not be
// placed, e.g. the partition was rewound).
func (l *Ledger) Drop(s *Span) {
	for i, p := range l.pending {
		if p == s {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			return
		}
	}
}

// LedgerStatus is a ledger's outcome so far.
type LedgerStatus struct {
	// Completeness is confirmed / compared over the last RingSpans settled
	// spans (1 before any).
	Completeness float64 `json:"completeness"`
	// Recent are the counts completeness is computed from.
	Recent Counts `json:"recent"`
	// Totals are cumulative since the ledger started.
	Totals Counts `json:"totals"`
	// ConfirmedFrom/ConfirmedTo: the latest run of consecutive matching
	// spans, as source offsets.
	ConfirmedFrom int64  `json:"confirmed_from"`
	ConfirmedTo   int64  `json:"confirmed_to"`
	Spans         int64  `json:"spans_settled"`
	PendingSpans  int    `json:"spans_pending"`
	LastDiffs     []Diff `json:"last_diffs,omitempty"`
}

// Status summarises the ledger.
func (l *Ledger) Status() LedgerStatus {
	var r Counts
	for _, c := range l.ring {
		r.Add(c)
	}
	return LedgerStatus{Completeness: Completeness(r), Recent: r, Totals: l.totals,
		ConfirmedFrom: l.confirmedFrom, ConfirmedTo: l.confirmedTo, Spans: l.settled,
		PendingSpans: len(l.pending), LastDiffs: l.lastDiffs}
}
