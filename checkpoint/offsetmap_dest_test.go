package checkpoint

import (
	"math/rand"
	"sort"
	"testing"
)

// Destination-side jumps: in an active-active pair with identical topic
// names the destination partition also takes local writes, so copies land
// after holes the source does not have. Translation must still resume a
// consumer exactly at the copy of the next record it had not read, never
// at a local record before it (which the source group never saw) and never
// past it.
func TestOffsetMapTranslateDestinationJumps(t *testing.T) {
	for seed := int64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewSource(seed))
		batch := seed%2 == 1
		s := simulateWith(rng, batch, true, 1+rng.Intn(200))
		start, _ := s.m.Start()
		s.check(t, s.m, start)
		s.checkExact(t, seed, s.m, start, batch)
		b, _ := s.m.MarshalBinary()
		var m2 OffsetMap
		if err := m2.UnmarshalBinary(b); err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		s.checkExact(t, seed, &m2, start, batch)
		logStart := start + int64(rng.Intn(int(s.pos.Source-start)+1))
		tm := s.m.Clone()
		tm.TrimBelow(logStart)
		s.check(t, tm, logStart)
		s.checkExact(t, seed, tm, logStart, batch)
	}
}

// checkExact checks the answer where the map can know it exactly: for a
// source offset that was copied it is that copy's destination offset; before
// the first copy, the first copy's; after the last copy, the position's
// destination. Between two copies (a gap on the source, or records
// compacted away inside a batch) the map keeps no run ends, so the answer
// may land on the destination's own records after the previous copy, but
// never at or before that copy and never past the next one.
func (s *simulated) checkExact(t *testing.T, seed int64, m *OffsetMap, from int64, batch bool) {
	t.Helper()
	for c := from; c < s.pos.Source; c++ {
		got, ok := m.Translate(c, s.pos)
		if !ok {
			t.Fatalf("seed %d: Translate(%d) not ok (%v)", seed, c, m)
		}
		i := sort.Search(len(s.srcOffs), func(i int) bool { return s.srcOffs[i] >= c })
		want := s.pos.Dest
		if i < len(s.srcOffs) {
			want = s.dstOf[s.srcOffs[i]]
		}
		// In batch mode the offsets before the first copy may lie
		// inside the first batch, like any other compacted record.
		exact := i == len(s.srcOffs) || s.srcOffs[i] == c || (i == 0 && !batch)
		prev := int64(-1)
		if i > 0 {
			prev = s.dstOf[s.srcOffs[i-1]]
		}
		switch {
		case exact && got != want:
			t.Fatalf("seed %d: Translate(%d) = %d, want %d (%v)", seed, c, got, want, m)
		case !exact && (got > want || got <= prev):
			t.Fatalf("seed %d: Translate(%d) = %d, want in (%d, %d] (%v)", seed, c, got, prev, want, m)
		}
	}
}
