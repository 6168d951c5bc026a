package assign

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Sentinel errors of the decoders.
var (
	// ErrCorrupt: the bytes are not a payload of this format (truncated,
	// a count past the end, an unsorted or repeated partition, trailing
	// bytes in a version 1 payload).
	ErrCorrupt = errors.New("assign: corrupt payload")
	// ErrVersion: the payload's version is 0, which no writer uses.
	ErrVersion = errors.New("assign: unsupported payload version")
)

// Version is the version of both payloads this package writes.
const Version = 1

const flagFollowUp = 1 << 0

// EncodeMember writes a member's JoinGroup metadata. Owned partitions are
// written sorted, each once (the first rate given for it); a negative rate
// is written as Unmeasured, a rate above MaxRate as MaxRate.
func EncodeMember(m Member) []byte {
	b := []byte{Version}
	b = appendString(b, m.ID)
	b = appendString(b, m.Version)
	b = appendString(b, m.Fingerprint)
	b = appendRates(b, m.Owned)
	return appendRates(b, m.Released)
}

func appendRates(b []byte, os []Owned) []byte {
	os = slices.Clone(os)
	slices.SortStableFunc(os, func(a, b Owned) int { return a.Partition.Compare(b.Partition) })
	os = slices.CompactFunc(os, func(a, b Owned) bool { return a.Partition == b.Partition })
	return appendSet(b, len(os), func(i int) Partition { return os[i].Partition }, func(b []byte, i int) []byte {
		r := os[i].Rate
		if r < 0 {
			return binary.AppendUvarint(b, 0)
		}
		return binary.AppendUvarint(b, uint64(min(r, MaxRate))+1)
	})
}

// DecodeMember reads JoinGroup metadata written by EncodeMember, of this
// version or a later one (a later version only appends fields, which are
// skipped). It never panics; bad input is an error matching ErrCorrupt or
// ErrVersion.
func DecodeMember(b []byte) (Member, error) {
	r := reader{b: b}
	v := r.version()
	var m Member
	m.ID = r.str()
	m.Version = r.str()
	m.Fingerprint = r.str()
	m.Owned = r.rates()
	m.Released = r.rates()
	if err := r.done(v); err != nil {
		return Member{}, err
	}
	return m, nil
}

// EncodeAssignment writes a member's SyncGroup assignment. Assigned and
// Revoke are written sorted, each partition once.
func EncodeAssignment(a Assignment) []byte {
	var flags byte
	if a.FollowUp {
		flags |= flagFollowUp
	}
	b := []byte{Version, flags}
	b = appendString(b, a.Fingerprint)
	b = appendString(b, a.Mismatch)
	for _, ps := range [][]Partition{a.Assigned, a.Revoke} {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, Partition.Compare)
		ps = slices.Compact(ps)
		b = appendSet(b, len(ps), func(i int) Partition { return ps[i] }, nil)
	}
	return b
}

