package plog

import (
	"fmt"
	"os"
	"sort"
	"time"

	"strait/internal/recordbatch"
)

// Maintain applies retention (time, size) and, for compacted logs, runs the
// cleaner when enough is dirty. Called periodically by brokerd's background
// loop, never on the produce or fetch path.
func (l *Log) Maintain(now time.Time) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	if err := l.rollByAge(now); err != nil {
		return err
	}
	if err := l.applyRetention(now); err != nil {
		return err
	}
	if err := l.advanceRecoveryPoint(); err != nil {
		return err
	}
	l.mu.RLock()
	compact, closed := l.mu.cfg.Compact, l.mu.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if compact {
		return l.clean(now)
	}
	return nil
}

// rollByAge seals an active segment older than segment.ms, so time-based
// retention can delete it even when nothing more is appended. An untouched
// active segment is judged by its file's modification time, so idle
// partitions need not load it.
func (l *Log) rollByAge(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	seg := l.activeLocked()
	if seg == nil || l.mu.next == seg.base {
		return nil
	}
	ms := now.UnixMilli()
	if !seg.loaded {
		fi, err := os.Stat(seg.cf.path)
		if err != nil || ms-fi.ModTime().UnixMilli() < l.mu.cfg.SegmentMs {
			return nil
		}
		if err := l.ensureLoaded(seg); err != nil {
			return err
		}
	}
	if seg.size == 0 || seg.rollAt < 0 || ms-seg.rollAt < l.mu.cfg.SegmentMs {
		return nil
	}
	if err := l.markDirtyLocked(); err != nil {
		return err
	}
	_, err := l.rollLocked()
	return err
}

// applyRetention deletes whole non-active segments, oldest first, while
// they are older than retention.ms or the log is above retention.bytes.
func (l *Log) applyRetention(now time.Time) error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	cfg := l.mu.cfg
	if !cfg.Delete || len(l.mu.segs) < 2 {
		l.mu.Unlock()
		return nil
	}
	sealed := l.mu.segs[:len(l.mu.segs)-1]
	n := 0
	if cfg.RetentionMs >= 0 {
		cutoff := now.UnixMilli() - cfg.RetentionMs
		for n < len(sealed) {
			if err := l.ensureLoaded(sealed[n]); err != nil {
				l.mu.Unlock()
				return err
			}
			if sealed[n].maxTs >= cutoff {
				break
			}
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		var total int64
		for _, seg := range l.mu.segs {
			if err := l.ensureLoaded(seg); err != nil {
				l.mu.Unlock()
				return err
			}
			total += seg.size
		}
		for _, seg := range sealed[:n] {
			total -= seg.size
		}
		for n < len(sealed) && total-sealed[n].size >= cfg.RetentionBytes {
			total -= sealed[n].size
			n++
		}
	}
	if n == 0 {
		l.mu.Unlock()
		return nil
	}
	gone := l.dropSegmentsLocked(n)
	l.mu.Unlock()
	return l.finishDrop(gone)
}

// dropSegmentsLocked takes the first n segments out of the log and moves
// the log start offset past them. Their files are deleted by finishDrop,
// outside the lock; in-flight reads keep their open descriptors.
func (l *Log) dropSegmentsLocked(n int) []*segment {
	gone := append([]*segment(nil), l.mu.segs[:n]...)
	l.mu.segs = append(l.mu.segs[:0:0], l.mu.segs[n:]...)
	l.mu.logStart = max(l.mu.logStart, l.mu.segs[0].base)
	l.expireProducersLocked()
	i := 0
	for i < len(l.mu.aborted) && l.mu.aborted[i].LastOffset < l.mu.logStart {
		i++
	}
	l.mu.aborted = l.mu.aborted[i:]
	return gone
}

func (l *Log) finishDrop(gone []*segment) error {
	if err := l.persistState(); err != nil {
		return err
	}
	for _, seg := range gone {
		l.files.kill(&seg.cf)
		l.removeSegmentFiles(seg.base)
	}
	return nil
}

// expireProducersLocked forgets producers whose every batch is below the
// log start offset, as Kafka does once retention removed their data. A
// producer with an open transaction stays until the marker ends it.
func (l *Log) expireProducersLocked() {
	for id, p := range l.mu.producers {
		if p.lastOffset() < l.mu.logStart && !p.inTxn {
			delete(l.mu.producers, id)
		}
	}
}

// persistState writes plog.state from the current in-memory state.
func (l *Log) persistState() error {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	data := encodeState(l.stateLocked())
	l.mu.RUnlock()
	return l.writeFileAtomic(l.dir, stateFile, data)
}

