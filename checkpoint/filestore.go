package checkpoint

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// FS is the small file-system seam the file store writes through. OSFS is
// the real one; tests wrap it to inject torn writes and I/O errors at each
// step and to observe the exact sequence of effects.
type FS interface {
	MkdirAll(dir string) error
	// ReadFile returns the whole file; a missing file is an error for
	// which errors.Is(err, fs.ErrNotExist) holds.
	ReadFile(name string) ([]byte, error)
	// Create creates or truncates a file for writing.
	Create(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// SyncDir makes a rename inside dir durable.
	SyncDir(dir string) error
}

// File is a file being written.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// OSFS is the operating system's file system.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}
func (osFS) SyncDir(dir string) (err error) {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
	}()
	return d.Sync()
}

// fileMagic starts every checkpoint file.
const fileMagic = "STRTCKPT"

// fileVersion follows the magic.
const fileVersion = 1

// FileStore keeps each pipeline's state in one file of a folder, replaced
// atomically on every Save: write a temporary file, fsync it, rename it over
// the old one, fsync the folder. A crash at any step leaves either the old
// or the new file, never a mix.
type FileStore struct {
	dir string
	fs  FS

	mu struct {
		sync.Mutex
		// durable is, per pipeline, the state last written successfully
		// (or loaded); Save merges into a copy and only replaces it once
		// the new file is durable.
		durable map[string]*State
	}
}

// OpenFile opens (creating if needed) a file store in dir. fsys nil means
// OSFS.
func OpenFile(dir string, fsys FS) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: file store needs a dir", ErrConfig)
	}
	if fsys == nil {
		fsys = OSFS
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIO, err)
	}
	s := &FileStore{dir: dir, fs: fsys}
	s.mu.durable = make(map[string]*State)
	return s, nil
}

// fileName is the file of a pipeline. Names made of file-safe characters
// are used as they are, anything else is hex-encoded, so no pipeline name
// can escape the folder or collide with another.
func fileName(pipeline string) string {
	safe := pipeline != "" && pipeline[0] != '.'
	for _, c := range pipeline {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			safe = false
			break
		}
	}
	if safe {
		return pipeline + ".ckpt"
	}
	return "x-" + hex.EncodeToString([]byte(pipeline)) + ".ckpt"
}

// Path is the file holding a pipeline's state.
func (s *FileStore) Path(pipeline string) string {
	return filepath.Join(s.dir, fileName(pipeline))
}

// Load reads a pipeline's state from disk. A missing file is an empty
// state; a damaged one is ErrCorrupt naming the file.
func (s *FileStore) Load(ctx context.Context, pipeline string) (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.readLocked(pipeline)
	if err != nil {
		return nil, err
	}
	s.mu.durable[pipeline] = st
	return cloneState(st), nil
}

func (s *FileStore) readLocked(pipeline string) (*State, error) {
	name := s.Path(pipeline)
	b, err := s.fs.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Partitions: map[TP]*Partition{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIO, err)
	}
	st, err := decodeFile(pipeline, b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, name)
	}
	return st, nil
}

// Save merges st into the pipeline's stored state and replaces the file.
func (s *FileStore) Save(ctx context.Context, pipeline string, st *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.mu.durable[pipeline]
	if cur == nil {
		var err error
		if cur, err = s.readLocked(pipeline); err != nil {
			return err
		}
	}
	next := cloneState(cur)
	mergeState(next, st)
	if err := s.writeLocked(pipeline, encodeFile(pipeline, next)); err != nil {
		// Whether the new file got in place is unknown (a failed folder
		// fsync comes after the rename): read it back next time.
		delete(s.mu.durable, pipeline)
		return err
	}
	s.mu.durable[pipeline] = next
	return nil
}

// writeLocked replaces the pipeline's file: temp, fsync, close, rename,
// fsync folder. On failure the old file is untouched and the temp file is
// removed (best effort).
func (s *FileStore) writeLocked(pipeline string, data []byte) error {
	return s.writeAtomic(s.Path(pipeline), data)
}

