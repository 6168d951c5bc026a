package plog

import (
	"encoding/binary"
	"sort"
)

// offsetIndex is a sparse offset index: 8-byte entries of
// (offset - segment base: uint32, file position: uint32), both ascending.
type offsetIndex []byte

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

func (x offsetIndex) n() int { return len(x) / offsetEntrySize }

func (x offsetIndex) at(i int) (rel uint32, pos uint32) {
	e := x[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

func (x offsetIndex) add(rel uint32, pos uint32) offsetIndex {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(x, rel), pos)
}

// lookup returns the position of the last indexed batch whose base is at
// or below rel: scanning forward from there finds the batch holding rel.
func (x offsetIndex) lookup(rel uint32) int64 {
	i := sort.Search(x.n(), func(i int) bool { r, _ := x.at(i); return r > rel })
	if i == 0 {
		return 0
	}
	_, pos := x.at(i - 1)
	return int64(pos)
}

// lookupPos returns the last indexed batch position at or below limit.
func (x offsetIndex) lookupPos(limit int64) int64 {
	i := sort.Search(x.n(), func(i int) bool { _, p := x.at(i); return int64(p) > limit })
	if i == 0 {
		return 0
	}
	_, pos := x.at(i - 1)
	return int64(pos)
}

// valid reports whether the index is well formed for a segment file of
// size bytes: whole entries, ascending, positions inside the file.
func (x offsetIndex) valid(size int64) bool {
	if len(x)%offsetEntrySize != 0 {
		return false
	}
	var lastRel, lastPos uint32
	for i := 0; i < x.n(); i++ {
		r, p := x.at(i)
		if i > 0 && (r <= lastRel || p <= lastPos) || int64(p) >= size {
			return false
		}
		lastRel, lastPos = r, p
	}
	return true
}

// timeIndex holds 12-byte entries of (max timestamp so far: int64,
// offset - segment base: uint32); timestamps strictly ascend.
type timeIndex []byte

func (x timeIndex) n() int { return len(x) / timeEntrySize }

func (x timeIndex) at(i int) (ts int64, rel uint32) {
	e := x[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func (x timeIndex) add(ts int64, rel uint32) timeIndex {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(x, uint64(ts)), rel)
}

// last returns the last entry: the segment's max timestamp and the batch
// that holds it.
func (x timeIndex) last() (ts int64, rel uint32, ok bool) {
	if x.n() == 0 {
		return -1, 0, false
	}
	ts, rel = x.at(x.n() - 1)
	return ts, rel, true
}

// lookup returns the relative offset of a batch at or before the first
// batch whose max timestamp reaches ts: every batch before the returned
// one has a smaller max timestamp.
func (x timeIndex) lookup(ts int64) uint32 {
	i := sort.Search(x.n(), func(i int) bool { t, _ := x.at(i); return t >= ts })
	if i == 0 {
		return 0
	}
	_, rel := x.at(i - 1)
	return rel
}

func (x timeIndex) valid() bool {
	if len(x)%timeEntrySize != 0 {
		return false
	}
	var lastTs int64
	var lastRel uint32
	for i := 0; i < x.n(); i++ {
		t, r := x.at(i)
		if i > 0 && (t <= lastTs || r < lastRel) {
			return false
		}
		lastTs, lastRel = t, r
	}
	return true
}
