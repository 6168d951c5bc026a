package plog

import (
	"fmt"
	"os"
)

// FS is the seam through which the log makes its files durable: every
// fsync of a segment, a cleaned segment or the state file, and every fsync
// of the log's folder, goes through it. Tests put a file system here that
// remembers what was synced and, on a simulated power loss, drops every
// byte and folder entry that was not, so a missing fsync loses
// acknowledged records in the test as it would on a machine.
//
// Reads, writes, renames and removals go straight to the operating
// system: the log hands *os.File to sendfile, and only the sync points
// decide what survives a crash.
type FS interface {
	// SyncFile flushes f's data and metadata to stable storage.
	SyncFile(f *os.File) error
	// SyncDir flushes the entries of the folder dir.
	SyncDir(dir string) error
}

// OSFS is the operating system's file system, the default.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) SyncFile(f *os.File) error { return f.Sync() }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncDir flushes the entries of dir through the log's FS.
func (l *Log) syncDir(dir string) error {
	if err := l.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}