// advanceRecoveryPoint syncs segments sealed since the last call and moves
// the recovery point to the active segment, with a fresh producer
// snapshot, so that recovery after a crash rescans only the active segment.
func (l *Log) advanceRecoveryPoint() error {
	l.mu.RLock()
	var todo []*segment
	var target int64
	if seg := l.activeLocked(); seg != nil && seg.base > l.mu.recoveryPoint {
		target = seg.base
		for i, s := range l.mu.segs[:len(l.mu.segs)-1] {
			if l.mu.segs[i+1].base > l.mu.recoveryPoint {
				todo = append(todo, s)
			}
		}
	}
	l.mu.RUnlock()
	if len(todo) == 0 {
		return nil
	}
	for _, s := range todo {
		// Sealed segments never change again (compaction replaces
		// whole files), so syncing them needs no log lock.
		if err := l.syncSegment(s); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.mu.recoveryPoint = max(l.mu.recoveryPoint, target)
	l.mu.Unlock()
	return l.persistState()
}

// DeleteRecords advances the log start offset to before (DeleteRecords API);
// -1 means the high watermark. Returns the new log start offset.
func (l *Log) DeleteRecords(before int64) (int64, error) {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if before == -1 {
		before = l.mu.next
	}
	if hw := l.mu.next; before < 0 || before > hw {
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: delete before %d, high watermark %d", ErrOffsetOutOfRange, before, hw)
	}
	if before <= l.mu.logStart {
		ls := l.mu.logStart
		l.mu.Unlock()
		return ls, nil
	}
	l.mu.logStart = before
	// Whole segments below the new start go; the active one stays.
	n := sort.Search(len(l.mu.segs), func(i int) bool { return l.mu.segs[i].base > before }) - 1
	n = min(max(n, 0), len(l.mu.segs)-1)
	var gone []*segment
	if n > 0 {
		gone = l.dropSegmentsLocked(n)
	} else {
		l.expireProducersLocked()
	}
	l.mu.logStart = before
	l.mu.Unlock()
	if err := l.finishDrop(gone); err != nil {
		return 0, err
	}
	return before, nil
}

// OffsetForTimestamp returns the first offset whose record timestamp is >=
// ts, and that timestamp; (-1, -1) when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return -1, -1, ErrClosed
	}
	for _, seg := range l.mu.segs {
		if err := l.ensureLoaded(seg); err != nil {
			return -1, -1, err
		}
		if seg.maxTs < ts || seg.size == 0 {
			continue
		}
		from := max(seg.base+int64(seg.tidx.lookup(ts)), l.mu.logStart)
		off, t, err := l.scanForTimestamp(seg, from, func(h *recordbatch.Header) bool { return h.MaxTimestamp >= ts },
			func(recTs int64, _ int64) bool { return recTs >= ts })
		if err != nil || off >= 0 {
			return off, t, err
		}
	}
	return -1, -1, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3); (-1, -1) when empty.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return -1, -1, ErrClosed
	}
	var best *segment
	for _, seg := range l.mu.segs {
		if err := l.ensureLoaded(seg); err != nil {
			return -1, -1, err
		}
		if seg.maxTsBatch >= l.mu.logStart && seg.size > 0 && (best == nil || seg.maxTs > best.maxTs) {
			best = seg
		}
	}
	if best == nil {
		return -1, -1, nil
	}
	maxTs := best.maxTs
	return l.scanForTimestamp(best, best.maxTsBatch, func(h *recordbatch.Header) bool { return h.MaxTimestamp == maxTs },
		func(recTs int64, _ int64) bool { return recTs == maxTs })
}

// scanForTimestamp walks the batches of seg holding offsets from `from`,
// finds the first whose header matches batchOK and returns the first of
// its records (at or above from) matching recOK.
func (l *Log) scanForTimestamp(seg *segment, from int64, batchOK func(*recordbatch.Header) bool, recOK func(ts, off int64) bool) (int64, int64, error) {
	f, err := l.files.acquire(&seg.cf)
	if err != nil {
		return -1, -1, fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer l.files.release(&seg.cf)
	hr := headerReaders.Get().(*headerReader)
	defer headerReaders.Put(hr)
	hr.reset(f, seg.size)
	pos, err := findStart(hr, seg.base, seg.idx, from, seg.size)
	if err != nil || pos < 0 {
		return -1, -1, err
	}
	for pos < seg.size {
		h, err := hr.at(pos)
		if err != nil {
			return -1, -1, err
		}
		if h.LastOffset() >= from && batchOK(&h) {
			batch := make([]byte, h.Size())
			if _, err := f.ReadAt(batch, pos); err != nil {
				return -1, -1, fmt.Errorf("%w: %w", ErrIO, err)
			}
			recs, err := recordsOf(batch, &h)
			if err != nil {
				return -1, -1, err
			}
			foundOff, foundTs := int64(-1), int64(-1)
			err = parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
				off, ts := h.BaseOffset+int64(r.OffsetDelta), h.FirstTimestamp+r.TimestampDelta
				if foundOff < 0 && off >= from && recOK(ts, off) {
					foundOff, foundTs = off, ts
				}
				return nil
			})
			if err != nil {
				return -1, -1, err
			}
			if foundOff >= 0 {
				return foundOff, foundTs, nil
			}
		}
		pos += h.Size()
	}
	return -1, -1, nil
}
