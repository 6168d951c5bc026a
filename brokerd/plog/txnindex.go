package plog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/internal/recordbatch"
)

// AbortedTxn is one aborted transaction of this partition, as Kafka's
// .txnindex records it and as Fetch reports it to read_committed consumers.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64 // the transaction's first offset in this partition
	// LastOffset is the offset of the abort marker.
	LastOffset int64
	// LastStableOffset is the partition's LSO right after the abort.
	LastStableOffset int64
}

// txnEntrySize is the size of one .txnindex entry (layout in doc.go).
const txnEntrySize = 34

// txnIndexExt names a segment's aborted-transaction index.
const txnIndexExt = ".txnindex"

func appendTxnEntry(b []byte, e AbortedTxn) []byte {
	b = binary.BigEndian.AppendUint16(b, 0) // entry version
	b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
	return binary.BigEndian.AppendUint64(b, uint64(e.LastStableOffset))
}

// decodeTxnIndex decodes a .txnindex file. Like the other indexes it is
// written by append; a torn last entry is ignored (recovery rewrites the
// index of every segment it rescans).
func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	var out []AbortedTxn
	for ; len(b) >= txnEntrySize; b = b[txnEntrySize:] {
		if v := binary.BigEndian.Uint16(b); v != 0 {
			return out, fmt.Errorf("%w: txn index entry version %d", ErrCorrupt, v)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if e.FirstOffset < 0 || e.LastOffset < e.FirstOffset {
			return out, fmt.Errorf("%w: txn index entry offsets %d..%d", ErrCorrupt, e.FirstOffset, e.LastOffset)
		}
		out = append(out, e)
	}
	return out, nil
}

// loadTxnIndexes reads every .txnindex file of the folder (only partitions
// that saw an abort have one, so an ordinary Open reads nothing), sorted by
// marker offset.
func (l *Log) loadTxnIndexes(names []string) []AbortedTxn {
	var out []AbortedTxn
	for _, name := range names {
		if !strings.HasSuffix(name, txnIndexExt) {
			continue
		}
		b, err := os.ReadFile(l.dir + "/" + name)
		if err != nil {
			l.logger.Warn("plog: unreadable txn index", "dir", l.dir, "file", name, "err", err)
			continue
		}
		es, err := decodeTxnIndex(b)
		if err != nil {
			l.logger.Warn("plog: damaged txn index", "dir", l.dir, "file", name, "err", err)
		}
		out = append(out, es...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastOffset < out[j].LastOffset })
	return out
}

// writeTxnIndex replaces the .txnindex of the segment based at base with
// the entries whose marker lies in [base, end), or removes it when there
// are none.
func (l *Log) writeTxnIndex(base, end int64, entries []AbortedTxn) error {
	var b []byte
	for _, e := range entries {
		if e.LastOffset >= base && e.LastOffset < end {
			b = appendTxnEntry(b, e)
		}
	}
	name := segName(base, txnIndexExt)
	if len(b) == 0 {
		if err := os.Remove(l.dir + "/" + name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrIO, err)
		}
		return nil
	}
	return l.writeFileAtomic(l.dir, name, b)
}

// appendTxnEntryFile adds one entry to the active segment's .txnindex.
func (l *Log) appendTxnEntryFile(seg *segment, e AbortedTxn) error {
	f, err := os.OpenFile(l.segPath(seg.base, txnIndexExt), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: txn index: %w", ErrIO, err)
	}
	_, err = f.Write(appendTxnEntry(nil, e))
	if err == nil && l.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: txn index: %w", ErrIO, err)
	}
	return nil
}

// lsoLocked is the last stable offset: the first offset of the oldest
// transaction still open on this partition, or the high watermark.
func (l *Log) lsoLocked() int64 {
	lso := l.mu.next
	if l.mu.ongoing == 0 {
		return lso
	}
	for _, p := range l.mu.producers {
		if p.inTxn && p.txnFirst < lso {
			lso = p.txnFirst
		}
	}
	return max(lso, l.mu.logStart)
}

// LastStableOffset is the offset below which every transaction is decided
// (committed or aborted); read_committed consumers read up to it.
func (l *Log) LastStableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lsoLocked()
}

// AbortedTxns returns the aborted transactions a read_committed fetch of
// [from, to) must know about: those whose marker is at or after from and
// whose first offset is below to, in marker order.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ab := l.mu.aborted
	i := sort.Search(len(ab), func(i int) bool { return ab[i].LastOffset >= from })
	var out []AbortedTxn
	for ; i < len(ab); i++ {
		if ab[i].FirstOffset < to && ab[i].LastOffset >= l.mu.logStart {
			out = append(out, ab[i])
		}
	}
	return out
}

// OpenTxn is a transaction still open on this partition.
type OpenTxn struct {
	ProducerID    int64
	ProducerEpoch int16
	FirstOffset   int64
}

// OpenTxns lists the transactions open on this partition.
func (l *Log) OpenTxns() []OpenTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []OpenTxn
	for id, p := range l.mu.producers {
		if p.inTxn {
			out = append(out, OpenTxn{ProducerID: id, ProducerEpoch: p.epoch, FirstOffset: p.txnFirst})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstOffset < out[j].FirstOffset })
	return out
}

// markerBatch builds a control batch ending producerID's transaction:
// one record whose key is the control type (kmsg.ControlRecordKey) and
// whose value is kmsg.EndTxnMarker.
func markerBatch(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.EndTxnMarker{CoordinatorEpoch: coordinatorEpoch}
	var e recordbatch.Encoder
	e.Start(make([]byte, 0, recordbatch.HeaderSize+32), ts)
	e.Add(0, key.AppendTo(nil), val.AppendTo(nil), nil)
	b := e.Finish(recordbatch.Producer{ID: producerID, Epoch: epoch, BaseSequence: -1})
	recordbatch.SetAttributes(b, recordbatch.AttrTransactional|recordbatch.AttrControl)
	recordbatch.UpdateCRC(b)
	return b
}

