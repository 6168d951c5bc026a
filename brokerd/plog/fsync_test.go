package plog

import (
	"path/filepath"
	"testing"
)

// An acknowledged append survives a power loss when the log fsyncs it:
// the crash file system drops every byte that was not synced, so an
// append path that skips its fsync loses records here. The control case
// (no fsync at all) shows the file system does drop unsynced data.
func TestFsyncAppendsSurviveCrash(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fsync bool
		cfg   Config
		// durable is how many of the 20 appended batches must
		// survive; exactly these survive under the crash file system.
		durable int
	}{
		{"options fsync", true, Config{SegmentBytes: 500}, 20},
		{"flush.messages=1", false, Config{SegmentBytes: 500, FlushMessages: 1}, 20},
		{"flush.messages=3 one segment", false, Config{FlushMessages: 3}, 18},
		// Six 83-byte batches fill a 500-byte segment. A roll syncs
		// the sealed segment and restarts the count, so the last two
		// batches (one roll after the last sync) are the unsynced tail.
		{"flush.messages=4 segments", false, Config{SegmentBytes: 500, FlushMessages: 4}, 18},
		{"no fsync", false, Config{SegmentBytes: 500}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p0")
			fs := newCrashFS(t, dir)
			l, err := Open(dir, tc.cfg, Options{Fsync: tc.fsync, FS: fs, Files: NewFileCache(8)})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				res := mustAppend(t, l, simple(2, int64(i)))
				if res.BaseOffset != int64(2*i) {
					t.Fatalf("append %d at offset %d", i, res.BaseOffset)
				}
			}
			// Power loss: the process is gone (no Close, no Sync)
			// and the disk keeps only what was synced.
			l.closeFiles()
			fs.Crash(t)

			l2 := openT(t, dir, tc.cfg)
			defer l2.Close()
			if hw := l2.HighWatermark(); hw != int64(2*tc.durable) {
				t.Fatalf("high watermark %d after power loss, want %d", hw, 2*tc.durable)
			}
			hs := readAll(t, l2, 0)
			if len(hs) != tc.durable {
				t.Fatalf("%d batches after power loss, want %d", len(hs), tc.durable)
			}
			for i, h := range hs {
				if h.BaseOffset != int64(2*i) {
					t.Fatalf("batch %d at offset %d, want %d", i, h.BaseOffset, 2*i)
				}
			}
			// The log takes appends again where it ended.
			if res := mustAppend(t, l2, simple(1, 99)); res.BaseOffset != int64(2*tc.durable) {
				t.Fatalf("append after recovery at %d, want %d", res.BaseOffset, 2*tc.durable)
			}
		})
	}
}
