package plog

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"strait/internal/recordbatch"
)

func TestAppendValidation(t *testing.T) {
	good := func() []byte { return simple(3, 1000) }
	corrupt := func(f func(b []byte) []byte) func() []byte {
		return func() []byte { return f(good()) }
	}
	withAttrs := func(a int16) func() []byte {
		return func() []byte {
			return mkBatch(batchOpts{pid: -1, epoch: -1, seq: -1, attrs: a}, rec{key: []byte("k"), value: []byte("v"), ts: 1})
		}
	}
	tests := []struct {
		name    string
		payload func() []byte
		cfg     Config
		want    error
	}{
		{"empty", func() []byte { return nil }, Config{}, ErrCorrupt},
		{"short header", func() []byte { return good()[:40] }, Config{}, ErrCorrupt},
		{"length beyond payload", func() []byte { return good()[:len(good())-1] }, Config{}, ErrCorrupt},
		{"trailing bytes", func() []byte { return append(good(), 1, 2, 3) }, Config{}, ErrCorrupt},
		{"magic 1", corrupt(func(b []byte) []byte { b[recordbatch.OffMagic] = 1; return b }), Config{}, ErrCorrupt},
		{"crc", corrupt(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), Config{}, ErrCorrupt},
		{"length below header", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[recordbatch.OffLength:], 10)
			return b
		}), Config{}, ErrCorrupt},
		{"count mismatch", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[recordbatch.OffRecordCount:], 7)
			recordbatch.UpdateCRC(b)
			return b
		}), Config{}, ErrCorrupt},
		{"negative delta", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[recordbatch.OffLastOffsetDelta:], 0xffffffff)
			recordbatch.UpdateCRC(b)
			return b
		}), Config{}, ErrCorrupt},
		{"too large", func() []byte { return simple(20, 1) }, Config{MaxMessageBytes: 100}, ErrTooLarge},
		{"control batch", withAttrs(recordbatch.AttrControl), Config{}, ErrInvalidRecord},
		{"transactional without a producer id", withAttrs(recordbatch.AttrTransactional), Config{}, ErrInvalidRecord},
		{"unknown codec", withAttrs(6), Config{}, ErrCorrupt},
		{"compacted null key", func() []byte { return mkBatch(noPID, rec{value: []byte("v"), ts: 1}) }, Config{Compact: true}, ErrInvalidRecord},
		{"good then bad", func() []byte {
			b := good()
			c := good()
			c[len(c)-1] ^= 1
			return append(b, c...)
		}, Config{}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openT(t, t.TempDir(), tt.cfg)
			defer l.Close()
			mustAppend(t, l, simple(2, 1))
			_, err := l.Append(tt.payload(), t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if hw := l.HighWatermark(); hw != 2 {
				t.Fatalf("high watermark %d after failed append, want 2", hw)
			}
			if n := len(readAll(t, l, 0)); n != 1 {
				t.Fatalf("%d batches after failed append, want 1", n)
			}
		})
	}
}

func TestAppendAssignsOffsets(t *testing.T) {
	l := openT(t, t.TempDir(), Config{})
	defer l.Close()
	b := append(simple(3, 10), simple(2, 20)...)
	binary.BigEndian.PutUint32(b[recordbatch.OffPartitionLeaderEpoch:], 77) // outside the CRC; reset to 0
	res := mustAppend(t, l, b)
	if res.BaseOffset != 0 || res.LastOffset != 4 {
		t.Fatalf("got %+v", res)
	}
	res = mustAppend(t, l, simple(1, 30))
	if res.BaseOffset != 5 || res.LastOffset != 5 {
		t.Fatalf("got %+v", res)
	}
	hs := readAll(t, l, 0)
	want := []int64{0, 3, 5}
	if len(hs) != len(want) {
		t.Fatalf("%d batches", len(hs))
	}
	for i, h := range hs {
		if h.BaseOffset != want[i] {
			t.Errorf("batch %d at %d, want %d", i, h.BaseOffset, want[i])
		}
	}
}

