package plog

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"strait/internal/recordbatch"
)

// maxCleanerKeys bounds the cleaner's offset map. When the dirty part holds
// more distinct keys, one pass cleans only the segments whose keys fit and
// the next pass continues from there (Kafka bounds its map the same way).
const maxCleanerKeys = 1 << 21

// clean runs one compaction pass when the dirty ratio reaches
// min.cleanable.dirty.ratio. Only non-active segments are cleaned. The
// work (reading, building the offset map, writing cleaned files) runs
// without the log lock; produce and fetch wait only for the final swap.
func (l *Log) clean(now time.Time) error {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	cfg := l.mu.cfg
	cleanedTo := l.mu.cleanedTo
	n := len(l.mu.segs) - 1
	// Never clean past the last stable offset: an open transaction's
	// records are neither committed nor aborted yet (Kafka's cleaner stops
	// at the first unstable offset too).
	for lso := l.lsoLocked(); n >= 1 && l.mu.segs[n].base > lso; n-- {
	}
	if n < 1 {
		l.mu.RUnlock()
		return nil
	}
	ab := newAbortedSet(l.mu.aborted)
	segs := append([]*segment(nil), l.mu.segs[:n]...)
	ends := make([]int64, n) // ends[i]: the base of the segment after segs[i]
	for i := range segs {
		ends[i] = l.mu.segs[i+1].base
		if err := l.ensureLoaded(segs[i]); err != nil {
			l.mu.RUnlock()
			return err
		}
	}
	l.mu.RUnlock()

	var total, dirty int64
	firstDirty := n
	for i, s := range segs {
		total += s.size
		if ends[i] > cleanedTo {
			dirty += s.size
			firstDirty = min(firstDirty, i)
		}
	}
	if total == 0 || float64(dirty)/float64(total) < cfg.MinCleanableRatio {
		return nil
	}

	// Offset map over the dirty part: key -> latest offset.
	latest := make(map[string]int64)
	last := firstDirty - 1
	for i := firstDirty; i < n && len(latest) <= maxCleanerKeys; i++ {
		err := eachRecord(segs[i], func(h *recordbatch.Header, r *recordbatch.Record) {
			// Markers are not keyed data, and aborted records must
			// never displace a committed value.
			if h.Control() || ab.aborted(h) {
				return
			}
			latest[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
		})
		if err != nil {
			return err
		}
		last = i
	}
	if last < 0 {
		return nil
	}
	dirtyEnd := ends[last]
	tombstoneCutoff := now.UnixMilli() - cfg.DeleteRetentionMs

	// Group consecutive segments so each cleaned file stays within
	// segment.bytes; small cleaned segments merge on later passes.
	for i := 0; i <= last; {
		j, sum := i, int64(0)
		for j <= last && (j == i || sum+segs[j].size <= cfg.SegmentBytes) {
			sum += segs[j].size
			j++
		}
		if err := l.cleanGroup(segs[i:j], latest, tombstoneCutoff, ab); err != nil {
			return err
		}
		i = j
	}
	l.mu.Lock()
	l.mu.cleanedTo = max(l.mu.cleanedTo, dirtyEnd)
	l.mu.Unlock()
	return l.persistState()
}

// eachRecord calls fn for every record of a sealed segment.
func eachRecord(s *segment, fn func(h *recordbatch.Header, r *recordbatch.Record)) error {
	f, err := os.Open(s.cf.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer f.Close()
	_, err = scanSegment(f, 0, s.size, true, func(_ int64, h *recordbatch.Header, batch []byte) error {
		recs, err := recordsOf(batch, h)
		if err != nil {
			return err
		}
		return parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
			fn(h, r)
			return nil
		})
	})
	return err
}

// cleanGroup rewrites the segments of group into one file keeping each
// record whose key's latest offset it is (or whose key the map does not
// know), dropping tombstones older than the cutoff, and swaps it in.
//
// Batches whose records all survive are copied byte for byte (compressed
// ones stay compressed). A batch that loses records is re-encoded
// uncompressed with the survivors, keeping its base offset,
// lastOffsetDelta, timestamps and producer fields; the CRC is recomputed.
//
// Transactions: records of aborted transactions are dropped; a marker
// (control batch) is kept until delete.retention.ms has passed since it
// was written, as Kafka keeps it, so a consumer that read the
// transaction's records also gets to see how it ended. An abort marker
// that goes takes its .txnindex entry with it.
func (l *Log) cleanGroup(group []*segment, latest map[string]int64, tombstoneCutoff int64, ab abortedSet) error {
	base := group[0].base
	tmpPath := l.segPath(base, ".log.cleaned")
	out, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer os.Remove(tmpPath)
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	ns := l.newSegment(base, false)
	ns.loaded = true
	l.mu.RLock()
	interval := int64(l.mu.cfg.IndexIntervalBytes)
	l.mu.RUnlock()
	var pos int64
	var kept []byte
	var droppedMarkers map[int64]bool
	for _, s := range group {
		f, err := os.Open(s.cf.path)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrIO, err)
		}
		_, err = scanSegment(f, 0, s.size, true, func(_ int64, h *recordbatch.Header, batch []byte) error {
			switch {
			case h.Control() && h.MaxTimestamp < tombstoneCutoff:
				if droppedMarkers == nil {
					droppedMarkers = make(map[int64]bool)
				}
				droppedMarkers[h.BaseOffset] = true
				return nil
			case h.Control():
				return l.copyBatch(w, ns, &pos, batch, interval)
			case ab.aborted(h):
				return nil
			}
			recs, err := recordsOf(batch, h)
			if err != nil {
				return err
			}
			kept = kept[:0]
			count, all := int32(0), true
			err = parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
				off := h.BaseOffset + int64(r.OffsetDelta)
				keep := true
				if o, ok := latest[string(r.Key)]; ok && o != off {
					keep = false
				}
				if keep && r.Value == nil && h.FirstTimestamp+r.TimestampDelta < tombstoneCutoff {
					keep = false
				}
				if keep {
					kept = append(kept, r.Raw...)
					count++
				} else {
					all = false
				}
				return nil
			})
			if err != nil || count == 0 {
				return err
			}
			nb := batch
			if !all {
				nb = make([]byte, recordbatch.HeaderSize, recordbatch.HeaderSize+len(kept))
				nb = append(nb, kept...)
				rh := *h
				rh.Length = int32(len(nb) - recordbatch.LengthOverhead)
				rh.Attributes &^= recordbatch.AttrCompression
				rh.RecordCount = count
				rh.Put(nb)
				recordbatch.UpdateCRC(nb)
			}
			return l.copyBatch(w, ns, &pos, nb, interval)
		})
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := l.fs.SyncFile(out); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	ns.size = pos
	ns.sealTimeIndex()
	return l.swap(group, ns, tmpPath, droppedMarkers)
}

