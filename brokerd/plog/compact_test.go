package plog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"strait/internal/recordbatch"
)

func TestCompactionKeepsLatestPerKey(t *testing.T) {
	// The acceptance size: a million writes over a thousand keys (well
	// under a second here).
	writes, keys, perBatch := 1_000_000, 1000, 100
	if testing.Short() {
		writes = 50_000
	}
	dir := t.TempDir()
	cfg := Config{Compact: true, SegmentBytes: 1 << 20, SegmentMs: 60_000}
	l := openT(t, dir, cfg)
	latest := make(map[string]string)
	recs := make([]rec, perBatch)
	for i := 0; i < writes; i += perBatch {
		for j := range recs {
			n := i + j
			k := fmt.Sprintf("key-%04d", (n*7919)%keys)
			v := fmt.Sprintf("value-%d", n)
			recs[j] = rec{key: []byte(k), value: []byte(v), ts: t0.UnixMilli()}
			latest[k] = v
		}
		mustAppend(t, l, mkBatch(noPID, recs...))
	}
	hw := l.HighWatermark()

	// Produce and fetch keep working while the cleaner runs.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rr, err := l.Read(l.LogStartOffset(), 1<<16, true)
			if err != nil {
				t.Error(err)
				return
			}
			rr.Release()
		}
	}()
	start := time.Now()
	// An hour later segment.ms seals the active segment too, so the
	// cleaner sees every write.
	for pass := 0; pass < 4; pass++ {
		if err := l.Maintain(t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("cleaned %d writes in %v", writes, time.Since(start))

	offs, ks, vs := recordsFrom(t, l, 0)
	got := make(map[string]string)
	for i := range ks {
		got[ks[i]] = vs[i]
	}
	if len(offs) > keys+keys/10 {
		t.Fatalf("%d records left after compaction, want about %d", len(offs), keys)
	}
	for k, v := range latest {
		if got[k] != v {
			t.Fatalf("key %s: got %q, want latest %q", k, got[k], v)
		}
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] <= offs[i-1] {
			t.Fatalf("offsets not ascending at %d: %d after %d", i, offs[i], offs[i-1])
		}
	}
	if l.HighWatermark() != hw {
		t.Fatalf("HW moved from %d to %d", hw, l.HighWatermark())
	}
	// New appends continue at the same offsets after a clean reopen.
	l.Close()
	l = openT(t, dir, cfg)
	defer l.Close()
	if res := mustAppend(t, l, mkBatch(noPID, rec{key: []byte("z"), value: []byte("1"), ts: 1})); res.BaseOffset != hw {
		t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, hw)
	}
	offs2, _, _ := recordsFrom(t, l, 0)
	if len(offs2) != len(offs)+1 {
		t.Fatalf("%d records after reopen, want %d", len(offs2), len(offs)+1)
	}
}

func TestCompactionTombstonesAndCompressed(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{Compact: true, SegmentBytes: 2000, DeleteRetentionMs: 1000})
	defer l.Close()
	now := t0.UnixMilli()
	// A zstd batch whose records are later superseded in part.
	raw := mkBatch(noPID, rec{key: []byte("a"), value: []byte("a1"), ts: now}, rec{key: []byte("b"), value: []byte("b1"), ts: now})
	mustAppend(t, l, compressBatch(t, raw))
	// An untouched compressed batch stays compressed.
	keep := compressBatch(t, mkBatch(noPID, rec{key: []byte("c"), value: []byte("c1"), ts: now}))
	mustAppend(t, l, keep)
	mustAppend(t, l, mkBatch(noPID, rec{key: []byte("a"), value: []byte("a2"), ts: now}))
	// Tombstones: an old one (dropped) and a recent one (kept).
	mustAppend(t, l, mkBatch(noPID, rec{key: []byte("b"), ts: now - 5000}))
	mustAppend(t, l, mkBatch(noPID, rec{key: []byte("d"), value: []byte("d1"), ts: now}))
	mustAppend(t, l, mkBatch(noPID, rec{key: []byte("d"), ts: now}))
	for i := 0; i < 40; i++ {
		mustAppend(t, l, mkBatch(noPID, rec{key: []byte("f"), value: []byte(fmt.Sprint(i)), ts: now}))
	}
	if err := l.Maintain(t0); err != nil {
		t.Fatal(err)
	}
	offs, ks, vs := recordsFrom(t, l, 0)
	got := map[string]string{}
	var gotOff = map[string]int64{}
	for i := range ks {
		if _, seen := got[ks[i]]; seen && ks[i] != "f" {
			t.Fatalf("key %s twice", ks[i])
		}
		got[ks[i]] = vs[i]
		gotOff[ks[i]] = offs[i]
	}
	want := map[string]string{"a": "a2", "c": "c1", "d": "<nil>", "f": "39"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["b"]; ok {
		t.Errorf("old tombstone for b kept")
	}
	if gotOff["c"] != 2 || gotOff["a"] != 3 {
		t.Errorf("offsets changed: %v", gotOff)
	}
	// The untouched compressed batch is stored byte for byte.
	data, _ := os.ReadFile(filepath.Join(dir, segName(0, ".log")))
	kb := append([]byte(nil), keep...)
	setBaseOffset(kb, 2)
	if !bytes.Contains(data, kb) {
		t.Errorf("untouched compressed batch was rewritten")
	}
}

