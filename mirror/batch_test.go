package mirror

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/internal/recordbatch"
)

// mkBatch builds a batch at base with n records (values "v<i>").
func mkBatch(base int64, n int, pid int64, txn, control bool) []byte {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v" + string(rune('a'+i))), Timestamp: time.UnixMilli(1000 + int64(i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}}
	}
	b := encodeBatch(recs, pid, 0, 0)
	recordbatch.SetBaseOffset(b, base)
	var attrs int16
	if txn {
		attrs |= recordbatch.AttrTransactional
	}
	if control {
		attrs |= recordbatch.AttrControl
	}
	recordbatch.SetAttributes(b, attrs)
	recordbatch.UpdateCRC(b)
	return b
}

func TestSplitBatchesTornTail(t *testing.T) {
	a, b := mkBatch(0, 3, 1, false, false), mkBatch(3, 2, 1, false, false)
	data := append(append([]byte{}, a...), b...)
	for cut := 0; cut <= len(data); cut++ {
		bs, err := splitBatches(data[:cut])
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		want := 0
		if cut >= len(a) {
			want = 1
		}
		if cut == len(data) {
			want = 2
		}
		if len(bs) != want {
			t.Fatalf("cut %d: %d batches, want %d", cut, len(bs), want)
		}
	}
	bs, _ := splitBatches(data)
	if bs[1].Base != 3 || bs[1].End() != 5 || bs[0].Count != 3 {
		t.Fatalf("parsed %+v", bs)
	}
}

func TestPlanBatches(t *testing.T) {
	// Offsets: 0-1 plain; 2-3 txn pid 7 (aborted); 4 control pid 7 (abort
	// marker); 5-6 txn pid 8 (committed); 7 control pid 8; 8-9 own pid 99;
	// 10-12 plain.
	var bs []rawBatch
	for _, b := range [][]byte{
		mkBatch(0, 2, 1, false, false),
		mkBatch(2, 2, 7, true, false),
		mkBatch(4, 1, 7, false, true),
		mkBatch(5, 2, 8, true, false),
		mkBatch(7, 1, 8, false, true),
		mkBatch(8, 2, 99, false, false),
		mkBatch(10, 3, 1, false, false),
	} {
		got, err := splitBatches(b)
		if err != nil || len(got) != 1 {
			t.Fatal(err)
		}
		bs = append(bs, got[0])
	}
	aborted := []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 2}}
	own := func(pid int64) bool { return pid == 99 }
	for _, tc := range []struct {
		pos  int64
		want []string
	}{
		{0, []string{"whole", "aborted", "control", "whole", "control", "own", "whole"}},
		{1, []string{"partial", "aborted", "control", "whole", "control", "own", "whole"}},
		{6, []string{"already mirrored", "already mirrored", "already mirrored", "partial", "control", "own", "whole"}},
		{11, []string{"already mirrored", "already mirrored", "already mirrored", "already mirrored", "already mirrored", "already mirrored", "partial"}},
	} {
		steps := planBatches(bs, tc.pos, aborted, own)
		for i, s := range steps {
			got := s.SkipReason
			switch {
			case s.Whole:
				got = "whole"
			case !s.Skip:
				got = "partial"
			}
			if got != tc.want[i] {
				t.Errorf("pos %d batch %d: %s, want %s", tc.pos, i, got, tc.want[i])
			}
		}
	}
}