// copyBatch writes one kept batch to the cleaned file and indexes it.
func (l *Log) copyBatch(w *bufio.Writer, ns *segment, pos *int64, nb []byte, interval int64) error {
	nh, err := parseHeader(nb)
	if err != nil {
		return err
	}
	if _, err := w.Write(nb); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	ns.indexBatch(*pos, &nh, interval)
	*pos += int64(len(nb))
	return nil
}

// abortedSet answers whether a data batch belongs to an aborted
// transaction: its producer aborted a transaction spanning its offset.
type abortedSet map[int64][]AbortedTxn

func newAbortedSet(all []AbortedTxn) abortedSet {
	if len(all) == 0 {
		return nil
	}
	s := make(abortedSet)
	for _, e := range all {
		s[e.ProducerID] = append(s[e.ProducerID], e)
	}
	return s
}

func (s abortedSet) aborted(h *recordbatch.Header) bool {
	if s == nil || !h.Transactional() || h.Control() {
		return false
	}
	for _, e := range s[h.ProducerID] {
		if h.BaseOffset >= e.FirstOffset && h.BaseOffset < e.LastOffset {
			return true
		}
	}
	return false
}

// swap replaces group with the cleaned segment ns (nil content when
// nothing survived) under the log lock. Readers holding spans of the old
// files keep their descriptors; the inodes live until released.
//
// Crash safety: the cleaned file becomes "B.log.swap" only once complete
// and synced; recovery treats a .swap as the replacement of every segment
// it covers and finishes the swap (see finishSwaps).
func (l *Log) swap(group []*segment, ns *segment, tmpPath string, droppedMarkers map[int64]bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	// Retention may have removed some of the group meanwhile.
	at := -1
	for i, s := range l.mu.segs {
		if s == group[0] {
			at = i
			break
		}
	}
	if at < 0 || at+len(group) >= len(l.mu.segs) {
		return nil
	}
	for k, s := range group {
		if l.mu.segs[at+k] != s {
			return nil
		}
	}
	if err := l.markDirtyLocked(); err != nil {
		return err
	}
	var repl []*segment
	if ns.size > 0 {
		swapPath := l.segPath(ns.base, ".log.swap")
		if err := os.Rename(tmpPath, swapPath); err != nil {
			return fmt.Errorf("%w: %w", ErrIO, err)
		}
		if err := l.syncDir(l.dir); err != nil {
			return err
		}
		for _, s := range group[1:] {
			l.removeSegmentFiles(s.base)
		}
		if err := os.Rename(swapPath, ns.cf.path); err != nil {
			return fmt.Errorf("%w: %w", ErrIO, err)
		}
		if err := l.writeIndexes(ns); err != nil {
			return err
		}
		repl = []*segment{ns}
	} else {
		for _, s := range group {
			l.removeSegmentFiles(s.base)
		}
	}
	if err := l.syncDir(l.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, s := range group {
		l.files.kill(&s.cf)
	}
	if len(droppedMarkers) > 0 {
		kept := l.mu.aborted[:0:0]
		for _, e := range l.mu.aborted {
			if !droppedMarkers[e.LastOffset] {
				kept = append(kept, e)
			}
		}
		l.mu.aborted = kept
	}
	// The cleaned segment's .txnindex holds the surviving entries of
	// every segment it replaced.
	end := int64(math.MaxInt64)
	if at+len(group) < len(l.mu.segs) {
		end = l.mu.segs[at+len(group)].base
	}
	for _, s := range group {
		os.Remove(l.segPath(s.base, txnIndexExt))
	}
	if len(repl) > 0 {
		if err := l.writeTxnIndex(ns.base, end, l.mu.aborted); err != nil {
			return err
		}
	}
	segs := make([]*segment, 0, len(l.mu.segs)-len(group)+len(repl))
	segs = append(segs, l.mu.segs[:at]...)
	segs = append(segs, repl...)
	segs = append(segs, l.mu.segs[at+len(group):]...)
	l.mu.segs = segs
	return nil
}
