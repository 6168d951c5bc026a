package audit

import (
	"reflect"
	"testing"

	"strait/checkpoint"
)

// recs builds records at the given offsets whose content is the offset,
// except where alter gives another content.
func recs(offsets []int64, alter map[int64]uint64) []Rec {
	out := make([]Rec, 0, len(offsets))
	for _, o := range offsets {
		h := uint64(o) + 1000
		if v, ok := alter[o]; ok {
			h = v
		}
		out = append(out, Rec{Offset: o, Hash: h, Size: 1})
	}
	return out
}

// shifted gives destination records holding the content of the source
// offsets srcs, at destination offsets starting at base.
func shifted(base int64, srcs []int64) []Rec {
	out := make([]Rec, 0, len(srcs))
	for i, s := range srcs {
		out = append(out, Rec{Offset: base + int64(i), Hash: uint64(s) + 1000, Size: 1})
	}
	return out
}

func iter(rs []Rec) Next {
	i := 0
	return func() (Rec, bool, error) {
		if i >= len(rs) {
			return Rec{}, false, nil
		}
		i++
		return rs[i-1], true, nil
	}
}

func span(a, b int64) []int64 {
	var out []int64
	for o := a; o < b; o++ {
		out = append(out, o)
	}
	return out
}

func omap(adds ...[3]int64) *checkpoint.OffsetMap {
	m := &checkpoint.OffsetMap{}
	for _, a := range adds {
		m.Add(a[0], a[1], a[2])
	}
	return m
}

func TestCompare(t *testing.T) {
	ten := omap([3]int64{0, 0, 10})
	pos10 := checkpoint.Position{Source: 10, Dest: 10}
	// Source 0..2 and 5..6 copied (3, 4 compacted away before mirroring).
	gappy := omap([3]int64{0, 0, 3}, [3]int64{5, 3, 2})
	// A stranger wrote destination offset 5 between two mirrored writes.
	stranger := omap([3]int64{0, 0, 5}, [3]int64{5, 6, 5})
	for _, tc := range []struct {
		name      string
		m         *checkpoint.OffsetMap
		pos       checkpoint.Position
		loop      bool
		src, dst  []Rec
		want      Counts
		wantDiffs []Diff
	}{
		{name: "clean", m: ten, pos: pos10, src: recs(span(0, 10), nil), dst: recs(span(0, 10), nil),
			want: Counts{Compared: 10, Confirmed: 10}},
		{name: "destination head deleted", m: ten, pos: pos10, src: recs(span(0, 10), nil), dst: recs(span(3, 10), nil),
			want:      Counts{Compared: 10, Confirmed: 7, Missing: 3},
			wantDiffs: []Diff{{Missing, 0, 0}, {Missing, 1, 1}}},
		{name: "stranger at the tail", m: ten, pos: pos10, src: recs(span(0, 10), nil), dst: recs(span(0, 11), nil),
			want: Counts{Compared: 10, Confirmed: 10, Extra: 1}, wantDiffs: []Diff{{Extra, -1, 10}}},
		{name: "rewritten value", m: ten, pos: pos10, src: recs(span(0, 10), nil), dst: recs(span(0, 10), map[int64]uint64{4: 7}),
			want: Counts{Compared: 10, Confirmed: 9, Altered: 1}, wantDiffs: []Diff{{Altered, 4, 4}}},
		{name: "compaction gap explained by the map", m: gappy, pos: checkpoint.Position{Source: 7, Dest: 5},
			src: recs([]int64{0, 1, 2, 5, 6}, nil), dst: shifted(0, []int64{0, 1, 2, 5, 6}),
			want: Counts{Compared: 5, Confirmed: 5}},
		{name: "stranger between writes", m: stranger, pos: checkpoint.Position{Source: 10, Dest: 11},
			src: recs(span(0, 10), nil), dst: append(append(shifted(0, span(0, 5)), Rec{Offset: 5, Hash: 1}), shifted(6, span(5, 10))...),
			want: Counts{Compared: 10, Confirmed: 10, Extra: 1}, wantDiffs: []Diff{{Extra, -1, 5}}},
		{name: "tail after the checkpoint, partly mirrored", m: omap([3]int64{0, 0, 5}), pos: checkpoint.Position{Source: 5, Dest: 5},
			src: recs(span(0, 10), nil), dst: recs(span(0, 7), nil),
			want: Counts{Compared: 7, Confirmed: 7, Pending: 3}},
		{name: "compacted on the source after mirroring", m: ten, pos: pos10,
			src: recs([]int64{0, 1, 3, 4, 5, 6, 7, 8, 9}, nil), dst: recs(span(0, 10), nil),
			want: Counts{Compared: 9, Confirmed: 9, SourceGone: 1}},
		{name: "record the map has no place for", m: gappy, pos: checkpoint.Position{Source: 7, Dest: 5},
			src: recs([]int64{0, 1, 2, 3, 5, 6}, nil), dst: shifted(0, []int64{0, 1, 2, 5, 6}),
			want: Counts{Compared: 6, Confirmed: 5, Missing: 1}, wantDiffs: []Diff{{Missing, 3, -1}}},
		{name: "left out by loop protection", m: gappy, pos: checkpoint.Position{Source: 7, Dest: 5}, loop: true,
			src: recs([]int64{0, 1, 2, 3, 5, 6}, nil), dst: shifted(0, []int64{0, 1, 2, 5, 6}),
			want: Counts{Compared: 5, Confirmed: 5, Skipped: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Mapping{Runs: tc.m.Runs(), Pos: tc.pos, LoopProtection: tc.loop}
			got, diffs, err := Compare(m, iter(tc.src), iter(tc.dst), 2)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(diffs, tc.wantDiffs) {
				t.Errorf("diffs %v, want %v", diffs, tc.wantDiffs)
			}
		})
	}
}

func TestDestStart(t *testing.T) {
	m := Mapping{Runs: omap([3]int64{0, 0, 3}, [3]int64{5, 3, 2}).Runs(), Pos: checkpoint.Position{Source: 9, Dest: 5}}
	for from, want := range map[int64]int64{0: 0, 2: 2, 3: 3, 4: 3, 5: 3, 6: 4, 7: 5, 9: 5, 12: 5} {
		if got := m.DestStart(from); got != want {
			t.Errorf("DestStart(%d) = %d, want %d", from, got, want)
		}
	}
}
