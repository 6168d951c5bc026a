package mirror

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// TestFetchSessionReusesMaps: requests framed over maps from wantMap (as
// the fetch loop does) list exactly what changed, round after round: a
// recycled map is never one the session still compares against, and a
// steady session stops allocating maps.
func TestFetchSessionReusesMaps(t *testing.T) {
	s := newFetchSession()
	req := kmsg.NewPtrFetchRequest()
	offsets := map[checkpoint.TP]int64{tp("a", 0): 5, tp("a", 1): 7, tp("b", 0): 0}
	var maps []map[checkpoint.TP]int64
	for round := range 8 {
		want := s.wantMap(len(offsets))
		if len(want) != 0 {
			t.Fatalf("round %d: wantMap gave %d entries", round, len(want))
		}
		for k, v := range offsets {
			want[k] = v
		}
		maps = append(maps, want)
		s.frame(req, want)
		parts, forg := listed(req)
		switch {
		case round == 0 && len(parts) != 3:
			t.Fatalf("round 0 lists %v, want all three", parts)
		case round > 0 && round%2 == 1 && len(parts) != 0:
			t.Fatalf("round %d (idle) lists %v", round, parts)
		case round > 0 && round%2 == 0 && (len(parts) != 1 || parts[tp("a", 0)] != offsets[tp("a", 0)]):
			t.Fatalf("round %d lists %v, want only a/0 at %d", round, parts, offsets[tp("a", 0)])
		}
		if len(forg) != 0 {
			t.Fatalf("round %d forgets %v", round, forg)
		}
		if err := s.answered(respWith(7, 0)); err != nil {
			t.Fatal(err)
		}
		if round%2 == 1 {
			offsets[tp("a", 0)]++ // moves before every even round
		}
	}
	distinct := 0
	for i, m := range maps {
		fresh := true
		for _, o := range maps[:i] {
			if sameMap(m, o) {
				fresh = false
			}
		}
		if fresh {
			distinct++
		}
	}
	if distinct > 2 {
		t.Fatalf("%d distinct maps over 8 rounds, want 2 reused", distinct)
	}
}
