package plog

import (
	"testing"
)

// BenchmarkAppend appends 16 KiB batches (validation, offset rewrite,
// write(2), index upkeep).
func BenchmarkAppend(b *testing.B) {
	l := openT(b, b.TempDir(), Config{SegmentBytes: 64 << 20})
	defer l.Close()
	recs := make([]rec, 16)
	for i := range recs {
		recs[i] = rec{key: []byte("key"), value: make([]byte, 1000), ts: 1}
	}
	batch := mkBatch(noPID, recs...)
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(batch, t0); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			b.StopTimer()
			l.DeleteRecords(-1)
			l.Maintain(t0)
			b.StartTimer()
		}
	}
}

// BenchmarkRead finds 1 MiB spans of 16 KiB batches at sequential offsets
// (what a consumer's fetches ask for); no data is copied.
func BenchmarkRead(b *testing.B) {
	l := openT(b, b.TempDir(), Config{SegmentBytes: 64 << 20})
	defer l.Close()
	recs := make([]rec, 16)
	for i := range recs {
		recs[i] = rec{key: []byte("key"), value: make([]byte, 1000), ts: 1}
	}
	for i := 0; i < 2000; i++ {
		mustAppend(b, l, mkBatch(noPID, recs...))
	}
	hw := l.HighWatermark()
	perBatch := int64(len(mkBatch(noPID, recs...)))
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		rr, err := l.Read(off, 1<<20, true)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(rr.Bytes)
		off += rr.Bytes / perBatch * 16
		if off >= hw {
			off = 0
		}
		rr.Release()
	}
}
