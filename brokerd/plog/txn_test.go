package plog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"strait/internal/recordbatch"
)

// txnBatch is a transactional batch of one record per value.
func txnBatch(pid int64, epoch int16, seq int32, ts int64, vals ...string) []byte {
	recs := make([]rec, len(vals))
	for i, v := range vals {
		recs[i] = rec{key: []byte("k-" + v), value: []byte(v), ts: ts}
	}
	return mkBatch(batchOpts{pid: pid, epoch: epoch, seq: seq, attrs: recordbatch.AttrTransactional}, recs...)
}

func mustMarker(t *testing.T, l *Log, pid int64, epoch int16, commit bool) AppendResult {
	t.Helper()
	res, err := l.AppendMarker(pid, epoch, commit, 0, t0)
	if err != nil {
		t.Fatalf("AppendMarker(%d, commit=%v): %v", pid, commit, err)
	}
	return res
}

// committedValues reads [from, LSO) as a read_committed consumer does:
// skipping markers and the records of the aborted transactions listed.
func committedValues(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	from := l.LogStartOffset()
	rr, err := l.ReadTo(from, 1<<20, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	aborted := l.AbortedTxns(from, rr.LastStableOffset)
	for _, s := range rr.Spans {
		buf := make([]byte, s.Len)
		if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
			t.Fatal(err)
		}
		for len(buf) > 0 {
			h, _ := parseHeader(buf)
			batch := buf[:h.Size()]
			buf = buf[h.Size():]
			if h.LastOffset() >= rr.LastStableOffset {
				t.Fatalf("committed read returned batch at %d, LSO %d", h.BaseOffset, rr.LastStableOffset)
			}
			if h.Control() {
				continue
			}
			skip := false
			for _, a := range aborted {
				if a.ProducerID == h.ProducerID && h.Transactional() && h.BaseOffset >= a.FirstOffset && h.BaseOffset < a.LastOffset {
					skip = true
				}
			}
			if skip {
				continue
			}
			recs, err := recordsOf(batch, &h)
			if err != nil {
				t.Fatal(err)
			}
			parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
				out = append(out, string(r.Value))
				return nil
			})
		}
	}
	return out
}

func TestTxnLastStableOffsetAndMarkers(t *testing.T) {
	l := openT(t, t.TempDir(), Config{})
	defer l.Close()
	mustAppend(t, l, simple(2, 1)) // 0,1: plain
	if got := l.LastStableOffset(); got != 2 {
		t.Fatalf("LSO without transactions %d, want 2", got)
	}
	mustAppend(t, l, txnBatch(7, 0, 0, 1, "a", "b")) // 2,3
	mustAppend(t, l, txnBatch(8, 0, 0, 1, "x"))      // 4
	mustAppend(t, l, txnBatch(7, 0, 2, 1, "c"))      // 5
	if got := l.LastStableOffset(); got != 2 {
		t.Fatalf("LSO with open transactions %d, want 2", got)
	}
	if got := committedValues(t, l); !slices.Equal(got, []string{"v0", "v1"}) {
		t.Fatalf("committed read before markers: %q", got)
	}
	// Producer 8 aborts first: the LSO stays at producer 7's start.
	if res := mustMarker(t, l, 8, 0, false); res.BaseOffset != 6 {
		t.Fatalf("abort marker at %d, want 6", res.BaseOffset)
	}
	if got := l.LastStableOffset(); got != 2 {
		t.Fatalf("LSO after one abort %d, want 2", got)
	}
	mustMarker(t, l, 7, 0, true) // 7
	if got, hw := l.LastStableOffset(), l.HighWatermark(); got != 8 || hw != 8 {
		t.Fatalf("LSO %d HW %d after both markers, want 8 8", got, hw)
	}
	want := []AbortedTxn{{ProducerID: 8, FirstOffset: 4, LastOffset: 6, LastStableOffset: 2}}
	if got := l.AbortedTxns(0, 8); !slices.Equal(got, want) {
		t.Fatalf("aborted %+v, want %+v", got, want)
	}
	if got := l.AbortedTxns(7, 8); len(got) != 0 {
		t.Fatalf("aborted from 7: %+v, want none", got)
	}
	if got := committedValues(t, l); !slices.Equal(got, []string{"v0", "v1", "a", "b", "c"}) {
		t.Fatalf("committed read: %q", got)
	}
	// A second marker finds nothing open and writes nothing.
	if res := mustMarker(t, l, 7, 0, true); !res.Duplicate || l.HighWatermark() != 8 {
		t.Fatalf("repeated marker: %+v, HW %d", res, l.HighWatermark())
	}
	// The producer carries on with its sequence in the same epoch.
	mustAppend(t, l, txnBatch(7, 0, 3, 1, "d"))
	// A bumped epoch fences the old one: markers and data.
	mustMarker(t, l, 7, 1, false)
	if _, err := l.AppendMarker(7, 0, true, 0, t0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("stale marker: %v, want ErrInvalidEpoch", err)
	}
	if _, err := l.Append(txnBatch(7, 0, 4, 1, "e"), t0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("fenced producer append: %v, want ErrInvalidEpoch", err)
	}
	mustAppend(t, l, txnBatch(7, 1, 0, 1, "f"))
	if _, err := os.Stat(filepath.Join(l.Dir(), segName(0, txnIndexExt))); err != nil {
		t.Fatalf("txn index: %v", err)
	}
}

