package mirror

import (
	"slices"

	"strait/checkpoint"
)

// saveNeededLocked reports whether st, gathered for a periodic save, holds
// anything the store lacks. An idle pipeline has no dirty partition and
// the same producer ids as its last save: rewriting the whole checkpoint
// (every partition encoded, one fsync) each interval would then be the
// largest cost of 10,000 idle partitions. The first save always runs.
// The caller holds saveMu.
func (p *pipeline) saveNeededLocked(st *checkpoint.State) bool {
	return !p.saved || len(st.Partitions) > 0 || !slices.Equal(p.savedPIDs, st.ProducerIDs)
}
