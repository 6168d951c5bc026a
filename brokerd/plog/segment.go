package plog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"strait/internal/recordbatch"
)

// segment is one .log file and its indexes. Until a read, an append or
// maintenance touches it, a segment is just its base offset: nothing is
// opened or loaded, which keeps idle partitions small.
type segment struct {
	base int64
	cf   cachedFile

	// mu guards the lazy load for readers that share the log's read
	// lock. Once loaded is true, the fields below change only under the
	// log's write lock (appends to the active segment).
	mu     sync.Mutex
	loaded bool
	size   int64       // committed bytes; readers never look past it
	idx    offsetIndex // sparse: an entry every IndexIntervalBytes
	tidx   timeIndex
	// maxTs is the largest batch max timestamp; maxTsBatch the base
	// offset of the batch holding it (-1 when empty).
	maxTs, maxTsBatch int64
	sinceIndex        int64 // bytes appended since the last index entry
	rollAt            int64 // ms of the first append (age-based roll)
}

func segName(base int64, ext string) string { return fmt.Sprintf("%020d%s", base, ext) }

func (l *Log) segPath(base int64, ext string) string { return filepath.Join(l.dir, segName(base, ext)) }

// parseSegName returns the base offset of a "%020d.log" name.
func parseSegName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, ".log")
	if !ok || len(stem) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

func (l *Log) newSegment(base int64, writable bool) *segment {
	s := &segment{base: base, maxTs: -1, maxTsBatch: -1, rollAt: -1}
	s.cf.path = l.segPath(base, ".log")
	s.cf.writable = writable
	return s
}

// ensureLoaded reads the segment's size and indexes. A missing or damaged
// index file is rebuilt by scanning the segment: indexes are hints, the
// .log file is the truth.
func (l *Log) ensureLoaded(s *segment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	f, err := l.files.acquire(&s.cf)
	if err != nil {
		return fmt.Errorf("%w: open segment: %w", ErrIO, err)
	}
	defer l.files.release(&s.cf)
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat segment: %w", ErrIO, err)
	}
	s.size = fi.Size()
	idx, _ := os.ReadFile(l.segPath(s.base, ".index"))
	tidx, _ := os.ReadFile(l.segPath(s.base, ".timeindex"))
	if s.size > 0 && (!offsetIndex(idx).valid(s.size) || !timeIndex(tidx).valid() || len(tidx) == 0) {
		if _, err := l.rebuildIndexes(s, f, s.size); err != nil {
			return err
		}
	} else {
		s.idx, s.tidx = idx, tidx
		if ts, rel, ok := s.tidx.last(); ok {
			s.maxTs, s.maxTsBatch = ts, s.base+int64(rel)
		}
		if s.tidx.n() > 0 {
			s.rollAt, _ = s.tidx.at(0)
		}
		s.sinceIndex = s.size
		if n := s.idx.n(); n > 0 {
			_, p := s.idx.at(n - 1)
			s.sinceIndex = s.size - int64(p)
		}
	}
	s.loaded = true
	return nil
}

