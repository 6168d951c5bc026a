package plog

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentAppendReadMaintain runs appends, reads of random offsets,
// retention, compaction and DeleteRecords at once (meant for -race): every
// read returns whole, valid batches in offset order, and a reader holding
// spans can always read them, whatever was deleted or swapped meanwhile.
func TestConcurrentAppendReadMaintain(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			fc := NewFileCache(4)
			l, err := Open(t.TempDir(), Config{SegmentBytes: 2000, IndexIntervalBytes: 256, RetentionBytes: 20_000, Compact: compact, Delete: true}, Options{Files: fc})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var appended atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(stop)
				for i := 0; i < 1500; i++ {
					k := []byte(fmt.Sprintf("k%d", i%50))
					b := mkBatch(batchOpts{pid: 1, seq: int32(i * 2)}, rec{key: k, value: []byte("v"), ts: t0.UnixMilli()}, rec{key: k, value: []byte("w"), ts: t0.UnixMilli()})
					if _, err := l.Append(b, t0); err != nil {
						t.Error(err)
						return
					}
					appended.Add(2)
				}
			}()
			for r := 0; r < 2; r++ {
				wg.Add(1)
				go func(seed int64) {
					defer wg.Done()
					rng := rand.New(rand.NewSource(seed))
					for {
						select {
						case <-stop:
							return
						default:
						}
						ls, hw := l.LogStartOffset(), l.HighWatermark()
						if hw == ls {
							continue
						}
						off := ls + rng.Int63n(hw-ls)
						rr, err := l.Read(off, int64(100+rng.Intn(5000)), true)
						if errors.Is(err, ErrOffsetOutOfRange) {
							continue // retention moved the start meanwhile
						}
						if err != nil {
							t.Error(err)
							return
						}
						last := int64(-1)
						for _, s := range rr.Spans {
							buf := make([]byte, s.Len)
							if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
								t.Errorf("span read: %v", err)
							}
							for len(buf) > 0 {
								h, err := parseHeader(buf)
								if err == nil {
									err = checkCRC(buf[:h.Size()], &h)
								}
								if err != nil {
									t.Errorf("read at %d: %v", off, err)
									return
								}
								if h.BaseOffset <= last {
									t.Errorf("offsets not ascending: %d after %d", h.BaseOffset, last)
								}
								last = h.LastOffset()
								buf = buf[h.Size():]
							}
						}
						rr.Release()
					}
				}(int64(r))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Maintain(t0); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 9 {
						if _, err := l.DeleteRecords(max(l.LogStartOffset(), l.HighWatermark()-400)); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
			wg.Wait()
			if l.HighWatermark() != appended.Load() {
				t.Fatalf("HW %d, appended %d", l.HighWatermark(), appended.Load())
			}
			readAll(t, l, l.LogStartOffset())
			if n := fc.Open(); n > 4 {
				t.Fatalf("%d files open, cache max 4", n)
			}
		})
	}
}

// TestStateWriteCrash: a crash while writing plog.state leaves a partial
// temp file; the previous state file must still be the one read.
func TestStateWriteCrash(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Config{})
	for i := 0; i < 5; i++ {
		mustAppend(t, l, simple(2, 1))
	}
	if _, err := l.DeleteRecords(4); err != nil {
		t.Fatal(err)
	}
	// The crash: a torn temp file and no Close.
	if err := os.WriteFile(filepath.Join(dir, stateFile+".tmp"), []byte("PLST\x01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	l2 := openT(t, dir, Config{})
	defer l2.Close()
	if ls, hw := l2.LogStartOffset(), l2.HighWatermark(); ls != 4 || hw != 10 {
		t.Fatalf("start %d hw %d, want 4 and 10", ls, hw)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp state file left behind: %v", err)
	}
}
