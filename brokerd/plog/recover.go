package plog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"strait/internal/recordbatch"
)

// recover rebuilds the log after an unclean shutdown: it finishes or
// undoes an interrupted compaction swap, then validates every batch from
// the segment holding the recovery point (length, magic, CRC-32C, offsets
// ascending), truncates at the first bad byte, drops any later segment,
// rebuilds the indexes of what it scanned and replays producer state from
// the last snapshot.
func (l *Log) recover(bases []int64, st *state) error {
	if err := l.finishSwaps(); err != nil {
		return err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	bases = bases[:0]
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if b, ok := parseSegName(e.Name()); ok {
			bases = append(bases, b)
		}
	}
	fileAborted := l.loadTxnIndexes(names)
	// Aborted transactions whose marker is at or after regenFrom are
	// rebuilt from the markers themselves; older ones come from the
	// .txnindex files.
	var regen []AbortedTxn
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	var rp, snapAt, logStart, cleanedTo, next int64
	var producers map[int64]*producer
	if st != nil {
		rp, snapAt, logStart, cleanedTo = st.recoveryPoint, st.next, st.logStart, st.cleanedTo
		producers = st.producers
		next = st.next
	}
	segs := make([]*segment, len(bases))
	for i, b := range bases {
		segs[i] = l.newSegment(b, i == len(bases)-1)
	}
	start := sort.Search(len(segs), func(i int) bool { return segs[i].base > rp }) - 1
	if start < 0 {
		start = 0
	}
	interval := int64(l.mu.cfg.IndexIntervalBytes)
	expected := int64(0)
	if len(segs) > 0 {
		expected = segs[start].base
	}
	for i := start; i < len(segs); i++ {
		seg := segs[i]
		expected = max(expected, seg.base)
		end, size, err := l.recoverSegment(seg, &expected, snapAt, &producers, &regen, interval)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return err
		}
		if i+1 < len(segs) && expected > segs[i+1].base {
			err = fmt.Errorf("%w: segment %d runs into segment %d", ErrCorrupt, seg.base, segs[i+1].base)
		}
		if err != nil || end < size {
			l.logger.Warn("plog: truncating torn or corrupt tail", "dir", l.dir, "segment", seg.base, "at", end, "size", size, "err", err)
			if err := os.Truncate(seg.cf.path, end); err != nil {
				return fmt.Errorf("%w: truncate: %w", ErrIO, err)
			}
			seg.size = end
			for _, later := range segs[i+1:] {
				l.removeSegmentFiles(later.base)
			}
			segs = segs[:i+1]
			seg.cf.writable = true
			break
		}
	}
	switch {
	case len(segs) > 0:
		next = max(expected, segs[len(segs)-1].base)
	case st == nil:
		next = 0
	}
	regenFrom, rewriteFrom := snapAt, start
	if snapAt > next {
		// The tail holding the snapshot's batches is gone (only
		// possible after a power loss without fsync): rebuild producer
		// state from every batch still on disk.
		producers, regen, regenFrom, rewriteFrom = nil, nil, 0, 0
		for _, seg := range segs {
			f, err := os.Open(seg.cf.path)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrIO, err)
			}
			size := seg.size
			if !seg.loaded {
				fi, _ := f.Stat()
				size = fi.Size()
			}
			_, err = scanSegment(f, 0, size, true, func(_ int64, h *recordbatch.Header, batch []byte) error {
				producers = applyBatch(producers, h, batch, &regen)
				return nil
			})
			f.Close()
			if err != nil && !errors.Is(err, ErrCorrupt) {
				return err
			}
		}
	}
	if len(segs) > 0 {
		logStart = max(logStart, segs[0].base)
	}
	logStart = min(logStart, next)
	cleanedTo = min(cleanedTo, next)
	l.mu.segs = segs
	l.mu.next = next
	l.mu.logStart = logStart
	l.mu.cleanedTo = cleanedTo
	l.mu.producers = producers
	l.mu.ongoing = countOngoing(producers)
	var aborted []AbortedTxn
	for _, e := range fileAborted {
		if e.LastOffset < regenFrom && e.LastOffset < next {
			aborted = append(aborted, e)
		}
	}
	for _, e := range regen {
		if e.LastOffset < next {
			aborted = append(aborted, e)
		}
	}
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].LastOffset < aborted[j].LastOffset })
	l.mu.aborted = aborted
	for i := rewriteFrom; i < len(segs); i++ {
		end := int64(math.MaxInt64)
		if i+1 < len(segs) {
			end = segs[i+1].base
		}
		if err := l.writeTxnIndex(segs[i].base, end, aborted); err != nil {
			return err
		}
	}
	l.mu.dirty = true
	os.Remove(filepath.Join(l.dir, cleanMarker))
	// What was recovered is now the truth: sync it and move the
	// recovery point past it so the next crash rescans less.
	for _, seg := range segs[start:] {
		if err := l.syncSegment(seg); err != nil {
			return err
		}
	}
	if seg := l.activeLocked(); seg != nil {
		l.mu.recoveryPoint = seg.base
	}
	if err := l.writeFileAtomic(l.dir, stateFile, encodeState(l.stateLocked())); err != nil {
		return err
	}
	return nil
}