// compressBatch returns the zstd-compressed form of an uncompressed batch.
func compressBatch(t *testing.T, b []byte) []byte {
	h, _ := parseHeader(b)
	enc, _ := zstd.NewWriter(nil)
	body := enc.EncodeAll(b[recordbatch.HeaderSize:h.Size()], nil)
	out := append(append([]byte(nil), b[:recordbatch.HeaderSize]...), body...)
	putU32(out[recordbatch.OffLength:], uint32(len(out)-recordbatch.LengthOverhead))
	putU16(out[recordbatch.OffAttributes:], uint16(h.Attributes|4))
	recordbatch.UpdateCRC(out)
	return out
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
func putU16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

func TestCompactionSwapRecovery(t *testing.T) {
	// A crash between the .swap rename and the final rename: recovery
	// completes the swap.
	dir := t.TempDir()
	l := openT(t, dir, Config{Compact: true, SegmentBytes: 500})
	// A unique first key keeps segment 0 non-empty after cleaning.
	mustAppend(t, l, mkBatch(noPID, rec{key: []byte("first"), value: []byte("x"), ts: 1}))
	for i := 1; i < 60; i++ {
		mustAppend(t, l, mkBatch(noPID, rec{key: []byte(fmt.Sprint(i % 3)), value: []byte(fmt.Sprint(i)), ts: 1}))
	}
	hw := l.HighWatermark()
	// Simulate: build the cleaned file by compacting a copy, then stage
	// it as a .swap next to the originals.
	copyDir := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o644)
	}
	// A large segment.bytes there merges every sealed segment into one
	// cleaned file based at 0.
	lc := openT(t, copyDir, Config{Compact: true, SegmentBytes: 1 << 20})
	if err := lc.Maintain(t0); err != nil {
		t.Fatal(err)
	}
	cleaned, err := os.ReadFile(filepath.Join(copyDir, segName(0, ".log")))
	if err != nil {
		t.Fatal(err)
	}
	lc.Close()
	os.WriteFile(filepath.Join(dir, segName(0, ".log.swap")), cleaned, 0o644)
	os.WriteFile(filepath.Join(dir, segName(0, ".log.cleaned")), []byte("partial"), 0o644)
	l2 := openT(t, dir, Config{Compact: true, SegmentBytes: 500})
	defer l2.Close()
	if l2.HighWatermark() != hw {
		t.Fatalf("HW %d, want %d", l2.HighWatermark(), hw)
	}
	_, ks, vs := recordsFrom(t, l2, 0)
	last := map[string]string{}
	for i := range ks {
		last[ks[i]] = vs[i]
	}
	for k, v := range map[string]string{"0": "57", "1": "58", "2": "59"} {
		if last[k] != v {
			t.Fatalf("key %s = %q, want %q", k, last[k], v)
		}
	}
	if len(ks) > 35 {
		t.Fatalf("%d records: swap not applied", len(ks))
	}
	for _, e := range mustReadDir(t, dir) {
		if filepath.Ext(e) == ".swap" || filepath.Ext(e) == ".cleaned" {
			t.Fatalf("leftover %s", e)
		}
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
