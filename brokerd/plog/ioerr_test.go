package plog

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestIOErrorsKeepTheCause: a disk error is ErrIO and still the syscall
// error underneath, so callers can tell a full disk from a failing one.
func TestIOErrorsKeepTheCause(t *testing.T) {
	t.Run("ENOSPC on append", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full")
		}
		// Once the log is open, its active segment becomes /dev/full:
		// every write to it fails with ENOSPC.
		dir := t.TempDir()
		l, err := Open(dir, Config{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		seg := filepath.Join(dir, "00000000000000000000.log")
		os.Remove(seg)
		if err := os.Symlink("/dev/full", seg); err != nil {
			t.Fatal(err)
		}
		_, err = l.Append(simple(3, 1), t0)
		if !errors.Is(err, ErrIO) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append to a full disk: %v, want ErrIO wrapping ENOSPC", err)
		}
		if l.HighWatermark() != 0 {
			t.Fatalf("failed append moved the high watermark to %d", l.HighWatermark())
		}
	})
	t.Run("ENOTDIR on open", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(filepath.Join(file, "log"), Config{}, Options{})
		if !errors.Is(err, ErrIO) || !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("open under a file: %v, want ErrIO wrapping ENOTDIR", err)
		}
	})
}