// rebuildIndexes rebuilds a segment's in-memory indexes from its batch
// headers up to limit and returns the end of the last whole batch.
func (l *Log) rebuildIndexes(s *segment, f *os.File, limit int64) (int64, error) {
	s.idx, s.tidx = nil, nil
	s.maxTs, s.maxTsBatch, s.sinceIndex = -1, -1, 0
	interval := int64(l.cfgIndexInterval())
	end, err := scanSegment(f, 0, limit, false, func(pos int64, h *recordbatch.Header, _ []byte) error {
		s.indexBatch(pos, h, interval)
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return end, err
	}
	s.size = limit
	s.sealTimeIndex()
	return end, nil
}

// indexBatch records a batch appended at pos in the indexes.
func (s *segment) indexBatch(pos int64, h *recordbatch.Header, interval int64) {
	if s.rollAt < 0 {
		s.rollAt = h.MaxTimestamp
	}
	grew := h.MaxTimestamp > s.maxTs
	if grew {
		s.maxTs, s.maxTsBatch = h.MaxTimestamp, h.BaseOffset
	}
	if s.sinceIndex >= interval && pos > 0 {
		s.idx = s.idx.add(uint32(h.BaseOffset-s.base), uint32(pos))
		s.sinceIndex = 0
		s.maybeTimeEntry()
	}
	s.sinceIndex += h.Size()
}

// maybeTimeEntry appends (maxTs, batch) when the max timestamp grew since
// the last time index entry.
func (s *segment) maybeTimeEntry() {
	if s.maxTsBatch < 0 {
		return
	}
	if ts, _, ok := s.tidx.last(); ok && ts >= s.maxTs {
		return
	}
	s.tidx = s.tidx.add(s.maxTs, uint32(s.maxTsBatch-s.base))
}

// sealTimeIndex makes the last time index entry the segment's maximum, so a
// sealed segment's max timestamp is one read away.
func (s *segment) sealTimeIndex() { s.maybeTimeEntry() }

// writeIndexes stores the segment's indexes next to its .log file. They
// need no atomic replace: a torn index fails validation and is rebuilt.
func (l *Log) writeIndexes(s *segment) error {
	if err := os.WriteFile(l.segPath(s.base, ".index"), s.idx, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := os.WriteFile(l.segPath(s.base, ".timeindex"), s.tidx, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}

// scanSegment walks the batches of f from pos up to limit, calling fn for
// each. With verify, each batch is read whole and its CRC checked, and fn
// gets its bytes. It returns the position after the last good batch; the
// error (wrapping ErrCorrupt) says why the walk stopped early, nil when it
// reached limit exactly.
func scanSegment(f *os.File, pos, limit int64, verify bool, fn func(pos int64, h *recordbatch.Header, batch []byte) error) (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, pos, limit-pos), 256<<10)
	var buf []byte
	for pos < limit {
		hb, err := r.Peek(recordbatch.HeaderSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return pos, fmt.Errorf("%w: torn batch header at %d", ErrCorrupt, pos)
			}
			return pos, fmt.Errorf("%w: %w", ErrIO, err)
		}
		h, err := parseHeader(hb)
		if err != nil {
			return pos, fmt.Errorf("at %d: %w", pos, err)
		}
		if pos+h.Size() > limit {
			return pos, fmt.Errorf("%w: torn batch at %d", ErrCorrupt, pos)
		}
		var batch []byte
		if verify {
			if int64(cap(buf)) < h.Size() {
				buf = make([]byte, h.Size())
			}
			batch = buf[:h.Size()]
			if _, err := io.ReadFull(r, batch); err != nil {
				return pos, fmt.Errorf("%w: %w", ErrIO, err)
			}
			if err := checkCRC(batch, &h); err != nil {
				return pos, fmt.Errorf("at %d: %w", pos, err)
			}
		} else if _, err := r.Discard(int(h.Size())); err != nil {
			return pos, fmt.Errorf("%w: torn batch at %d", ErrCorrupt, pos)
		}
		if err := fn(pos, &h, batch); err != nil {
			return pos, err
		}
		pos += h.Size()
	}
	return pos, nil
}

// headerReader reads batch headers at arbitrary positions through a small
// window, so walking many small batches costs few syscalls.
type headerReader struct {
	f     *os.File
	limit int64
	buf   [8192]byte
	start int64
	n     int
	// big is set when the last header read described a batch larger than
	// buf: the next header is then past what a full read would fetch, so a
	// miss reads just the header instead of copying 8 KiB of records that
	// nobody looks at. It survives reset, as a hint for the next read.
	big bool
}

var headerReaders = sync.Pool{New: func() any { return new(headerReader) }}

func (r *headerReader) reset(f *os.File, limit int64) {
	r.f, r.limit, r.start, r.n = f, limit, 0, 0
}

func (r *headerReader) at(pos int64) (recordbatch.Header, error) {
	if pos+recordbatch.HeaderSize > r.limit {
		return recordbatch.Header{}, fmt.Errorf("%w: batch header at %d beyond segment end %d", ErrCorrupt, pos, r.limit)
	}
	if pos < r.start || pos+recordbatch.HeaderSize > r.start+int64(r.n) {
		want := min(int64(len(r.buf)), r.limit-pos)
		if r.big {
			want = min(recordbatch.HeaderSize, want)
		}
		n, err := r.f.ReadAt(r.buf[:want], pos)
		if int64(n) < recordbatch.HeaderSize {
			return recordbatch.Header{}, fmt.Errorf("%w: read header at %d: %w", ErrIO, pos, err)
		}
		r.start, r.n = pos, n
	}
	off := pos - r.start
	h, err := parseHeader(r.buf[off : off+recordbatch.HeaderSize])
	if err != nil {
		return h, fmt.Errorf("at %d: %w", pos, err)
	}
	r.big = h.Size() >= int64(len(r.buf))
	if pos+h.Size() > r.limit {
		return h, fmt.Errorf("%w: batch at %d runs past segment end", ErrCorrupt, pos)
	}
	return h, nil
}
