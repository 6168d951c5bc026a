package plog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// crashFS is an FS that remembers what reached stable storage and, on
// Crash, puts the watched folders back to exactly that: every byte written
// after a file's last fsync is gone, every folder entry created after the
// folder's last fsync is gone, and a file whose entry was synced but whose
// data never was comes back empty. It is the model of power loss that
// pebble's strict in-memory file system makes, applied to real files so
// the log keeps its *os.File for sendfile.
//
// Removals and renames are treated as the new state once the folder is
// synced, and as undone otherwise: Crash rebuilds each folder from the
// entries it had at its last SyncDir.
type crashFS struct {
	mu struct {
		sync.Mutex
		// data holds the content of each inode as of its last fsync.
		data map[uint64][]byte
		// dirs holds, per watched folder, its entries (name → inode)
		// as of its last fsync.
		dirs map[string]map[string]uint64
	}
}

// newCrashFS watches the given folders, taking their current content as
// durable.
func newCrashFS(t testing.TB, dirs ...string) *crashFS {
	t.Helper()
	c := &crashFS{}
	c.mu.data = make(map[uint64][]byte)
	c.mu.dirs = make(map[string]map[string]uint64)
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.snapshot(d); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func inode(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }

// snapshot takes every file in dir, entry and content, as durable.
func (c *crashFS) snapshot(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	names := make(map[string]uint64)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		names[e.Name()] = inode(fi)
		c.mu.data[inode(fi)] = b
	}
	c.mu.dirs[filepath.Clean(dir)] = names
	return nil
}

func (c *crashFS) SyncFile(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// f may be open write-only: read the content through its name, and
	// make sure the name still leads to the same inode.
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	if now, err := os.Stat(f.Name()); err != nil || !os.SameFile(fi, now) {
		return fmt.Errorf("crashfs: %s was replaced while open", f.Name())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.data[inode(fi)] = b
	return nil
}

func (c *crashFS) SyncDir(dir string) error {
	if err := OSFS.SyncDir(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	names := make(map[string]uint64)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		names[e.Name()] = inode(fi)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.dirs[filepath.Clean(dir)] = names
	return nil
}

// Crash puts every watched folder back to its durable state, as a power
// loss would leave it, then takes that state as the new durable one. The
// caller must have closed every descriptor of the old process.
func (c *crashFS) Crash(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	dirs := make(map[string]map[string][]byte)
	for d, names := range c.mu.dirs {
		files := make(map[string][]byte)
		for name, ino := range names {
			files[name] = c.mu.data[ino] // nil: entry synced, data never
		}
		dirs[d] = files
	}
	c.mu.data = make(map[uint64][]byte)
	c.mu.dirs = make(map[string]map[string]uint64)
	c.mu.Unlock()
	for d, files := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.snapshot(d); err != nil {
			t.Fatal(err)
		}
	}
}

// The crash file system itself: unsynced appends and unsynced entries go,
// synced ones stay.
func TestCrashFS(t *testing.T) {
	dir := t.TempDir()
	c := newCrashFS(t, dir)
	write := func(name, s string, sync bool) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		if sync {
			if err := c.SyncFile(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("a", "synced", true)
	write("b", "never", false)
	if err := c.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	write("a", "+lost", false)
	write("c", "entry lost", true)
	if err := os.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	c.Crash(t)
	got := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		got[e.Name()] = string(b)
	}
	want := map[string]string{"a": "synced", "b": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after crash: %q, want %q", got, want)
	}
}