// writeAtomic replaces the file final in the store's folder the same way:
// the checkpoint files and the cluster identity files beside them.
func (s *FileStore) writeAtomic(final string, data []byte) (err error) {
	tmp := final + ".tmp"
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("%w: create %s: %v", ErrIO, tmp, err)
	}
	defer func() {
		if err != nil {
			_ = s.fs.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: write %s: %v", ErrIO, tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: fsync %s: %v", ErrIO, tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %v", ErrIO, tmp, err)
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("%w: rename %s: %v", ErrIO, tmp, err)
	}
	// After the rename the new file is in place even if the folder fsync
	// fails; the error still reports that durability is not guaranteed.
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("%w: fsync dir %s: %v", ErrIO, s.dir, err)
	}
	return nil
}

// Close releases nothing: every Save is complete when it returns.
func (s *FileStore) Close() error { return nil }

// encodeFile lays out a pipeline's whole state (see doc.go): magic, version,
// the producer-id record and one record per partition, then a CRC-32C of
// everything before it.
func encodeFile(pipeline string, st *State) []byte {
	b := append([]byte(fileMagic), fileVersion)
	tps := sortedTPs(st.Partitions)
	b = binary.AppendUvarint(b, uint64(len(tps)+1))
	rec := encodeProducers(pipeline, st.ProducerIDs)
	b = binary.AppendUvarint(b, uint64(len(rec)))
	b = append(b, rec...)
	for _, tp := range tps {
		rec := encodePartition(pipeline, tp, st.Partitions[tp])
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeFile decodes a checkpoint file of the pipeline. Errors wrap
// ErrCorrupt and never panic.
func decodeFile(pipeline string, b []byte) (*State, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }
	if len(b) < len(fileMagic)+1+4 || string(b[:len(fileMagic)]) != fileMagic {
		return nil, bad("not a checkpoint file")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, bad("file checksum mismatch (torn write?)")
	}
	if v := body[len(fileMagic)]; v != fileVersion {
		return nil, bad(fmt.Sprintf("unknown file version %d", v))
	}
	r := reader{b: body[len(fileMagic)+1:]}
	n, ok := r.uvarint()
	if !ok || n > uint64(len(r.b)) {
		return nil, bad("bad record count")
	}
	st := &State{Partitions: map[TP]*Partition{}}
	for i := uint64(0); i < n; i++ {
		rec, ok := r.bytes()
		if !ok {
			return nil, bad("truncated record")
		}
		d, err := decodeRecord(rec)
		if err != nil {
			return nil, err
		}
		if d.pipeline != pipeline {
			return nil, bad(fmt.Sprintf("record of pipeline %q in the file of %q", d.pipeline, pipeline))
		}
		if d.kind == kindPartition {
			st.Partitions[d.tp] = d.part
		} else {
			st.ProducerIDs = d.producers
		}
	}
	if len(r.b) != 0 {
		return nil, bad("trailing bytes")
	}
	return st, nil
}

// cloneState deep-copies a state.
func cloneState(st *State) *State {
	out := &State{Partitions: make(map[TP]*Partition, len(st.Partitions))}
	out.ProducerIDs = append([]int64(nil), st.ProducerIDs...)
	for tp, p := range st.Partitions {
		out.Partitions[tp] = &Partition{Pos: p.Pos, Map: p.Map.Clone(), DestTopic: p.DestTopic}
	}
	return out
}

// mergeState applies a partial update: the given partitions replace the
// stored ones, the given producer ids are added to the stored ones.
func mergeState(dst, upd *State) {
	if upd == nil {
		return
	}
	for tp, p := range upd.Partitions {
		if p == nil {
			continue
		}
		dst.Partitions[tp] = &Partition{Pos: p.Pos, Map: p.Map.Clone(), DestTopic: p.DestTopic}
	}
	dst.ProducerIDs = mergeProducers(dst.ProducerIDs, upd.ProducerIDs)
}

// readOnlyFS refuses every change, so a read-only file store neither
// creates its folder nor writes.
type readOnlyFS struct{ FS }

var errReadOnly = errors.New("read-only")

func (readOnlyFS) MkdirAll(string) error       { return nil }
func (readOnlyFS) Create(string) (File, error) { return nil, errReadOnly }
func (readOnlyFS) Rename(string, string) error { return errReadOnly }
func (readOnlyFS) Remove(string) error         { return errReadOnly }
func (readOnlyFS) SyncDir(string) error        { return errReadOnly }