// DecodeAssignment reads a SyncGroup assignment written by
// EncodeAssignment, of this version or a later one. It never panics.
func DecodeAssignment(b []byte) (Assignment, error) {
	r := reader{b: b}
	v := r.version()
	var a Assignment
	flags := r.byte()
	if v == Version && flags&^flagFollowUp != 0 {
		r.fail("unknown flags %#x", flags)
	}
	a.FollowUp = flags&flagFollowUp != 0
	a.Fingerprint = r.str()
	a.Mismatch = r.str()
	r.set(func(p Partition) { a.Assigned = append(a.Assigned, p) })
	r.set(func(p Partition) { a.Revoke = append(a.Revoke, p) })
	if err := r.done(v); err != nil {
		return Assignment{}, err
	}
	return a, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendSet writes n sorted, distinct partitions grouped by pipeline and
// topic, with each partition number as the gap from the previous one;
// extra, when not nil, appends the per-partition fields.
func appendSet(b []byte, n int, at func(int) Partition, extra func([]byte, int) []byte) []byte {
	// Runs: [lo, hi) of one pipeline, then of one topic.
	runs := func(lo, hi int, same func(a, b Partition) bool) [][2]int {
		var out [][2]int
		for i := lo; i < hi; {
			j := i + 1
			for j < hi && same(at(i), at(j)) {
				j++
			}
			out = append(out, [2]int{i, j})
			i = j
		}
		return out
	}
	pipes := runs(0, n, func(a, b Partition) bool { return a.Pipeline == b.Pipeline })
	b = binary.AppendUvarint(b, uint64(len(pipes)))
	for _, pr := range pipes {
		b = appendString(b, at(pr[0]).Pipeline)
		topics := runs(pr[0], pr[1], func(a, b Partition) bool { return a.Topic == b.Topic })
		b = binary.AppendUvarint(b, uint64(len(topics)))
		for _, tr := range topics {
			b = appendString(b, at(tr[0]).Topic)
			b = binary.AppendUvarint(b, uint64(tr[1]-tr[0]))
			prev := int64(-1)
			for i := tr[0]; i < tr[1]; i++ {
				p := int64(at(i).Partition)
				b = binary.AppendUvarint(b, uint64(p-prev-1))
				prev = p
				if extra != nil {
					b = extra(b, i)
				}
			}
		}
	}
	return b
}

// reader decodes a payload; the first problem sticks in err and every
// later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) version() byte {
	v := r.byte()
	if r.err == nil && v == 0 {
		r.err = fmt.Errorf("%w: 0", ErrVersion)
		r.b = nil
	}
	return v
}

func (r *reader) uvarint() uint64 {
	x, n := binary.Uvarint(r.b)
	// A last byte of 0 after others is a padded number: one value, one
	// encoding.
	if n <= 0 || (n > 1 && r.b[n-1] == 0) {
		r.fail("truncated or overlong number")
		return 0
	}
	r.b = r.b[n:]
	return x
}

// count reads a number of elements that each take at least one byte, so
// it is at most what is left: garbage cannot make a decoder allocate more
// than its input's size.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("count %d past the end", n)
		return 0
	}
	return int(n)
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string of %d bytes past the end", n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// set reads a partition set written by appendSet and calls each for every
// partition, in order; each reads the partition's extra fields.
func (r *reader) set(each func(Partition)) {
	np := r.count()
	prevPipe := ""
	for i := 0; i < np && r.err == nil; i++ {
		pipe := r.str()
		if i > 0 && strings.Compare(pipe, prevPipe) <= 0 {
			r.fail("pipelines out of order")
		}
		prevPipe = pipe
		nt := r.count()
		if nt == 0 {
			r.fail("pipeline %q without topics", pipe)
		}
		prevTopic := ""
		for j := 0; j < nt && r.err == nil; j++ {
			topic := r.str()
			if j > 0 && strings.Compare(topic, prevTopic) <= 0 {
				r.fail("topics out of order")
			}
			prevTopic = topic
			n := r.count()
			if n == 0 {
				r.fail("topic %q without partitions", topic)
			}
			prev := int64(-1)
			for k := 0; k < n && r.err == nil; k++ {
				gap := r.uvarint()
				if gap > math.MaxInt32 || prev+1+int64(gap) > math.MaxInt32 {
					r.fail("partition number past 2^31-1")
					return
				}
				prev += 1 + int64(gap)
				if r.err == nil {
					each(Partition{Pipeline: pipe, Topic: topic, Partition: int32(prev)})
				}
			}
		}
	}
}

// rates reads a partition set with a rate per partition.
func (r *reader) rates() []Owned {
	var out []Owned
	r.set(func(p Partition) {
		o := Owned{Partition: p, Rate: Unmeasured}
		if x := r.uvarint(); x > MaxRate+1 {
			r.fail("rate %d above the maximum", x-1)
		} else if x > 0 {
			o.Rate = int64(x - 1)
		}
		out = append(out, o)
	})
	return out
}

// done ends a decode: a version 1 payload must end here; a later version
// may carry fields this one does not know.
func (r *reader) done(v byte) error {
	if r.err == nil && v == Version && len(r.b) > 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
