package plog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seedBatches(f *testing.F) {
	f.Add(simple(3, 1))
	f.Add(append(simple(1, 1), simple(2, 2)...))
	f.Add(mkBatch(batchOpts{pid: 1, seq: 0}, rec{key: []byte("k"), ts: 5}))
	f.Add(mkBatch(noPID, rec{value: []byte("v"), ts: 5}))
	f.Add([]byte{})
}

// FuzzAppend feeds arbitrary produce payloads to a compacted log: Append
// either refuses with a sentinel error or stores exactly what it got.
func FuzzAppend(f *testing.F) {
	seedBatches(f)
	dir := f.TempDir()
	l, err := Open(dir, Config{Compact: true}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hw := l.HighWatermark()
		res, err := l.Append(append([]byte(nil), b...), t0)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrInvalidRecord) &&
				!errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrOutOfOrderSeq) && !errors.Is(err, ErrInvalidEpoch) {
				t.Fatalf("unclassified error %v", err)
			}
			if l.HighWatermark() != hw {
				t.Fatal("failed append moved the high watermark")
			}
			return
		}
		if !res.Duplicate {
			rr, err := l.Read(res.BaseOffset, int64(len(b)), true)
			if err != nil || rr.Bytes != int64(len(b)) {
				t.Fatalf("read back %d of %d bytes: %v", rr.Bytes, len(b), err)
			}
			rr.Release()
		}
	})
}

// FuzzRecoverSegment writes arbitrary bytes as a segment file and opens
// the log without a clean-shutdown marker: recovery must not panic and
// what it keeps must read back as whole, valid batches.
func FuzzRecoverSegment(f *testing.F) {
	seedBatches(f)
	good := append(simple(2, 1), simple(3, 2)...)
	setBaseOffset(good[len(simple(2, 1)):], 2)
	f.Add(good)
	f.Add(append(good, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0, ".log")), b, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Config{}, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		readAll(t, l, l.LogStartOffset())
		res, err := l.Append(simple(1, 1), t0)
		if err != nil || res.BaseOffset != l.HighWatermark()-1 {
			t.Fatalf("append after recovery: %+v %v", res, err)
		}
	})
}

// FuzzIndexes checks the index validators and lookups on arbitrary bytes,
// and that a damaged index file is rebuilt rather than trusted.
func FuzzIndexes(f *testing.F) {
	f.Add([]byte{}, int64(100), uint32(5), int64(7))
	f.Add([]byte(offsetIndex(nil).add(10, 100).add(20, 200)), int64(300), uint32(15), int64(150))
	f.Fuzz(func(t *testing.T, b []byte, size int64, rel uint32, ts int64) {
		x := offsetIndex(b)
		if x.valid(size) {
			if p := x.lookup(rel); p < 0 || (p > 0 && p >= size) {
				t.Fatalf("lookup %d -> %d outside file of %d", rel, p, size)
			}
			x.lookupPos(size)
		}
		ti := timeIndex(b)
		if ti.valid() {
			ti.lookup(ts)
			ti.last()
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(&state{logStart: 1, next: 9, recoveryPoint: 5, producers: map[int64]*producer{3: {epoch: 1, batches: []producerBatch{{0, 4, 0, 4}}}}}))
	f.Add([]byte("PLST"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unclassified %v", err)
			}
			return
		}
		if again, err := decodeState(encodeState(s)); err != nil || again.next != s.next || len(again.producers) != len(s.producers) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestDamagedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{SegmentBytes: 2000, IndexIntervalBytes: 100})
	for i := 0; i < 60; i++ {
		mustAppend(t, l, simple(2, int64(i)))
	}
	l.Close()
	for _, name := range mustReadDir(t, dir) {
		if filepath.Ext(name) == ".index" {
			os.WriteFile(filepath.Join(dir, name), []byte{1, 2, 3}, 0o644)
		}
		if filepath.Ext(name) == ".timeindex" {
			os.WriteFile(filepath.Join(dir, name), nil, 0o644)
		}
	}
	l = openT(t, dir, Config{SegmentBytes: 2000, IndexIntervalBytes: 100})
	defer l.Close()
	for off := int64(0); off < 120; off += 7 {
		hs := readAll(t, l, off)
		if len(hs) == 0 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
			t.Fatalf("offset %d: wrong first batch", off)
		}
	}
	if o, ts, _ := l.OffsetForTimestamp(30); o != 60 || ts != 30 {
		t.Fatalf("OffsetForTimestamp after rebuild: %d %d", o, ts)
	}
}