// txnWorkload leaves a log with committed and aborted transactions and one
// still open, spread over several segments.
func txnWorkload(t *testing.T, l *Log) (committed []string, openFirst int64) {
	t.Helper()
	seq := map[int64]int32{}
	for i := range 30 {
		pid := int64(1 + i%3)
		vals := []string{fmt.Sprintf("t%d-a", i), fmt.Sprintf("t%d-b", i)}
		mustAppend(t, l, txnBatch(pid, 0, seq[pid], int64(i), vals...))
		seq[pid] += 2
		if i == 29 {
			return committed, l.HighWatermark() - 2
		}
		commit := i%3 != 2
		mustMarker(t, l, pid, 0, commit)
		if commit {
			committed = append(committed, vals...)
		}
	}
	return
}

func TestTxnStateSurvivesRestartAndCrash(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{SegmentBytes: 600}
			l := openT(t, dir, cfg)
			committed, openFirst := txnWorkload(t, l)
			wantAborted := l.AbortedTxns(0, l.HighWatermark())
			if len(wantAborted) != 9 {
				t.Fatalf("%d aborted transactions, want 9", len(wantAborted))
			}
			if crash {
				// Recovery rescans from the recovery point: move it
				// part way first, as Maintain does.
				if err := l.Maintain(t0); err != nil {
					t.Fatal(err)
				}
				mustMarker(t, l, 1, 0, false) // an abort after the snapshot
				mustAppend(t, l, txnBatch(1, 0, 20, 100, "late"))
				wantAborted = l.AbortedTxns(0, l.HighWatermark())
				// Abandoned without Close, as after kill -9.
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openT(t, dir, cfg)
			defer l2.Close()
			if got := l2.LastStableOffset(); got != openFirst {
				t.Fatalf("LSO after reopen %d, want %d (open transaction)", got, openFirst)
			}
			if got := l2.AbortedTxns(0, l2.HighWatermark()); !slices.Equal(got, wantAborted) {
				t.Fatalf("aborted after reopen:\n got %+v\nwant %+v", got, wantAborted)
			}
			if got := committedValues(t, l2); !slices.Equal(got, committed) {
				t.Fatalf("committed after reopen:\n got %q\nwant %q", got, committed)
			}
			// The open transaction is still open and can be ended.
			for _, pid := range []int64{1, 2, 3} {
				mustMarker(t, l2, pid, 0, true)
			}
			if l2.LastStableOffset() != l2.HighWatermark() {
				t.Fatalf("LSO %d below HW %d after ending everything", l2.LastStableOffset(), l2.HighWatermark())
			}
		})
	}
}