// recoverSegment validates one segment's batches, rebuilding its indexes
// and replaying producer state for batches at or after snapAt. It returns
// the end of the last good batch and the file size.
func (l *Log) recoverSegment(seg *segment, expected *int64, snapAt int64, producers *map[int64]*producer, aborted *[]AbortedTxn, interval int64) (int64, int64, error) {
	f, err := os.Open(seg.cf.path)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrIO, err)
	}
	size := fi.Size()
	seg.idx, seg.tidx = nil, nil
	seg.maxTs, seg.maxTsBatch, seg.sinceIndex = -1, -1, 0
	end, err := scanSegment(f, 0, size, true, func(pos int64, h *recordbatch.Header, batch []byte) error {
		// Compaction leaves gaps, so offsets need only ascend.
		if h.BaseOffset < *expected {
			return fmt.Errorf("%w: batch at %d has offset %d, expected at least %d", ErrCorrupt, pos, h.BaseOffset, *expected)
		}
		seg.indexBatch(pos, h, interval)
		if h.BaseOffset >= snapAt {
			*producers = applyBatch(*producers, h, batch, aborted)
		}
		*expected = h.LastOffset() + 1
		return nil
	})
	seg.size = end
	seg.sealTimeIndex()
	seg.loaded = true
	if werr := l.writeIndexes(seg); werr != nil {
		return end, size, werr
	}
	return end, size, err
}

func (l *Log) removeSegmentFiles(base int64) {
	for _, ext := range []string{".log", ".index", ".timeindex", txnIndexExt} {
		os.Remove(l.segPath(base, ext))
	}
}

// finishSwaps completes a compaction swap a crash interrupted. A
// "B.log.swap" file is a complete cleaned replacement for the segments
// from B up to its last offset (it is only renamed to .swap once fully
// written and synced), so it replaces them; ".cleaned" files were never
// complete and are deleted.
func (l *Log) finishSwaps() error {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".cleaned"), strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(l.dir, name))
		case strings.HasSuffix(name, ".log.swap"):
			base, ok := parseSegName(strings.TrimSuffix(name, ".swap"))
			if !ok {
				continue
			}
			path := filepath.Join(l.dir, name)
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrIO, err)
			}
			fi, _ := f.Stat()
			last := base
			_, serr := scanSegment(f, 0, fi.Size(), false, func(_ int64, h *recordbatch.Header, _ []byte) error {
				last = h.LastOffset()
				return nil
			})
			f.Close()
			if serr != nil {
				os.Remove(path)
				continue
			}
			for _, e2 := range ents {
				if b, ok := parseSegName(e2.Name()); ok && b > base && b <= last {
					l.removeSegmentFiles(b)
				}
			}
			if err := os.Rename(path, l.segPath(base, ".log")); err != nil {
				return fmt.Errorf("%w: %w", ErrIO, err)
			}
			os.Remove(l.segPath(base, ".index"))
			os.Remove(l.segPath(base, ".timeindex"))
		}
	}
	return l.syncDir(l.dir)
}
