package checkpoint

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// MaxBreakpoints caps an OffsetMap. When an Add would exceed it, the oldest
// breakpoint is dropped and the map's start moves up to the next one: source
// offsets below the new start no longer translate (Translate reports !ok),
// so a consumer group committed that far back is left to its reset policy
// rather than given a guess. 10,000 breakpoints encode in at most ~200 KB,
// well under a Kafka record's default 1 MiB limit.
var MaxBreakpoints = 10000

// offsetMapVersion is the first byte of an encoded OffsetMap.
const offsetMapVersion = 1

// point is the start of a run: source offset Src landed at destination
// offset Dst, and the following source offsets keep the same delta Dst-Src
// until the next point.
type point struct {
	Src, Dst int64
}

// OffsetMap records where source offsets landed on the destination. It keeps
// only breakpoints (where dest-source changes), so its size is bounded by the
// number of gaps, not records; Translate is exact.
//
// The zero value is an empty map ready to use. An OffsetMap is not safe for
// concurrent use: the task that owns a partition adds to it, and hands a
// Clone to whoever saves or translates concurrently.
type OffsetMap struct {
	// base is the first source offset the map covers. Source offsets in
	// [base, points[0].Src) held no copied record (compacted away, control
	// records, aborted data) and translate to points[0].Dst.
	// Invariant: hasBase implies base <= points[0].Src when points exist.
	base    int64
	hasBase bool
	// points are run starts. Invariant: strictly increasing Src and
	// non-decreasing Dst, and the delta Dst-Src differs between neighbours.
	points []point
	// end is the source and destination offset just after the last record
	// added. Invariant: with points, end.Src > last.Src and
	// end.Dst-end.Src == last.Dst-last.Src.
	end point
}

// Begin records that mirroring of the partition starts at pos: source
// offsets from pos.Source up to the first added record held nothing to copy
// and translate to that record's destination offset. Without Begin the map
// starts at the first added record. Begin on a non-empty map only lowers the
// start (a start above the first record is ignored).
func (m *OffsetMap) Begin(pos Position) {
	if len(m.points) == 0 {
		m.base, m.hasBase = pos.Source, true
		m.end = point{pos.Source, pos.Dest}
		return
	}
	if pos.Source < m.base {
		m.base = pos.Source
	}
}

// Add records that the source offsets [src, src+n) were written at
// destination offsets [dst, dst+n) (records absent inside the range, e.g.
// compacted away within a batch, are absent at both ends). Calls come in
// increasing src order.
//
// A call that goes back (src or dst below the end of what was added before)
// means the partition was rewound, e.g. restored from an older checkpoint:
// the map forgets everything at or after that point and continues from the
// new run, so it always describes the latest copy. n <= 0 is ignored.
func (m *OffsetMap) Add(src, dst, n int64) {
	if n <= 0 || src < 0 || dst < 0 {
		return
	}
	if len(m.points) > 0 && (src < m.end.Src || dst < m.end.Dst) {
		m.truncate(src, dst)
	}
	if len(m.points) == 0 {
		if !m.hasBase || m.base > src {
			m.base, m.hasBase = src, true
		}
		m.points = append(m.points, point{src, dst})
		m.end = point{src + n, dst + n}
		return
	}
	last := m.points[len(m.points)-1]
	if dst-src != last.Dst-last.Src {
		m.points = append(m.points, point{src, dst})
	}
	m.end = point{src + n, dst + n}
	m.capLocked()
}

// truncate drops the runs at or after a rewound add of (src, dst).
func (m *OffsetMap) truncate(src, dst int64) {
	i := sort.Search(len(m.points), func(i int) bool {
		return m.points[i].Src >= src || m.points[i].Dst >= dst
	})
	m.points = m.points[:i]
	if i == 0 {
		if m.base > src {
			m.base = src
		}
		return
	}
	// The kept last run now ends where the rewound add begins (or earlier,
	// on whichever side comes first).
	last := m.points[i-1]
	e := min(src-last.Src, dst-last.Dst)
	m.end = point{last.Src + e, last.Dst + e}
}

