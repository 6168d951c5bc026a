package drill

import (
	"strings"
	"testing"
	"time"

	"strait/checkpoint"
)

// measureRun builds a run whose source partition t/0 holds seqs 1..n at
// offsets 0..n-1, all acknowledged at ackAt, with the group committed at
// commit.
func measureRun(n int, commit int64, ackAt time.Time) *run {
	r := &run{sc: &Scenario{CutSource: func() error { return nil }}}
	r.mu.acked = map[uint64]acked{}
	r.mu.bySource = map[where]uint64{}
	r.mu.committed = map[checkpoint.TP]int64{{Topic: "t", Partition: 0}: commit}
	for i := 0; i < n; i++ {
		w := where{"t", 0, int64(i)}
		r.mu.acked[uint64(i+1)] = acked{at: w, ack: ackAt}
		r.mu.bySource[w] = uint64(i + 1)
	}
	return r
}

// dest holds seqs first..last at destination offsets 0.. (plus extra
// placements for duplicates).
func dest(first, last uint64) *destContent {
	dc := &destContent{at: map[uint64]where{}, seqAt: map[where]uint64{}, ends: map[checkpoint.TP]int64{}, starts: map[checkpoint.TP]int64{}}
	off := int64(0)
	for s := first; s <= last; s++ {
		w := where{"t", 0, off}
		dc.at[s], dc.seqAt[w] = w, s
		off++
	}
	dc.ends[checkpoint.TP{Topic: "t", Partition: 0}] = off
	return dc
}

func TestMeasure(t *testing.T) {
	cut := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	ack := cut.Add(-3 * time.Second)
	part := func(translated int64) []PartitionReport {
		return []PartitionReport{{Topic: "t", Partition: 0, DestTopic: "t", Committed: 4, Translated: translated}}
	}
	read := func(seqs ...uint64) map[uint64]int {
		m := map[uint64]int{}
		for _, s := range seqs {
			m[s]++
		}
		return m
	}
	cases := []struct {
		name    string
		dc      *destContent
		trans   int64
		got     map[uint64]int
		ok      bool
		problem string
		check   func(t *testing.T, rep *Report)
	}{
		{
			name: "exact failover", dc: dest(1, 10), trans: 4, got: read(5, 6, 7, 8, 9, 10), ok: true,
			check: func(t *testing.T, rep *Report) {
				if rep.RPORecords != 0 || rep.Lost != 0 || rep.Duplicates != 0 || rep.ConsumedSource != 4 || rep.ConsumedDest != 6 {
					t.Fatalf("%+v", rep)
				}
			},
		},
		{
			name: "records not mirrored count in RPO only", dc: dest(1, 8), trans: 4, got: read(5, 6, 7, 8), ok: true,
			check: func(t *testing.T, rep *Report) {
				if rep.RPORecords != 2 || rep.RPOWindow != 3*time.Second {
					t.Fatalf("RPO %d records, %s", rep.RPORecords, rep.RPOWindow)
				}
			},
		},
		{name: "translation too far skips records", dc: dest(1, 10), trans: 6, got: read(7, 8, 9, 10), problem: "never consumed"},
		{name: "translation too early repeats records", dc: dest(1, 10), trans: 2, got: read(3, 4, 5, 6, 7, 8, 9, 10), problem: "consumed twice"},
		{name: "a record read twice after failover", dc: dest(1, 10), trans: 4, got: read(5, 5, 6, 7, 8, 9, 10), problem: "consumed twice"},
		{
			name: "untranslatable partition resumes at the start", dc: dest(1, 10), trans: -1, got: read(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
			problem: "not exact",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := measureRun(10, 4, ack)
			rep := &Report{Partitions: part(c.trans)}
			r.measure(rep, cut, c.dc, c.got)
			if rep.OK() != c.ok {
				t.Fatalf("OK = %v, problems %q", rep.OK(), rep.Problems)
			}
			if c.problem != "" && !strings.Contains(strings.Join(rep.Problems, "\n"), c.problem) {
				t.Fatalf("problems %q lack %q", rep.Problems, c.problem)
			}
			if c.check != nil {
				c.check(t, rep)
			}
		})
	}
	// A duplicate and a corrupt record on the destination are reported.
	r := measureRun(10, 4, ack)
	dc := dest(1, 10)
	dc.dups, dc.corrupt = 1, 2
	rep := &Report{Partitions: part(4)}
	r.measure(rep, cut, dc, read(5, 6, 7, 8, 9, 10))
	if rep.MirrorDuplicates != 1 || rep.Corrupt != 2 || len(rep.Problems) != 2 {
		t.Fatalf("%+v", rep)
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, size := range []int{0, 16, 128, 1000} {
		v := encodeValue(12345, size)
		seq, ok := decodeValue(v)
		if !ok || seq != 12345 {
			t.Fatalf("size %d: %d %v", size, seq, ok)
		}
		v[len(v)-1] ^= 1
		if _, ok := decodeValue(v); ok {
			t.Fatalf("size %d: a flipped bit passed the checksum", size)
		}
	}
	if _, ok := decodeValue([]byte("short")); ok {
		t.Fatal("a short value decoded")
	}
}