func TestRead(t *testing.T) {
	l := openT(t, t.TempDir(), Config{IndexIntervalBytes: 100, SegmentBytes: 2000})
	defer l.Close()
	var sizes []int
	for i := 0; i < 100; i++ {
		b := simple(1+i%3, int64(i))
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	hw := l.HighWatermark()
	// Every offset finds the batch holding it, across segments.
	for off := int64(0); off < hw; off++ {
		rr, err := l.Read(off, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.Spans) != 1 {
			t.Fatalf("offset %d: %d spans", off, len(rr.Spans))
		}
		buf := make([]byte, recordbatch.HeaderSize)
		rr.Spans[0].File.ReadAt(buf, rr.Spans[0].Pos)
		h, err := parseHeader(buf)
		if err != nil || off < h.BaseOffset || off > h.LastOffset() || h.Size() != rr.Bytes {
			t.Fatalf("offset %d: got batch %d..%d (%v)", off, h.BaseOffset, h.LastOffset(), err)
		}
		rr.Release()
	}
	// maxBytes is respected unless minOne needs one whole batch.
	rr, _ := l.Read(0, int64(sizes[0])-1, false)
	if rr.Bytes != 0 {
		t.Fatalf("read %d bytes with a budget below one batch", rr.Bytes)
	}
	rr.Release()
	rr, _ = l.Read(0, 1000, false)
	if rr.Bytes > 1000 || rr.Bytes == 0 {
		t.Fatalf("read %d bytes with budget 1000", rr.Bytes)
	}
	rr.Release()
	// All of it, spanning segments, batches whole.
	if n := len(readAll(t, l, 0)); n != 100 {
		t.Fatalf("read %d batches, want 100", n)
	}
	rr, err := l.Read(hw, 100, true)
	if err != nil || rr.Bytes != 0 || rr.HighWatermark != hw {
		t.Fatalf("read at HW: %+v %v", rr, err)
	}
	if _, err := l.Read(hw+1, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past HW: %v", err)
	}
	if _, err := l.Read(-1, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
}

func TestCleanReopenIsLazy(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{SegmentBytes: 1000})
	for i := 0; i < 50; i++ {
		mustAppend(t, l, mkBatch(batchOpts{pid: 7, epoch: 0, seq: int32(i)}, rec{key: []byte("k"), value: []byte("v"), ts: int64(i)}))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(simple(1, 1), t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	fc := NewFileCache(8)
	l2, err := Open(dir, Config{SegmentBytes: 1000}, Options{Files: fc})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if fc.Open() != 0 {
		t.Fatalf("%d files open after a clean Open", fc.Open())
	}
	for _, s := range l2.mu.segs {
		if s.loaded {
			t.Fatalf("segment %d loaded by a clean Open", s.base)
		}
	}
	if l2.HighWatermark() != 50 {
		t.Fatalf("HW %d", l2.HighWatermark())
	}
	// Producer state survived: a retry is a duplicate, the next sequence continues.
	res, err := l2.Append(mkBatch(batchOpts{pid: 7, epoch: 0, seq: 49}, rec{key: []byte("k"), value: []byte("v"), ts: 49}), t0)
	if err != nil || !res.Duplicate || res.BaseOffset != 49 {
		t.Fatalf("retry after reopen: %+v %v", res, err)
	}
	res, err = l2.Append(mkBatch(batchOpts{pid: 7, epoch: 0, seq: 50}, rec{key: []byte("k"), value: []byte("v"), ts: 50}), t0)
	if err != nil || res.BaseOffset != 50 {
		t.Fatalf("next after reopen: %+v %v", res, err)
	}
	if n := len(readAll(t, l2, 0)); n != 51 {
		t.Fatalf("%d batches", n)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarker)); !os.IsNotExist(err) {
		t.Fatalf("clean marker still present after an append: %v", err)
	}
}

func TestIdempotence(t *testing.T) {
	p := func(pid int64, epoch int16, seq int32, n int) []byte {
		recs := make([]rec, n)
		for i := range recs {
			recs[i] = rec{key: []byte("k"), value: []byte("v"), ts: 1}
		}
		return mkBatch(batchOpts{pid: pid, epoch: epoch, seq: seq}, recs...)
	}
	type step struct {
		b    []byte
		want error
		dup  bool
		base int64 // expected base offset when no error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{b: p(1, 0, 0, 2), base: 0}, {b: p(1, 0, 2, 3), base: 2}, {b: p(1, 0, 5, 1), base: 5}}},
		{"retry of last", []step{{b: p(1, 0, 0, 2), base: 0}, {b: p(1, 0, 0, 2), dup: true, base: 0}}},
		{"retry of an older one of five", []step{
			{b: p(1, 0, 0, 1), base: 0}, {b: p(1, 0, 1, 1), base: 1}, {b: p(1, 0, 2, 1), base: 2},
			{b: p(1, 0, 1, 1), dup: true, base: 1}, {b: p(1, 0, 3, 1), base: 3},
		}},
		{"retry older than five", []step{
			{b: p(1, 0, 0, 1)}, {b: p(1, 0, 1, 1), base: 1}, {b: p(1, 0, 2, 1), base: 2}, {b: p(1, 0, 3, 1), base: 3},
			{b: p(1, 0, 4, 1), base: 4}, {b: p(1, 0, 5, 1), base: 5}, {b: p(1, 0, 0, 1), want: ErrOutOfOrderSeq},
		}},
		{"gap", []step{{b: p(1, 0, 0, 2)}, {b: p(1, 0, 3, 1), want: ErrOutOfOrderSeq}}},
		{"unknown producer not at 0", []step{{b: p(1, 0, 5, 1), want: ErrOutOfOrderSeq}}},
		{"old epoch", []step{{b: p(1, 1, 0, 1)}, {b: p(1, 0, 1, 1), want: ErrInvalidEpoch}}},
		{"new epoch at 0", []step{{b: p(1, 0, 0, 1)}, {b: p(1, 1, 0, 1), base: 1}}},
		{"new epoch not at 0", []step{{b: p(1, 0, 0, 1)}, {b: p(1, 1, 4, 1), want: ErrOutOfOrderSeq}}},
		{"negative sequence", []step{{b: p(1, 0, -1, 1), want: ErrOutOfOrderSeq}}},
		{"producers independent", []step{{b: p(1, 0, 0, 1)}, {b: p(2, 0, 0, 1), base: 1}, {b: p(1, 0, 1, 1), base: 2}}},
		{"no producer id never checked", []step{{b: simple(1, 1)}, {b: simple(1, 1), base: 1}}},
		{"failed append leaves state", []step{
			{b: p(1, 0, 0, 1)},
			{b: append(p(1, 0, 1, 1), p(1, 0, 9, 1)...), want: ErrOutOfOrderSeq},
			{b: p(1, 0, 1, 1), base: 1},
		}},
		{"two batches one request", []step{{b: append(p(1, 0, 0, 1), p(1, 0, 1, 2)...), base: 0}, {b: p(1, 0, 1, 2), dup: true, base: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openT(t, t.TempDir(), Config{})
			defer l.Close()
			for i, s := range tt.steps {
				hw := l.HighWatermark()
				res, err := l.Append(s.b, t0)
				if !errors.Is(err, s.want) {
					t.Fatalf("step %d: err %v, want %v", i, err, s.want)
				}
				if err != nil {
					if l.HighWatermark() != hw {
						t.Fatalf("step %d: failed append moved HW", i)
					}
					continue
				}
				if res.Duplicate != s.dup {
					t.Fatalf("step %d: duplicate %v, want %v", i, res.Duplicate, s.dup)
				}
				if s.dup && l.HighWatermark() != hw {
					t.Fatalf("step %d: duplicate wrote data", i)
				}
				if i > 0 && res.BaseOffset != s.base {
					t.Fatalf("step %d: base %d, want %d", i, res.BaseOffset, s.base)
				}
			}
		})
	}
}

func TestSequenceWraps(t *testing.T) {
	l := openT(t, t.TempDir(), Config{})
	defer l.Close()
	// Seed a producer whose last sequence is MaxInt32-1.
	l.mu.producers = map[int64]*producer{3: {epoch: 0, batches: []producerBatch{{firstSeq: 1<<31 - 2, lastSeq: 1<<31 - 2}}}}
	recs := []rec{{key: []byte("a"), ts: 1}, {key: []byte("b"), ts: 1}}
	if _, err := l.Append(mkBatch(batchOpts{pid: 3, seq: 1<<31 - 1}, recs...), t0); err != nil {
		t.Fatal(err)
	}
	// That batch held MaxInt32 and 0; next is 1.
	if _, err := l.Append(mkBatch(batchOpts{pid: 3, seq: 1}, recs[0]), t0); err != nil {
		t.Fatalf("after wrap: %v", err)
	}
}