// markerType decodes the control type of a control batch: commit, abort,
// or ok=false for another kind of control record (or one that does not
// decode), which ends no transaction.
func markerType(batch []byte, h *recordbatch.Header) (commit, ok bool) {
	if len(batch) < int(h.Size()) || h.Codec() != recordbatch.CodecNone {
		return false, false
	}
	it := recordbatch.Iterate(batch[recordbatch.HeaderSize:h.Size()], h.RecordCount)
	var r recordbatch.Record
	if !it.Next(&r) {
		return false, false
	}
	var k kmsg.ControlRecordKey
	if err := k.ReadFrom(r.Key); err != nil {
		return false, false
	}
	switch k.Type {
	case kmsg.ControlRecordKeyTypeCommit:
		return true, true
	case kmsg.ControlRecordKeyTypeAbort:
		return false, true
	}
	return false, false
}

// AppendMarker ends producerID's open transaction on this partition with a
// commit or abort control batch (the transaction coordinator's
// WriteTxnMarkers, in process). An abort is recorded in the active
// segment's .txnindex. A marker for a producer with no open transaction
// here writes nothing (Duplicate is set): the coordinator resends markers
// after a restart, and a partition the producer added but never wrote has
// nothing to end. A marker with an epoch older than the producer's is
// ErrInvalidEpoch.
func (l *Log) AppendMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, now time.Time) (AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return AppendResult{}, ErrClosed
	}
	p := l.mu.producers[producerID]
	if p != nil && epoch < p.epoch {
		return AppendResult{}, fmt.Errorf("%w: marker for producer %d epoch %d, current %d", ErrInvalidEpoch, producerID, epoch, p.epoch)
	}
	if p == nil || !p.inTxn {
		return AppendResult{BaseOffset: -1, LastOffset: -1, LogStartOffset: l.mu.logStart, Duplicate: true}, nil
	}
	cfg := l.mu.cfg
	batch := markerBatch(producerID, epoch, commit, coordinatorEpoch, now.UnixMilli())
	h, err := parseHeader(batch)
	if err != nil {
		return AppendResult{}, err
	}
	seg, err := l.writeLocked(batch, []validatedBatch{{h: h}}, now, &cfg)
	if err != nil {
		return AppendResult{}, err
	}
	off := l.mu.next
	l.mu.next++
	first := p.txnFirst
	np := p.clone()
	np.inTxn, np.txnFirst = false, 0
	if epoch > np.epoch {
		// A bumped epoch (fencing, KIP-360) restarts the sequence.
		np.epoch, np.batches = epoch, np.batches[:0]
	}
	l.mu.producers[producerID] = np
	l.mu.ongoing--
	res := AppendResult{BaseOffset: off, LastOffset: off, LogStartOffset: l.mu.logStart}
	if commit {
		return res, nil
	}
	e := AbortedTxn{ProducerID: producerID, FirstOffset: first, LastOffset: off, LastStableOffset: l.lsoLocked()}
	l.mu.aborted = append(l.mu.aborted, e)
	if err := l.appendTxnEntryFile(seg, e); err != nil {
		// The marker is in the log and the entry in memory; recovery
		// rebuilds the index of the active segment from the marker.
		l.logger.Warn("plog: txn index append failed", "dir", l.dir, "err", err)
	}
	return res, nil
}

// applyBatch records a batch found on disk in the producer map and, for
// transaction markers, ends the transaction (adding aborted ones to
// aborted). Recovery uses it to replay what plog.state does not hold.
func applyBatch(m map[int64]*producer, h *recordbatch.Header, batch []byte, aborted *[]AbortedTxn) map[int64]*producer {
	if h.ProducerID < 0 {
		return m
	}
	if m == nil {
		m = make(map[int64]*producer)
	}
	p := m[h.ProducerID]
	if h.Control() {
		commit, ok := markerType(batch, h)
		if !ok || p == nil || h.ProducerEpoch < p.epoch {
			return m
		}
		if p.inTxn && !commit && aborted != nil {
			*aborted = append(*aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: p.txnFirst, LastOffset: h.BaseOffset})
		}
		p.inTxn, p.txnFirst = false, 0
		if h.ProducerEpoch > p.epoch {
			p.epoch, p.batches = h.ProducerEpoch, nil
		}
		if aborted != nil && len(*aborted) > 0 && (*aborted)[len(*aborted)-1].LastOffset == h.BaseOffset {
			(*aborted)[len(*aborted)-1].LastStableOffset = replayLSO(m, h.NextOffset())
		}
		return m
	}
	if p == nil || h.ProducerEpoch != p.epoch {
		if p != nil && h.ProducerEpoch < p.epoch {
			return m
		}
		np := &producer{epoch: h.ProducerEpoch}
		if p != nil {
			np.inTxn, np.txnFirst = p.inTxn, p.txnFirst
		}
		p = np
		m[h.ProducerID] = p
	}
	p.push(producerBatch{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), base: h.BaseOffset, last: h.LastOffset()})
	if h.Transactional() && !p.inTxn {
		p.inTxn, p.txnFirst = true, h.BaseOffset
	}
	return m
}

// replayLSO is the last stable offset given producer state and the log end.
func replayLSO(m map[int64]*producer, next int64) int64 {
	lso := next
	for _, p := range m {
		if p.inTxn && p.txnFirst < lso {
			lso = p.txnFirst
		}
	}
	return lso
}

func countOngoing(m map[int64]*producer) int {
	n := 0
	for _, p := range m {
		if p.inTxn {
			n++
		}
	}
	return n
}