func TestTxnStateFileV1StillReads(t *testing.T) {
	st := &state{logStart: 0, next: 5, recoveryPoint: 5, producers: map[int64]*producer{3: {epoch: 2, batches: []producerBatch{{0, 4, 0, 4}}}}}
	b := encodeState(st)
	// Re-encode as version 1: drop the transaction fields (9 bytes per
	// producer), set the version, fix the checksum.
	v1 := append([]byte(nil), b[:len(b)-4-9]...)
	v1[4] = 1
	v1 = binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err := decodeState(v1)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.producers[3]; p == nil || p.epoch != 2 || p.inTxn || len(p.batches) != 1 {
		t.Fatalf("v1 producer %+v", got.producers[3])
	}
	st.producers[3].inTxn, st.producers[3].txnFirst = true, 2
	got, err = decodeState(encodeState(st))
	if err != nil || !got.producers[3].inTxn || got.producers[3].txnFirst != 2 {
		t.Fatalf("v2 round trip: %+v %v", got.producers[3], err)
	}
}

func TestCompactionDropsAbortedDataKeepsMarkers(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Compact: true, SegmentBytes: 400, MinCleanableRatio: 0.01, DeleteRetentionMs: 3_600_000}
	l := openT(t, dir, cfg)
	defer l.Close()
	kb := func(pid int64, seq int32, key, val string) []byte {
		return mkBatch(batchOpts{pid: pid, seq: seq, attrs: recordbatch.AttrTransactional}, rec{key: []byte(key), value: []byte(val), ts: t0.UnixMilli()})
	}
	mustAppend(t, l, kb(1, 0, "k", "committed-1"))
	mustMarker(t, l, 1, 0, true)
	mustAppend(t, l, kb(1, 1, "k", "aborted-2")) // must not displace committed-1
	mustAppend(t, l, kb(1, 2, "j", "aborted-j"))
	mustMarker(t, l, 1, 0, false)
	for i := range 20 {
		mustAppend(t, l, mkBatch(noPID, rec{key: []byte(fmt.Sprintf("f%d", i)), value: []byte("x"), ts: t0.UnixMilli()}))
	}
	// An open transaction: nothing at or past it may be cleaned.
	mustAppend(t, l, kb(2, 0, "k", "open"))
	for i := range 20 {
		mustAppend(t, l, mkBatch(noPID, rec{key: []byte(fmt.Sprintf("f%d", i)), value: []byte("y"), ts: t0.UnixMilli()}))
	}
	lso := l.LastStableOffset()
	if err := l.Maintain(t0); err != nil {
		t.Fatal(err)
	}
	offs, keys, vals := recordsFrom(t, l, 0)
	var seen []string
	for i := range offs {
		if offs[i] < lso {
			seen = append(seen, keys[i]+"="+vals[i])
		}
		if vals[i] == "aborted-2" || vals[i] == "aborted-j" {
			t.Fatalf("aborted record %s=%s survived compaction at %d", keys[i], vals[i], offs[i])
		}
	}
	if !slices.Contains(seen, "k=committed-1") {
		t.Fatalf("committed value lost to an aborted one: %q", seen)
	}
	if !slices.Contains(vals, "open") {
		t.Fatal("open transaction's record cleaned")
	}
	markers := func() int {
		n := 0
		for _, h := range readAll(t, l, 0) {
			if h.Control() {
				n++
			}
		}
		return n
	}
	if n := markers(); n != 2 {
		t.Fatalf("%d markers after compaction within delete.retention.ms, want 2", n)
	}
	// Past delete.retention.ms the markers go, and the abort's index
	// entry with them.
	mustMarker(t, l, 2, 0, true)
	for i := range 20 {
		mustAppend(t, l, mkBatch(noPID, rec{key: []byte(fmt.Sprintf("g%d", i)), value: []byte("z"), ts: t0.UnixMilli()}))
	}
	if err := l.Maintain(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := markers(); n != 0 {
		t.Fatalf("%d markers after delete.retention.ms, want 0", n)
	}
	if got := l.AbortedTxns(0, l.HighWatermark()); len(got) != 0 {
		t.Fatalf("aborted entries outlived their marker: %+v", got)
	}
}
