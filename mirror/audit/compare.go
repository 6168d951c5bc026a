package audit

import (
	"fmt"
	"sort"
	"time"

	"strait/checkpoint"
)

// Rec is what the comparison needs of one record: where it is and what it
// holds.
type Rec struct {
	Offset int64
	Hash   uint64
	Size   int64
	Ts     time.Time
}

// Next yields a partition's records in offset order; ok false at the end.
type Next func() (r Rec, ok bool, err error)

// Kind classifies a difference.
type Kind int

const (
	// Missing: a source record the offset map (or the tail after the
	// checkpoint) places on the destination is not there.
	Missing Kind = iota
	// Extra: a destination record no source record accounts for (someone
	// else wrote it).
	Extra
	// Altered: the destination record where a source record landed holds
	// other content.
	Altered
)

func (k Kind) String() string {
	switch k {
	case Missing:
		return "missing"
	case Extra:
		return "extra"
	case Altered:
		return "altered"
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Diff is one difference, with the offsets on each side (-1: none).
type Diff struct {
	Kind         Kind  `json:"kind"`
	SourceOffset int64 `json:"source_offset"`
	DestOffset   int64 `json:"dest_offset"`
}

// Counts are a comparison's outcome.
type Counts struct {
	// Compared are the source records the comparison expected on the
	// destination; Confirmed of them are there, unchanged.
	Compared  int64 `json:"compared"`
	Confirmed int64 `json:"confirmed"`
	Missing   int64 `json:"missing"`
	Extra     int64 `json:"extra"`
	Altered   int64 `json:"altered"`
	// Pending are source records after the checkpoint that the
	// destination does not hold yet: not yet mirrored (the live RPO), not
	// a difference.
	Pending int64 `json:"pending"`
	// Skipped are source records the mirror leaves out by design (loop
	// protection: records that came from the destination).
	Skipped int64 `json:"skipped"`
	// SourceGone are destination copies of records the source no longer
	// holds (compacted or deleted there after they were mirrored).
	SourceGone int64 `json:"source_gone"`
}

// Differences is missing + extra + altered.
func (c Counts) Differences() int64 { return c.Missing + c.Extra + c.Altered }

// Add sums counts.
func (c *Counts) Add(o Counts) {
	c.Compared += o.Compared
	c.Confirmed += o.Confirmed
	c.Missing += o.Missing
	c.Extra += o.Extra
	c.Altered += o.Altered
	c.Pending += o.Pending
	c.Skipped += o.Skipped
	c.SourceGone += o.SourceGone
}

// Mapping is how a partition was mirrored, from its checkpoint: the offset
// map's runs and the position after them.
type Mapping struct {
	Runs []checkpoint.Run
	Pos  checkpoint.Position
	// LoopProtection: a source record the map has no place for was left
	// out on purpose (it came from the destination), not lost.
	LoopProtection bool
}

// expect returns where source offset s was copied to, and whether the map
// has it as a copied record. Offsets at or past Pos.Source are the tail,
// which the caller matches in order.
func (m *Mapping) expect(s int64) (int64, bool) {
	i := sort.Search(len(m.Runs), func(i int) bool { return m.Runs[i].SrcEnd > s })
	if i == len(m.Runs) || s < m.Runs[i].Src {
		return 0, false
	}
	r := m.Runs[i]
	d := r.Dst + (s - r.Src)
	return d, d < r.DstEnd
}

// source returns the source offset a destination offset d holds a copy of,
// when the map says the mirror wrote d.
func (m *Mapping) source(d int64) (int64, bool) {
	i := sort.Search(len(m.Runs), func(i int) bool { return m.Runs[i].DstEnd > d })
	if i == len(m.Runs) || d < m.Runs[i].Dst {
		return 0, false
	}
	r := m.Runs[i]
	s := r.Src + (d - r.Dst)
	return s, s < r.SrcEnd
}

// DestStart is the destination offset where the copies of source offsets
// from `from` on begin.
func (m *Mapping) DestStart(from int64) int64 {
	if from >= m.Pos.Source {
		return m.Pos.Dest
	}
	for _, r := range m.Runs {
		if from < r.SrcEnd {
			if from <= r.Src {
				return r.Dst
			}
			return min(r.Dst+(from-r.Src), r.DstEnd)
		}
	}
	return m.Pos.Dest
}

// Compare streams one partition's two sides once, in offset order, and
// classifies every record: src yields the source records from some offset
// `from` on, dst the destination records from m.DestStart(from) on (a
// destination whose head was deleted simply starts later). Records before
// m.Pos.Source are placed through the map; the tail after it must follow
// on the destination in order (the mirror's restart rule), and a tail the
// destination does not hold yet is pending. show caps the diffs listed;
// the counts are always complete. Memory is constant: one record of each
// side at a time.
func Compare(m Mapping, src, dst Next, show int) (Counts, []Diff, error) {
	var c Counts
	var diffs []Diff
	shown := map[Kind]int{}
	note := func(k Kind, s, d int64) {
		switch k {
		case Missing:
			c.Missing++
		case Extra:
			c.Extra++
		case Altered:
			c.Altered++
		}
		if shown[k] < show {
			shown[k]++
			diffs = append(diffs, Diff{Kind: k, SourceOffset: s, DestOffset: d})
		}
	}
	d, dok, err := dst()
	if err != nil {
		return c, diffs, err
	}
	advance := func() error {
		var err error
		d, dok, err = dst()
		return err
	}
	// unmatched classifies a destination record no source record claimed.
	unmatched := func(r Rec) {
		if _, ok := m.source(r.Offset); ok {
			// The mirror wrote it, from a source record the source no
			// longer holds (the source stream passed that offset).
			c.SourceGone++
			return
		}
		note(Extra, -1, r.Offset)
	}
	tail := m.Pos.Dest
	for {
		s, sok, err := src()
		if err != nil {
			return c, diffs, err
		}
		if !sok {
			break
		}
		var want int64
		inTail := s.Offset >= m.Pos.Source
		if inTail {
			want = tail
		} else {
			var ok bool
			if want, ok = m.expect(s.Offset); !ok {
				if m.LoopProtection {
					c.Skipped++
				} else {
					c.Compared++
					note(Missing, s.Offset, -1)
				}
				continue
			}
		}
		for dok && d.Offset < want {
			unmatched(d)
			if err := advance(); err != nil {
				return c, diffs, err
			}
		}
		switch {
		case inTail && !dok:
			c.Pending++
		case dok && d.Offset == want:
			c.Compared++
			if d.Hash == s.Hash {
				c.Confirmed++
			} else {
				note(Altered, s.Offset, want)
			}
			if err := advance(); err != nil {
				return c, diffs, err
			}
			if inTail {
				tail++
			}
		default:
			c.Compared++
			note(Missing, s.Offset, want)
			if inTail {
				tail++
			}
		}
	}
	for dok {
		unmatched(d)
		if err := advance(); err != nil {
			return c, diffs, err
		}
	}
	return c, diffs, nil
}

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{Missing, Extra, Altered} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("%w: unknown difference kind %q", ErrConfig, b)
}
