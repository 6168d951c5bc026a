package checkpoint

import (
	"bytes"
	"errors"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

type add struct{ src, dst, n int64 }

func build(begin *Position, adds ...add) *OffsetMap {
	m := &OffsetMap{}
	if begin != nil {
		m.Begin(*begin)
	}
	for _, a := range adds {
		m.Add(a.src, a.dst, a.n)
	}
	return m
}

func TestOffsetMapTranslateTable(t *testing.T) {
	type q struct {
		src  int64
		want int64
		ok   bool
	}
	tests := []struct {
		name   string
		begin  *Position
		adds   []add
		pos    Position
		points int
		qs     []q
	}{
		{
			name: "empty map, offsets at or past pos",
			pos:  Position{10, 20},
			qs:   []q{{10, 20, true}, {15, 20, true}, {9, 0, false}, {0, 0, false}},
		},
		{
			name:   "one contiguous run",
			adds:   []add{{0, 0, 5}, {5, 5, 5}},
			pos:    Position{10, 10},
			points: 1,
			qs:     []q{{0, 0, true}, {3, 3, true}, {9, 9, true}, {10, 10, true}, {99, 10, true}},
		},
		{
			name:   "started at latest: constant offset delta",
			begin:  &Position{1000, 0},
			adds:   []add{{1000, 0, 3}, {1003, 3, 1}},
			pos:    Position{1004, 4},
			points: 1,
			qs:     []q{{999, 0, false}, {1000, 0, true}, {1002, 2, true}, {1004, 4, true}},
		},
		{
			// Source 0..4, 8..9 (5..7 compacted away) packed contiguously.
			name:   "compaction gap in record mode",
			adds:   []add{{0, 0, 5}, {8, 5, 2}},
			pos:    Position{10, 7},
			points: 2,
			qs: []q{{4, 4, true}, {5, 5, true}, {6, 5, true}, {7, 5, true},
				{8, 5, true}, {9, 6, true}, {10, 7, true}},
		},
		{
			// A committed transaction: data 0..2, commit marker at 3.
			name:   "control record",
			adds:   []add{{0, 0, 3}, {4, 3, 2}},
			pos:    Position{6, 5},
			points: 2,
			qs:     []q{{2, 2, true}, {3, 3, true}, {4, 3, true}, {5, 4, true}},
		},
		{
			// Aborted data 0..4 and its marker at 5 before anything copied.
			name:   "aborted data before the first record",
			begin:  &Position{0, 0},
			adds:   []add{{6, 0, 4}},
			pos:    Position{10, 4},
			points: 1,
			qs:     []q{{0, 0, true}, {5, 0, true}, {6, 0, true}, {9, 3, true}, {10, 4, true}},
		},
		{
			// Batch mode keeps offset deltas inside a compacted batch, so
			// the delta does not change and no breakpoint is stored.
			name:   "batch mode gap inside batch",
			adds:   []add{{0, 0, 10}, {10, 10, 10}},
			pos:    Position{20, 20},
			points: 1,
			qs:     []q{{5, 5, true}, {19, 19, true}},
		},
		{
			name:   "trailing skipped records",
			adds:   []add{{0, 0, 5}},
			pos:    Position{8, 5},
			points: 1,
			qs:     []q{{4, 4, true}, {5, 5, true}, {7, 5, true}, {8, 5, true}},
		},
		{
			name:   "only gap since begin",
			begin:  &Position{3, 7},
			pos:    Position{9, 7},
			points: 0,
			qs:     []q{{2, 0, false}, {3, 7, true}, {8, 7, true}},
		},
		{
			name:   "same delta after a gap merges",
			adds:   []add{{0, 0, 2}, {5, 5, 2}},
			pos:    Position{7, 7},
			points: 1,
			qs:     []q{{3, 3, true}, {6, 6, true}},
		},
		{
			name:   "n <= 0 and negative offsets ignored",
			adds:   []add{{0, 0, 0}, {-1, 3, 4}, {2, -3, 1}, {0, 0, 3}},
			pos:    Position{3, 3},
			points: 1,
			qs:     []q{{0, 0, true}, {2, 2, true}},
		},
		{
			// A restart from an older checkpoint re-adds from offset 4.
			name:   "rewind replaces the tail",
			adds:   []add{{0, 0, 4}, {6, 4, 4}, {4, 4, 1}, {5, 5, 1}},
			pos:    Position{6, 6},
			points: 1,
			qs:     []q{{3, 3, true}, {4, 4, true}, {5, 5, true}, {6, 6, true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := build(tt.begin, tt.adds...)
			if m.Len() != tt.points {
				t.Errorf("Len = %d, want %d (%v)", m.Len(), tt.points, m)
			}
			for _, q := range tt.qs {
				got, ok := m.Translate(q.src, tt.pos)
				if ok != q.ok || (ok && got != q.want) {
					t.Errorf("Translate(%d) = %d, %v; want %d, %v (%v)", q.src, got, ok, q.want, q.ok, m)
				}
			}
			// Round trip keeps every answer.
			b, _ := m.MarshalBinary()
			var m2 OffsetMap
			if err := m2.UnmarshalBinary(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, q := range tt.qs {
				a, aok := m.Translate(q.src, tt.pos)
				b, bok := m2.Translate(q.src, tt.pos)
				if a != b || aok != bok {
					t.Errorf("after round trip Translate(%d) = %d,%v; before %d,%v", q.src, b, bok, a, aok)
				}
			}
		})
	}
}

// simulated is a source partition with gaps and its copy on the
// destination, built the way the mirror builds it.
type simulated struct {
	srcOffs []int64         // offsets of the source records that are copied
	dstOf   map[int64]int64 // source offset -> destination offset
	dstOffs []int64         // destination offsets, increasing
	pos     Position
	m       *OffsetMap
}

// simulate builds a random source log (gaps from compaction, control
// records and aborted transactions) and copies it in record mode
// (contiguous) or batch mode (offset deltas kept inside batches).
func simulate(rng *rand.Rand, batchMode bool, n int) *simulated {
	return simulateWith(rng, batchMode, false, n)
}

// simulateWith is simulate; with destJumps the destination also takes
// writes of its own between copied batches (an active-active pair with
// identical names), so destination offsets jump where the source's do not.
func simulateWith(rng *rand.Rand, batchMode, destJumps bool, n int) *simulated {
	s := &simulated{dstOf: map[int64]int64{}, m: &OffsetMap{}}
	start := int64(rng.Intn(50))
	dstStart := int64(rng.Intn(50))
	s.m.Begin(Position{start, dstStart})
	src, dst := start, dstStart
	for len(s.srcOffs) < n {
		switch rng.Intn(6) {
		case 0: // a gap: compacted, control records, aborted data
			src += int64(1 + rng.Intn(5))
			continue
		case 1: // local writes on the destination
			if destJumps {
				dst += int64(1 + rng.Intn(5))
				continue
			}
		}
		// One batch of up to 5 offsets, some compacted away inside it.
		size := int64(1 + rng.Intn(5))
		var kept []int64
		for i := range size {
			if i == size-1 || rng.Intn(4) != 0 {
				kept = append(kept, i)
			}
		}
		if batchMode {
			s.m.Add(src, dst, size)
			for _, i := range kept {
				s.srcOffs = append(s.srcOffs, src+i)
				s.dstOf[src+i] = dst + i
				s.dstOffs = append(s.dstOffs, dst+i)
			}
			dst += size
		} else {
			for _, i := range kept {
				s.m.Add(src+i, dst, 1)
				s.srcOffs = append(s.srcOffs, src+i)
				s.dstOf[src+i] = dst
				s.dstOffs = append(s.dstOffs, dst)
				dst++
			}
		}
		src += size
	}
	if destJumps {
		dst += int64(rng.Intn(3))
	}
	s.pos = Position{src + int64(rng.Intn(3)), dst}
	return s
}

// check verifies translation by its meaning: a consumer that committed c
// on the source next reads the first source record >= c; after failing over
// to the translated offset it must next read that record's copy.
func (s *simulated) check(t *testing.T, m *OffsetMap, from int64) {
	t.Helper()
	for c := from; c <= s.pos.Source+2; c++ {
		got, ok := m.Translate(c, s.pos)
		if !ok {
			t.Fatalf("Translate(%d) not ok (%v)", c, m)
		}
		i := sort.Search(len(s.srcOffs), func(i int) bool { return s.srcOffs[i] >= c })
		j := sort.Search(len(s.dstOffs), func(j int) bool { return s.dstOffs[j] >= got })
		switch {
		case i == len(s.srcOffs) && j != len(s.dstOffs):
			t.Fatalf("Translate(%d) = %d: source has nothing left but destination would replay offset %d", c, got, s.dstOffs[j])
		case i < len(s.srcOffs) && (j == len(s.dstOffs) || s.dstOffs[j] != s.dstOf[s.srcOffs[i]]):
			t.Fatalf("Translate(%d) = %d: want the copy of source %d at %d (%v)", c, got, s.srcOffs[i], s.dstOf[s.srcOffs[i]], m)
		}
		if i < len(s.srcOffs) && got > s.dstOf[s.srcOffs[i]] {
			t.Fatalf("Translate(%d) = %d skips past %d", c, got, s.dstOf[s.srcOffs[i]])
		}
	}
}

func TestOffsetMapTranslateAgainstSimulation(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		batch := seed%2 == 1
		s := simulate(rng, batch, 1+rng.Intn(300))
		start, _ := s.m.Start()
		s.check(t, s.m, start)
		if !batch {
			// Record mode packs contiguously: the answer is also the exact
			// destination offset of the next record.
			for c := start; c < s.pos.Source; c++ {
				got, _ := s.m.Translate(c, s.pos)
				i := sort.Search(len(s.srcOffs), func(i int) bool { return s.srcOffs[i] >= c })
				want := s.pos.Dest
				if i < len(s.srcOffs) {
					want = s.dstOf[s.srcOffs[i]]
				}
				if got != want {
					t.Fatalf("seed %d: Translate(%d) = %d, want %d", seed, c, got, want)
				}
			}
		}
		// Encoding round trip answers the same.
		b, _ := s.m.MarshalBinary()
		var m2 OffsetMap
		if err := m2.UnmarshalBinary(b); err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		s.check(t, &m2, start)
		// Trimming below a log start keeps every answer at or above it.
		logStart := start + int64(rng.Intn(int(s.pos.Source-start)+1))
		tm := s.m.Clone()
		tm.TrimBelow(logStart)
		if got, ok := tm.Translate(logStart-1, s.pos); ok && logStart > start {
			t.Fatalf("seed %d: trimmed map still translates %d to %d", seed, logStart-1, got)
		}
		s.check(t, tm, logStart)
		if tm.Len() > s.m.Len() {
			t.Fatalf("seed %d: trim grew the map", seed)
		}
		b, _ = tm.MarshalBinary()
		if err := m2.UnmarshalBinary(b); err != nil {
			t.Fatalf("seed %d: decode trimmed: %v (%v)", seed, err, tm)
		}
	}
}

func TestOffsetMapCap(t *testing.T) {
	old := MaxBreakpoints
	MaxBreakpoints = 4
	defer func() { MaxBreakpoints = old }()
	m := &OffsetMap{}
	// Every record followed by a one-offset gap: a breakpoint each.
	for i := int64(0); i < 10; i++ {
		m.Add(2*i, i, 1)
	}
	if m.Len() != 4 {
		t.Fatalf("Len = %d, want 4", m.Len())
	}
	pos := Position{20, 10}
	if _, ok := m.Translate(11, pos); ok {
		t.Errorf("offset below the kept breakpoints still translates")
	}
	for i := int64(6); i < 10; i++ {
		if got, ok := m.Translate(2*i, pos); !ok || got != i {
			t.Errorf("Translate(%d) = %d,%v want %d", 2*i, got, ok, i)
		}
	}
}

func TestOffsetMapEncodingIsCompact(t *testing.T) {
	m := &OffsetMap{}
	m.Add(0, 0, 1_000_000)
	b, _ := m.MarshalBinary()
	if len(b) > 16 {
		t.Errorf("a million records in one run encode in %d bytes", len(b))
	}
}

func TestOffsetMapDecodeRejects(t *testing.T) {
	good := build(nil, add{0, 0, 5}, add{8, 5, 2})
	enc, _ := good.MarshalBinary()
	cases := map[string][]byte{
		"empty":         {},
		"version":       {9, 0},
		"flags":         {1, 7},
		"truncated":     enc[:len(enc)-1],
		"trailing":      append(append([]byte(nil), enc...), 0),
		"huge count":    {1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"negative base": {1, 1, 1, 0, 0, 0},
	}
	for name, b := range cases {
		var m OffsetMap
		if err := m.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzOffsetMapDecode(f *testing.F) {
	for _, m := range []*OffsetMap{
		{},
		build(nil, add{0, 0, 5}, add{8, 5, 2}),
		build(&Position{3, 1}, add{5, 1, 3}, add{10, 4, 1}, add{12, 5, 9}),
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m OffsetMap
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// A decoded map behaves: it re-encodes to the same bytes (or,
		// when the input spelled a varint with more bytes than needed,
		// to shorter ones), the re-encoding decodes to the same map,
		// and it translates without panicking.
		again, _ := m.MarshalBinary()
		if !bytes.Equal(again, b) && len(again) >= len(b) {
			t.Fatalf("re-encoding differs: %x, input %x", again, b)
		}
		var m2 OffsetMap
		if err := m2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded map does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoded map decodes to %v, first %v", &m2, &m)
		}
		end := m.End()
		for _, c := range []int64{0, end.Source - 1, end.Source, end.Source + 1} {
			m.Translate(c, end)
		}
	})
}

// BenchmarkOffsetMap adds a million records with a gap every 1,000 (a
// compacted or transactional source), then translates every offset. It
// reports the encoded size against a per-record table of (src, dst) pairs
// built in the same run, the baseline a naive map would need.
func BenchmarkOffsetMap(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		m := &OffsetMap{}
		naive := make(map[int64]int64, n)
		src, dst := int64(0), int64(0)
		for i := 0; i < n; i++ {
			if i%1000 == 999 {
				src += 3 // a gap of three offsets
			}
			m.Add(src, dst, 1)
			naive[src] = dst
			src, dst = src+1, dst+1
		}
		pos := Position{Source: src, Dest: dst}
		for s, d := range naive {
			if got, ok := m.Translate(s, pos); !ok || got != d {
				b.Fatalf("Translate(%d) = %d, want %d", s, got, d)
			}
		}
		enc, _ := m.MarshalBinary()
		b.ReportMetric(float64(len(enc)), "map-bytes")
		b.ReportMetric(float64(16*len(naive))/float64(len(enc)), "x-smaller-than-per-record")
	}
}