// capLocked enforces MaxBreakpoints by dropping the oldest runs.
func (m *OffsetMap) capLocked() {
	limit := max(MaxBreakpoints, 1)
	if len(m.points) <= limit {
		return
	}
	drop := len(m.points) - limit
	m.points = append(m.points[:0], m.points[drop:]...)
	m.base = m.points[0].Src
}

// TrimBelow forgets the runs that lie wholly below the source log start
// offset: a consumer cannot hold a committed offset there that it could
// still read, so nothing below logStart needs translating. It bounds the map
// for topics whose retention deletes old data.
func (m *OffsetMap) TrimBelow(logStart int64) {
	if !m.hasBase || logStart <= m.base {
		return
	}
	m.base = logStart
	for len(m.points) > 0 {
		p := m.points[0]
		if len(m.points) > 1 && m.points[1].Src <= logStart {
			m.points = m.points[1:]
			continue
		}
		// logStart falls in the first run or the gap after it. Inside the
		// run, the run now starts at logStart with the same delta; in the gap
		// the run is dropped, and the start translates to the next run.
		moved := point{logStart, p.Dst + (logStart - p.Src)}
		nextDst, runEnd := m.end.Dst, m.end.Src
		if len(m.points) > 1 {
			nextDst, runEnd = m.points[1].Dst, m.points[1].Src
		}
		if moved.Dst < nextDst && logStart < runEnd {
			m.points[0] = moved
			break
		}
		m.points = m.points[1:]
		break
	}
	if len(m.points) == 0 && m.end.Src < logStart {
		m.end.Src = logStart
	}
	m.points = append([]point(nil), m.points...)
}

// Translate maps a committed source offset (the next record a consumer would
// read) to the destination offset at which that consumer must resume. pos is
// the partition's current position, for offsets at or past it.
//
// The result is exact: a consumer that resumes on the destination at the
// returned offset reads precisely the copies of the records it had not yet
// read on the source. Inside a run the answer is dst + (src - runStart); in
// a source gap (between runs, after the last record, or between the map's
// start and its first record) it is the destination offset of the next
// copied record. Offsets below the map's start, or any offset below
// pos.Source when the map has no start (neither Begin nor Add), translate
// to !ok.
func (m *OffsetMap) Translate(src int64, pos Position) (int64, bool) {
	if src >= pos.Source {
		return pos.Dest, true
	}
	if !m.hasBase || src < m.base {
		return 0, false
	}
	// i is the run holding src: the last point with Src <= src.
	i := sort.Search(len(m.points), func(i int) bool { return m.points[i].Src > src }) - 1
	if i < 0 {
		if len(m.points) == 0 {
			// Nothing was copied between the start and pos: all gap.
			return pos.Dest, true
		}
		return m.points[0].Dst, true
	}
	p := m.points[i]
	d := p.Dst + (src - p.Src)
	if i+1 < len(m.points) {
		// Dst never decreases, so past this run's last record the formula
		// overshoots; the next run's first record is where to resume.
		return min(d, m.points[i+1].Dst), true
	}
	if src < m.end.Src {
		return d, true
	}
	// After the last added record but before pos.Source: skipped records;
	// the next copied record will land at pos.Dest.
	return pos.Dest, true
}

// Len is the number of breakpoints (runs) the map holds.
func (m *OffsetMap) Len() int { return len(m.points) }

// End is the position just after the last record added (zero if none).
func (m *OffsetMap) End() Position { return Position{Source: m.end.Src, Dest: m.end.Dst} }

// Start is the first source offset the map translates, and whether it has one.
func (m *OffsetMap) Start() (int64, bool) { return m.base, m.hasBase }

// Clone returns an independent copy (nil for nil).
func (m *OffsetMap) Clone() *OffsetMap {
	if m == nil {
		return nil
	}
	c := *m
	c.points = append([]point(nil), m.points...)
	return &c
}

// String shows the runs, for logs and test failures.
func (m *OffsetMap) String() string {
	if m == nil || !m.hasBase {
		return "OffsetMap{}"
	}
	s := fmt.Sprintf("OffsetMap{start %d", m.base)
	for _, p := range m.points {
		s += fmt.Sprintf(" %d→%d", p.Src, p.Dst)
	}
	return s + fmt.Sprintf(" end %d→%d}", m.end.Src, m.end.Dst)
}

