package plog

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestIdlePartitionsAreCheap opens 10,000 partition folders that each hold
// data (three segments) after a clean shutdown, and checks the heap cost
// per log, the open descriptors, and that touching every log keeps the
// descriptors bounded by the shared FileCache.
func TestIdlePartitionsAreCheap(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	root := t.TempDir()
	tmpl := filepath.Join(root, "template")
	l := openT(t, tmpl, Config{SegmentBytes: 300})
	for i := 0; i < 12; i++ {
		mustAppend(t, l, mkBatch(batchOpts{pid: 9, seq: int32(i)}, rec{key: []byte("k"), value: []byte("some value"), ts: int64(i)}))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range mustReadDir(t, tmpl) {
		b, err := os.ReadFile(filepath.Join(tmpl, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(root, fmt.Sprintf("topic-%d", i))
		os.Mkdir(dirs[i], 0o755)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dirs[i], name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	const maxOpen = 64
	fc := NewFileCache(maxOpen)
	fdsBefore := openFDs(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	logs := make([]*Log, n)
	for i, d := range dirs {
		lg, err := Open(d, Config{SegmentBytes: 300}, Options{Files: fc})
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = lg
	}
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perLog := (int64(after.HeapInuse) - int64(before.HeapInuse)) / int64(n)
	fds := openFDs(t) - fdsBefore
	t.Logf("opened %d logs in %v (%v each), heap %d bytes per log, %d new descriptors", n, elapsed, elapsed/time.Duration(n), perLog, fds)
	if perLog > 8<<10 {
		t.Errorf("heap per idle log %d bytes, limit 8 KiB", perLog)
	}
	if fds > 4 {
		t.Errorf("%d descriptors open after opening idle logs", fds)
	}
	if logs[n-1].HighWatermark() != 12 {
		t.Fatalf("HW %d", logs[n-1].HighWatermark())
	}
	// Touch every log: descriptors stay bounded by the cache.
	for _, lg := range logs {
		rr, err := lg.Read(0, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Bytes == 0 {
			t.Fatal("no data")
		}
		rr.Release()
	}
	if fds := openFDs(t) - fdsBefore; fds > maxOpen+4 {
		t.Errorf("%d descriptors open after reading every log, cache max %d", fds, maxOpen)
	}
	for _, lg := range logs {
		lg.Close()
	}
	runtime.KeepAlive(logs)
}