// TestRewriteBatch: a rewritten batch carries the mirror's producer fields,
// no transactional bit, a valid CRC, and the same records.
func TestRewriteBatch(t *testing.T) {
	orig := mkBatch(40, 4, 7, true, false)
	b := append([]byte(nil), orig...)
	rewriteBatch(b, 1234, 5, 77)
	bs, err := splitBatches(b)
	if err != nil || len(bs) != 1 {
		t.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.FirstOffset != 0 || rb.ProducerID != 1234 || rb.ProducerEpoch != 5 || rb.FirstSequence != 77 || rb.Attributes&recordbatch.AttrTransactional != 0 {
		t.Fatalf("producer fields: %+v", rb)
	}
	if uint32(rb.CRC) != recordbatch.ComputeCRC(b) {
		t.Fatal("bad CRC")
	}
	if !bytes.Equal(b[recordbatch.OffRecordCount:], orig[recordbatch.OffRecordCount:]) {
		t.Fatal("records changed")
	}
	// Offsets are now relative to the zeroed base: record 42 is delta 2.
	recs, err := decodeBatch(bs[0], 2, "t", 0)
	if err != nil || len(recs) != 2 || recs[0].Offset != 2 || string(recs[1].Value) != "vd" {
		t.Fatalf("decode from 42: %v %v", recs, err)
	}
}

func TestEncodeBatchRoundTrip(t *testing.T) {
	recs := []*kgo.Record{
		{Offset: 10, Key: []byte("a"), Value: nil, Timestamp: time.UnixMilli(5000)},
		{Offset: 12, Key: nil, Value: []byte("b"), Timestamp: time.UnixMilli(4000), Headers: []kgo.RecordHeader{{Key: "x"}}},
	}
	b := encodeBatch(recs, 9, 1, 3)
	bs, err := splitBatches(b)
	if err != nil || len(bs) != 1 || bs[0].Count != 2 || bs[0].LastDelta != 1 {
		t.Fatalf("%+v %v", bs, err)
	}
	got, err := decodeBatch(bs[0], 0, "t", 0)
	if err != nil || len(got) != 2 {
		t.Fatal(err)
	}
	if got[0].Value != nil || string(got[0].Key) != "a" || got[1].Key != nil || !got[1].Timestamp.Equal(time.UnixMilli(4000)) || got[1].Headers[0].Key != "x" {
		t.Fatalf("round trip: %+v %+v", got[0], got[1])
	}
	if r := runs(recs); len(r) != 2 || r[1] != [3]int64{12, 1, 1} {
		t.Fatalf("runs %v", r)
	}
}

func TestNextSeqWraps(t *testing.T) {
	if nextSeq(1<<31-2, 3) != 1 || nextSeq(5, 3) != 8 {
		t.Fatal("sequence arithmetic")
	}
}

func TestLifecycle(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLifecycle(3, time.Minute, false)
	if l.canCopy(now) {
		t.Fatal("copying before start")
	}
	l.started()
	if !l.canCopy(now) {
		t.Fatal("not copying after start")
	}
	l.failure("x", now)
	l.failure("x", now)
	if d := l.failure("boom", now); !d.AutoPause || l.shown() != StateAutoPaused || l.reason != "boom" {
		t.Fatalf("third failure: %+v %s", d, l.shown())
	}
	if l.canCopy(now.Add(time.Second)) || !l.canCopy(now.Add(time.Minute)) {
		t.Fatal("auto-pause window")
	}
	l.success()
	if l.shown() != StateRunning {
		t.Fatal("success did not clear the auto-pause")
	}
	l.pause()
	if l.canCopy(now) || l.shown() != StatePaused {
		t.Fatal("pause")
	}
	l.resume()
	l.gap("lost")
	if l.canCopy(now) {
		t.Fatal("copying in gap")
	}
	if wasGap, _ := l.resume(); !wasGap || !l.canCopy(now) {
		t.Fatal("resume from gap")
	}
	l.fail("stranger")
	if _, wasFailed := l.resume(); !wasFailed || l.state != StateStarting {
		t.Fatal("resume from failed")
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(1000)
	if d := b.take(1000, now); d != 0 {
		t.Fatalf("burst: %v", d)
	}
	if d := b.take(500, now); d != 500*time.Millisecond {
		t.Fatalf("debt: %v", d)
	}
	if d := b.take(500, now.Add(time.Second)); d != 0 {
		t.Fatalf("refilled: %v", d)
	}
	if (*bucket)(nil).take(1<<30, now) != 0 || newBucket(0).take(1<<30, now) != 0 {
		t.Fatal("unlimited bucket waits")
	}
}

func FuzzSplitBatches(f *testing.F) {
	f.Add(mkBatch(0, 2, 1, false, false))
	f.Add(append(mkBatch(0, 1, 1, true, false), mkBatch(1, 1, 1, false, true)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := splitBatches(data)
		if err != nil {
			return
		}
		steps := planBatches(bs, 0, []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 1, FirstOffset: 0}}, nil)
		for _, s := range steps {
			if !s.Skip && !s.Whole {
				_, _ = decodeBatch(s.Batch, 0, "t", 0)
			}
		}
	})
}

// BenchmarkRewriteBatch is the whole-batch mirror path: cut fetched bytes
// into batches and rewrite each for the mirror's producer, in place.
func BenchmarkRewriteBatch(b *testing.B) {
	var data []byte
	for i := 0; i < 16; i++ {
		data = append(data, mkBatch(int64(i*16), 16, 1, false, false)...)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bs, err := splitBatches(data)
		if err != nil || len(bs) != 16 {
			b.Fatal(len(bs), err)
		}
		for j := range bs {
			rewriteBatch(bs[j].Bytes, 42, 1, int32(j))
		}
	}
}

// TestRewriteBatchKeepsCorruption: a batch damaged before the mirror
// rewrites it still fails its CRC afterwards, so the destination refuses it
// instead of storing it with a fresh, valid CRC.
func TestRewriteBatchKeepsCorruption(t *testing.T) {
	b := mkBatch(40, 4, 7, false, false)
	b[len(b)-2] ^= 0x40 // a flipped bit in the last record
	rewriteBatch(b, 1234, 5, 77)
	h, err := recordbatch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := recordbatch.CheckCRC(b, &h); !errors.Is(err, recordbatch.ErrCRC) {
		t.Fatalf("CheckCRC of a corrupt batch after rewrite: %v, want %v", err, recordbatch.ErrCRC)
	}
}

// TestRewriteBatchAllocs: rewriting a batch in place allocates nothing.
func TestRewriteBatchAllocs(t *testing.T) {
	b := mkBatch(0, 16, 1, true, false)
	if n := testing.AllocsPerRun(100, func() { rewriteBatch(b, 42, 1, 7) }); n != 0 {
		t.Fatalf("%v allocations per rewrite", n)
	}
}
