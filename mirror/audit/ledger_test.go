package audit

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// feed observes offsets [from, to) with content hash = offset and a
// timestamp one second apart.
func feed(l *Ledger, from, to int64) {
	for o := from; o < to; o++ {
		if l.Wants(o) {
			l.Observe(o, t0.Add(time.Duration(o)*time.Second), uint64(o), 1)
		}
	}
}

// readBack folds destination records holding source offsets srcs.
func readBack(s *Span, srcs []int64, w time.Duration) {
	for _, o := range srcs {
		s.FoldDest(t0.Add(time.Duration(o)*time.Second), w, uint64(o), 1)
	}
}

func TestLedgerSettles(t *testing.T) {
	l := NewLedger("p/t/0", time.Minute, 1)
	feed(l, 0, 100)
	feed(l, 50, 100) // read again after a retry: not counted twice
	l.Cut()
	if got := l.Ready(99); len(got) != 0 {
		t.Fatalf("span ready before its last record was acknowledged: %v", got)
	}
	spans := l.Ready(100)
	if len(spans) != 1 || spans[0].From != 0 || spans[0].To != 100 || spans[0].Records() != 100 {
		t.Fatalf("spans %+v", spans)
	}
	s := spans[0]
	readBack(s, span(0, 100), time.Minute)
	c, ok := s.Match()
	if !ok || c.Confirmed != 100 || c.Compared != 100 {
		t.Fatalf("clean span: %+v %v", c, ok)
	}
	s.DestTo = 100
	l.Settle(s, c, nil)
	st := l.Status()
	if st.Completeness != 1 || st.ConfirmedFrom != 0 || st.ConfirmedTo != 100 || st.PendingSpans != 0 {
		t.Fatalf("status %+v", st)
	}

	// Next span: one record lost, one stranger, one altered, each in its
	// own minute bucket.
	feed(l, 100, 300)
	l.Cut()
	s = l.Ready(300)[0]
	if got := l.DestFrom(s, 120); got != 100 {
		t.Fatalf("read-back of a span following a settled one starts at %d, want 100", got)
	}
	var dst []int64
	for o := int64(100); o < 300; o++ {
		if o != 130 {
			dst = append(dst, o)
		}
	}
	readBack(s, dst, time.Minute)
	s.FoldDest(t0.Add(200*time.Second), time.Minute, 999999, 1) // stranger
	s.Dest[t0.Add(250*time.Second).Truncate(time.Minute).UnixMilli()].Sum++
	c, ok = s.Match()
	if ok || c.Missing != 1 || c.Extra != 1 || c.Altered != 1 {
		t.Fatalf("span with differences: %+v %v", c, ok)
	}
	l.Settle(s, c, []Diff{{Missing, 130, 130}})
	st = l.Status()
	if st.Completeness >= 1 || st.Totals.Missing != 1 || len(st.LastDiffs) != 1 || st.ConfirmedTo != 100 {
		t.Fatalf("status after differences %+v", st)
	}
	// RingSpans clean spans later, completeness is back to 1.
	for i := 0; i < RingSpans; i++ {
		from := int64(300 + 10*i)
		feed(l, from, from+10)
		l.Cut()
		s := l.Ready(from + 10)[0]
		readBack(s, span(from, from+10), time.Minute)
		c, _ := s.Match()
		l.Settle(s, c, nil)
	}
	if st := l.Status(); st.Completeness != 1 || st.Totals.Missing != 1 {
		t.Fatalf("after clean spans: %+v", st)
	}
}

func TestLedgerSamples(t *testing.T) {
	l := NewLedger("p/t/1", time.Minute, 0.2)
	audited, records := 0, int64(0)
	for i := int64(0); i < 1000; i++ {
		feed(l, i*10, i*10+10)
		l.Cut()
		for _, s := range l.Ready(i*10 + 10) {
			audited++
			records += s.Records()
			c, _ := s.Match()
			l.Settle(s, c, nil)
		}
	}
	// About a fifth of the spans, each whole.
	if audited < 120 || audited > 280 || records != int64(audited)*10 {
		t.Fatalf("%d spans audited (%d records) of 1000 at sample 0.2", audited, records)
	}
}
