package mirror

import (
	"math"
	"testing"
)

// The sequence wraps after 2^31-1, as Kafka's does: landing exactly on the
// largest sequence is not yet a wrap, one past it is 0.
func TestNextSeqBoundary(t *testing.T) {
	for _, tc := range []struct{ seq, n, want int32 }{
		{math.MaxInt32 - 3, 3, math.MaxInt32},
		{math.MaxInt32 - 1, 1, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 2, 3, 0},
		{math.MaxInt32 - 2, 5, 2},
		{0, math.MaxInt32, math.MaxInt32},
		{5, 3, 8},
	} {
		if got := nextSeq(tc.seq, tc.n); got != tc.want {
			t.Errorf("nextSeq(%d, %d) = %d, want %d", tc.seq, tc.n, got, tc.want)
		}
	}
}
