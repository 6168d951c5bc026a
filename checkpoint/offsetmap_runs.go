package checkpoint

// Run is one stretch of an OffsetMap with a constant delta: a source record
// at offset s with Src <= s < SrcEnd that was copied lies at destination
// offset Dst + (s - Src), and that offset is below DstEnd. A source record
// of the stretch whose computed destination offset reaches DstEnd was not
// copied (the source skipped ahead: compaction, control records, aborted
// data); a destination offset in [Dst, DstEnd) whose source offset reaches
// SrcEnd was not written by the mirror (the destination jumped ahead).
type Run struct {
	Src, Dst       int64
	SrcEnd, DstEnd int64
}

// Runs lists the map's stretches in increasing source order (nil for an
// empty map). The audit walks them to tell missing records from gaps the
// map explains.
func (m *OffsetMap) Runs() []Run {
	if m == nil || len(m.points) == 0 {
		return nil
	}
	out := make([]Run, len(m.points))
	for i, p := range m.points {
		next := m.end
		if i+1 < len(m.points) {
			next = m.points[i+1]
		}
		out[i] = Run{Src: p.Src, Dst: p.Dst, SrcEnd: next.Src, DstEnd: next.Dst}
	}
	return out
}