// MarshalBinary encodes the map (layout in doc.go): a version byte, flags,
// then varints, each point as deltas from the previous one.
func (m *OffsetMap) MarshalBinary() ([]byte, error) {
	return m.appendBinary(nil), nil
}

func (m *OffsetMap) appendBinary(b []byte) []byte {
	b = append(b, offsetMapVersion)
	if !m.hasBase {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, m.base)
	b = binary.AppendUvarint(b, uint64(len(m.points)))
	prev := point{m.base, 0}
	for _, p := range m.points {
		b = binary.AppendUvarint(b, uint64(p.Src-prev.Src))
		b = binary.AppendVarint(b, p.Dst-prev.Dst)
		prev = p
	}
	b = binary.AppendVarint(b, m.end.Src-prev.Src)
	b = binary.AppendVarint(b, m.end.Dst-prev.Dst)
	return b
}

// UnmarshalBinary decodes what MarshalBinary wrote. Any malformed input,
// including one that breaks the map's invariants, gives an error wrapping
// ErrCorrupt; it never panics.
func (m *OffsetMap) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	nm, err := decodeOffsetMap(&r)
	if err != nil {
		return err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: offset map: %d trailing bytes", ErrCorrupt, len(r.b))
	}
	*m = *nm
	return nil
}

func decodeOffsetMap(r *reader) (*OffsetMap, error) {
	bad := func(what string) error { return fmt.Errorf("%w: offset map: %s", ErrCorrupt, what) }
	v, ok := r.byte()
	if !ok {
		return nil, bad("truncated")
	}
	if v != offsetMapVersion {
		return nil, bad(fmt.Sprintf("unknown version %d", v))
	}
	flags, ok := r.byte()
	if !ok {
		return nil, bad("truncated")
	}
	m := &OffsetMap{}
	switch flags {
	case 0:
		return m, nil
	case 1:
	default:
		return nil, bad(fmt.Sprintf("unknown flags %#x", flags))
	}
	if m.base, ok = r.varint(); !ok || m.base < 0 {
		return nil, bad("bad start")
	}
	m.hasBase = true
	n, ok := r.uvarint()
	// Every point takes at least two bytes: bound n before allocating.
	if !ok || n > uint64(len(r.b)/2) {
		return nil, bad("bad breakpoint count")
	}
	m.points = make([]point, 0, n)
	prev := point{m.base, 0}
	for i := uint64(0); i < n; i++ {
		ds, ok1 := r.uvarint()
		dd, ok2 := r.varint()
		if !ok1 || !ok2 {
			return nil, bad("truncated breakpoint")
		}
		p := point{prev.Src + int64(ds), prev.Dst + dd}
		if ds > 1<<62 || p.Src < prev.Src || p.Dst < 0 || (i > 0 && (ds == 0 || p.Dst < prev.Dst)) {
			return nil, bad("breakpoints out of order")
		}
		if i > 0 && p.Dst-p.Src == prev.Dst-prev.Src {
			return nil, bad("redundant breakpoint")
		}
		m.points = append(m.points, p)
		prev = p
	}
	es, ok1 := r.varint()
	ed, ok2 := r.varint()
	if !ok1 || !ok2 {
		return nil, bad("truncated end")
	}
	m.end = point{prev.Src + es, prev.Dst + ed}
	if len(m.points) > 0 {
		if es <= 0 || es != ed || m.end.Src < prev.Src {
			return nil, bad("end inconsistent with last run")
		}
	} else if es < 0 || ed < 0 || m.end.Src < m.base {
		return nil, bad("bad end")
	}
	return m, nil
}

// reader is a bounds-checked cursor over encoded bytes.
type reader struct{ b []byte }

func (r *reader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *reader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *reader) varint() (int64, bool) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *reader) bytes() ([]byte, bool) {
	n, ok := r.uvarint()
	if !ok || n > uint64(len(r.b)) {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}
