package plog

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sentinel errors; brokerd maps them to Kafka error codes.
var (
	ErrCorrupt          = errors.New("plog: corrupt batch")             // CORRUPT_MESSAGE
	ErrTooLarge         = errors.New("plog: batch too large")           // MESSAGE_TOO_LARGE
	ErrOffsetOutOfRange = errors.New("plog: offset out of range")       // OFFSET_OUT_OF_RANGE
	ErrOutOfOrderSeq    = errors.New("plog: out of order sequence")     // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidEpoch     = errors.New("plog: invalid producer epoch")    // INVALID_PRODUCER_EPOCH
	ErrUnknownProducer  = errors.New("plog: unknown producer id")       // UNKNOWN_PRODUCER_ID
	ErrClosed           = errors.New("plog: log closed")                // NOT_LEADER_OR_FOLLOWER / KAFKA_STORAGE_ERROR
	ErrInvalidRecord    = errors.New("plog: invalid record")            // INVALID_RECORD (e.g. compacted topic, null key)
	ErrUnsupported      = errors.New("plog: unsupported batch feature") // INVALID_RECORD
	ErrIO               = errors.New("plog: storage i/o error")         // KAFKA_STORAGE_ERROR
)

// Config is the per-topic configuration the log honours. Zero values mean
// "use the default" (see Defaults).
type Config struct {
	SegmentBytes       int64 // segment.bytes (default 1 GiB)
	SegmentMs          int64 // segment.ms (default 7 days)
	RetentionMs        int64 // retention.ms (default 7 days; -1 = forever)
	RetentionBytes     int64 // retention.bytes (default -1 = unlimited)
	MaxMessageBytes    int32 // max.message.bytes (default 1048588)
	IndexIntervalBytes int32 // index.interval.bytes (default 4096)
	FlushMessages      int64 // flush.messages (1 = fsync every append)
	Compact            bool  // cleanup.policy contains compact
	Delete             bool  // cleanup.policy contains delete
	DeleteRetentionMs  int64 // delete.retention.ms (default 1 day)
	MinCleanableRatio  float64
}

// Defaults returns cfg with every zero field replaced by Kafka's default.
// A config with neither Compact nor Delete set means cleanup.policy=delete.
func Defaults(cfg Config) Config {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 1 << 30
	}
	// Index entries hold 32-bit file positions.
	cfg.SegmentBytes = min(cfg.SegmentBytes, math.MaxInt32)
	if cfg.SegmentMs <= 0 {
		cfg.SegmentMs = 7 * 24 * 3600 * 1000
	}
	if cfg.RetentionMs == 0 {
		cfg.RetentionMs = 7 * 24 * 3600 * 1000
	}
	if cfg.RetentionBytes == 0 {
		cfg.RetentionBytes = -1
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1048588
	}
	if cfg.IndexIntervalBytes <= 0 {
		cfg.IndexIntervalBytes = 4096
	}
	if cfg.DeleteRetentionMs <= 0 {
		cfg.DeleteRetentionMs = 24 * 3600 * 1000
	}
	if cfg.MinCleanableRatio <= 0 {
		cfg.MinCleanableRatio = 0.5
	}
	if !cfg.Compact {
		cfg.Delete = true
	}
	return cfg
}

// Options are process-wide settings shared by every log.
type Options struct {
	Fsync  bool       // fsync before acknowledging every append
	Files  *FileCache // bounds open file descriptors across all logs
	Logger *slog.Logger
	FS     FS // where syncs go; nil means OSFS
}

// Log is one partition's log: a folder of segments.
//
// Lock order: maintMu, then stateMu, then mu, then a segment's mu, then
// the file cache's mu.
type Log struct {
	dir    string
	files  *FileCache
	fsync  bool
	logger *slog.Logger
	fs     FS

	maintMu sync.Mutex // one Maintain / DeleteRecords at a time
	stateMu sync.Mutex // serialises writes of plog.state

	mu struct {
		sync.RWMutex
		cfg    Config
		closed bool
		// segs is sorted by base offset; the last is the active
		// segment that takes appends. Empty until the first append.
		segs []*segment
		// Invariant: logStart <= next; next is the log end offset
		// and, with replication factor 1, the high watermark.
		logStart int64
		next     int64
		// recoveryPoint: every segment below it is complete and
		// synced (recovery rescans from the segment holding it).
		recoveryPoint int64
		cleanedTo     int64
		producers     map[int64]*producer
		// ongoing counts producers with a transaction open here, so
		// the last stable offset costs nothing without transactions.
		ongoing int
		// aborted lists the aborted transactions of the log, sorted by
		// marker offset (the .txnindex files, in memory).
		aborted []AbortedTxn
		// dirty is set once the clean-shutdown marker is gone: the
		// files may hold more than plog.state says.
		dirty     bool
		unflushed int64 // messages appended since the last fsync
	}
}

// Open opens (or creates) the partition log in dir. It must be cheap: no
// segment file is opened or scanned unless the last shutdown was unclean.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	l := &Log{dir: dir, files: opts.Files, fsync: opts.Fsync, logger: opts.Logger, fs: opts.FS}
	if l.fs == nil {
		l.fs = OSFS
	}
	if l.files == nil {
		l.files = NewFileCache(16)
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	l.mu.cfg = Defaults(cfg)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	if len(ents) == 0 {
		// A new folder: nothing to recover and nothing worth
		// persisting yet. A crash before the first clean close finds
		// no state file and no marker, and recovers to this same
		// empty log, so a topic's creation costs no fsync per
		// partition.
		l.mu.dirty = true
		return l, nil
	}
	var bases []int64
	var names []string
	clean, leftovers := false, false
	for _, e := range ents {
		name := e.Name()
		names = append(names, name)
		if b, ok := parseSegName(name); ok {
			bases = append(bases, b)
			continue
		}
		switch {
		case name == cleanMarker:
			clean = true
		case strings.HasSuffix(name, ".cleaned"), strings.HasSuffix(name, ".swap"):
			leftovers = true
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	var st *state
	if b, err := os.ReadFile(l.statePath()); err == nil {
		st, err = decodeState(b)
		if err != nil {
			l.logger.Warn("plog: ignoring damaged state file", "dir", dir, "err", err)
			st = nil
		}
	}
	if clean && st != nil && !leftovers {
		for _, b := range bases {
			l.mu.segs = append(l.mu.segs, l.newSegment(b, false))
		}
		if n := len(l.mu.segs); n > 0 {
			l.mu.segs[n-1].cf.writable = true
		}
		l.mu.logStart, l.mu.next = st.logStart, st.next
		l.mu.recoveryPoint, l.mu.cleanedTo = st.next, st.cleanedTo
		l.mu.producers = st.producers
		l.mu.ongoing = countOngoing(st.producers)
		l.mu.aborted = l.loadTxnIndexes(names)
		return l, nil
	}
	if err := l.recover(bases, st); err != nil {
		l.closeFiles()
		return nil, err
	}
	return l, nil
}

func (l *Log) statePath() string { return l.dir + "/" + stateFile }

func (l *Log) cfgIndexInterval() int32 { return l.mu.cfg.IndexIntervalBytes }

// active returns the segment taking appends, nil when there is none.
func (l *Log) activeLocked() *segment {
	if n := len(l.mu.segs); n > 0 {
		return l.mu.segs[n-1]
	}
	return nil
}

// markDirtyLocked removes the clean-shutdown marker before the first
// change to the files after Open: from then on a crash means recovery.
func (l *Log) markDirtyLocked() error {
	if l.mu.dirty {
		return nil
	}
	if err := os.Remove(l.dir + "/" + cleanMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := l.syncDir(l.dir); err != nil {
		return err
	}
	l.mu.dirty = true
	return nil
}

// AppendResult describes a successful append.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record appended
	LastOffset     int64
	LogStartOffset int64
	Duplicate      bool // an idempotent retry: offsets are those of the original append
}

// Append validates every batch in records (one or more v2 record batches:
// length, magic 2, CRC-32C, size limit, idempotent sequence when the
// producer id is >= 0), assigns offsets by rewriting baseOffset in place,
// and appends them atomically. On error nothing is appended.
func (l *Log) Append(records []byte, now time.Time) (AppendResult, error) {
	l.mu.RLock()
	cfg := l.mu.cfg
	l.mu.RUnlock()
	// Validation (CRC over every byte) needs no lock: the payload is
	// the caller's.
	batches, err := splitPayload(records, cfg.MaxMessageBytes, cfg.Compact)
	if err != nil {
		return AppendResult{}, err
	}
	if int64(len(records)) > cfg.SegmentBytes {
		return AppendResult{}, fmt.Errorf("%w: %d bytes exceed segment.bytes %d", ErrTooLarge, len(records), cfg.SegmentBytes)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return AppendResult{}, ErrClosed
	}
	cfg = l.mu.cfg

	// Sequence checks on working copies, so a failure leaves no trace.
	var work map[int64]*producer
	var dups int
	var dupRes AppendResult
	for i := range batches {
		h := &batches[i].h
		if h.ProducerID < 0 {
			continue
		}
		p, ok := work[h.ProducerID]
		if !ok {
			if orig := l.mu.producers[h.ProducerID]; orig != nil {
				p = orig.clone()
			}
			if work == nil {
				work = make(map[int64]*producer)
			}
			work[h.ProducerID] = p
		}
		dup, err := checkSeq(p, h)
		if err != nil {
			return AppendResult{}, err
		}
		if dup != nil {
			if dups != i {
				return AppendResult{}, fmt.Errorf("%w: retried batch after a new one in the same request", ErrOutOfOrderSeq)
			}
			if dups == 0 {
				dupRes.BaseOffset = dup.base
			}
			dupRes.LastOffset = dup.last
			dups++
			continue
		}
		if dups > 0 {
			return AppendResult{}, fmt.Errorf("%w: new batch after a retried one in the same request", ErrOutOfOrderSeq)
		}
		if p == nil || p.epoch != h.ProducerEpoch {
			np := &producer{epoch: h.ProducerEpoch, batches: make([]producerBatch, 0, maxProducerBatches)}
			if p != nil {
				// An open transaction ends only with a marker.
				np.inTxn, np.txnFirst = p.inTxn, p.txnFirst
			}
			p = np
			work[h.ProducerID] = p
		}
		// Offsets are not assigned yet; push a placeholder fixed below.
		p.push(producerBatch{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), base: -1, last: -1})
		if h.Transactional() && !p.inTxn {
			p.inTxn, p.txnFirst = true, -1 // fixed below too
		}
	}
	if dups > 0 {
		dupRes.Duplicate = true
		dupRes.LogStartOffset = l.mu.logStart
		return dupRes, nil
	}

	if _, err := l.writeLocked(records, batches, now, &cfg); err != nil {
		return AppendResult{}, err
	}
	next := l.mu.next
	if n := len(batches); n > 0 {
		next = batches[n-1].h.NextOffset()
	}
	for i := len(batches) - 1; i >= 0; i-- {
		h := &batches[i].h
		if h.ProducerID < 0 {
			continue
		}
		p := work[h.ProducerID]
		// Fill in the offsets of the placeholders, newest first.
		for j := len(p.batches) - 1; j >= 0; j-- {
			pb := &p.batches[j]
			if pb.firstSeq == h.BaseSequence && pb.base == -1 {
				pb.base, pb.last = h.BaseOffset, h.LastOffset()
				break
			}
		}
		if h.Transactional() && p.inTxn && (p.txnFirst == -1 || p.txnFirst > h.BaseOffset) && !wasInTxn(l.mu.producers[h.ProducerID]) {
			p.txnFirst = h.BaseOffset
		}
	}
	for id, p := range work {
		if l.mu.producers == nil {
			l.mu.producers = make(map[int64]*producer)
		}
		if p.inTxn && !wasInTxn(l.mu.producers[id]) {
			l.mu.ongoing++
		}
		l.mu.producers[id] = p
	}
	res := AppendResult{BaseOffset: l.mu.next, LastOffset: next - 1, LogStartOffset: l.mu.logStart}
	l.mu.next = next
	return res, nil
}

func wasInTxn(p *producer) bool { return p != nil && p.inTxn }

// writeLocked writes validated batches (offsets not yet assigned) at the
// log end: it assigns their offsets, writes them in one write(2), fsyncs
// when configured and indexes them. It returns the segment written; the
// caller publishes the new log end and the producer state.
func (l *Log) writeLocked(records []byte, batches []validatedBatch, now time.Time, cfg *Config) (*segment, error) {
	if err := l.markDirtyLocked(); err != nil {
		return nil, err
	}
	seg, err := l.segmentForAppendLocked(int64(len(records)), now, cfg)
	if err != nil {
		return nil, err
	}
	next := l.mu.next
	for i := range batches {
		b := &batches[i]
		setBaseOffset(records[b.pos:], next)
		b.h.BaseOffset = next
		next += int64(b.h.LastOffsetDelta) + 1
	}
	f, err := l.files.acquire(&seg.cf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer l.files.release(&seg.cf)
	if _, err := f.WriteAt(records, seg.size); err != nil {
		// Undo a partial write so the file ends at a batch boundary.
		_ = f.Truncate(seg.size)
		return nil, fmt.Errorf("%w: append: %w", ErrIO, err)
	}
	l.mu.unflushed += int64(len(batches))
	if l.fsync || cfg.FlushMessages == 1 || (cfg.FlushMessages > 1 && l.mu.unflushed >= cfg.FlushMessages) {
		if err := l.fs.SyncFile(f); err != nil {
			_ = f.Truncate(seg.size)
			return nil, fmt.Errorf("%w: fsync: %w", ErrIO, err)
		}
		l.mu.unflushed = 0
	}
	interval := int64(cfg.IndexIntervalBytes)
	for i := range batches {
		b := &batches[i]
		seg.indexBatch(seg.size+int64(b.pos), &b.h, interval)
	}
	if seg.rollAt < 0 || seg.size == 0 {
		seg.rollAt = now.UnixMilli()
	}
	seg.size += int64(len(records))
	return seg, nil
}

// segmentForAppendLocked returns the active segment, rolling a new one
// when n more bytes would pass segment.bytes, the segment is older than
// segment.ms, or relative offsets would overflow the index.
func (l *Log) segmentForAppendLocked(n int64, now time.Time, cfg *Config) (*segment, error) {
	seg := l.activeLocked()
	if seg == nil {
		return l.rollLocked()
	}
	if err := l.ensureLoaded(seg); err != nil {
		return nil, err
	}
	if seg.size == 0 {
		return seg, nil
	}
	if seg.size+n > cfg.SegmentBytes ||
		(seg.rollAt >= 0 && now.UnixMilli()-seg.rollAt >= cfg.SegmentMs) ||
		l.mu.next-seg.base > math.MaxUint32/2 {
		return l.rollLocked()
	}
	return seg, nil
}

// rollLocked seals the active segment (writing its indexes) and starts a
// new one at the log end offset.
func (l *Log) rollLocked() (*segment, error) {
	if old := l.activeLocked(); old != nil {
		if old.base == l.mu.next {
			return old, l.ensureLoaded(old)
		}
		// flush.messages counts appends across segments: batches
		// of the sealed segment not yet synced must not wait for a
		// sync that will only reach the new one.
		if l.mu.unflushed > 0 && l.mu.cfg.FlushMessages > 0 {
			if err := l.syncSegment(old); err != nil {
				return nil, err
			}
			l.mu.unflushed = 0
		}
		old.sealTimeIndex()
		if err := l.writeIndexes(old); err != nil {
			return nil, err
		}
	}
	seg := l.newSegment(l.mu.next, true)
	f, err := os.OpenFile(seg.cf.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: new segment: %w", ErrIO, err)
	}
	f.Close()
	// Stale indexes of an earlier segment at this base must not be
	// mistaken for the new one's.
	os.Remove(l.segPath(seg.base, ".index"))
	os.Remove(l.segPath(seg.base, ".timeindex"))
	os.Remove(l.segPath(seg.base, txnIndexExt))
	// A synced append is only durable if the file holding it is: make
	// the new segment's folder entry durable whenever appends are synced.
	if l.fsync || l.mu.cfg.FlushMessages > 0 {
		if err := l.syncDir(l.dir); err != nil {
			return nil, err
		}
	}
	seg.loaded = true
	l.mu.segs = append(l.mu.segs, seg)
	return seg, nil
}

// Span is a byte range of one segment file holding whole batches.
type Span struct {
	File *os.File
	Pos  int64
	Len  int64
}

// ReadResult is what Read returns. The files stay open until Release.
type ReadResult struct {
	Spans          []Span
	Bytes          int64
	HighWatermark  int64
	LogStartOffset int64
	// LastStableOffset is the log's LSO when the read started; a
	// committed read returns no batch at or past it.
	LastStableOffset int64

	files    *FileCache
	pinned   []*cachedFile
	released bool
}

// Release lets the file cache close the spans' files again. It is safe to
// call more than once.
func (r *ReadResult) Release() {
	if r == nil || r.released {
		return
	}
	r.released = true
	for _, cf := range r.pinned {
		r.files.release(cf)
	}
	r.pinned = nil
}

// Read returns file spans of whole batches starting at the batch containing
// offset, up to maxBytes (at least one batch when minOne), never past the
// high watermark. offset == HighWatermark returns no spans and no error.
//
// The log lock is held only to pin the segments the read may need; the
// header reads that find the span boundaries run without it, so a cold
// page never delays an append. That is safe because the committed bytes
// of a segment never change (compaction and retention replace or delete
// whole files, which pinned descriptors keep alive) and the index bytes
// below the captured length never change either.
func (l *Log) Read(offset int64, maxBytes int64, minOne bool) (*ReadResult, error) {
	return l.ReadTo(offset, maxBytes, minOne, false)
}

// ReadTo is Read, but with committed set it stops at the last stable
// offset (a read_committed fetch): offsets between the LSO and the high
// watermark are valid and return no spans. A batch never straddles the
// LSO: the LSO is the base offset of an open transaction's first batch.
func (l *Log) ReadTo(offset int64, maxBytes int64, minOne bool, committed bool) (*ReadResult, error) {
	type pin struct {
		seg  *segment
		f    *os.File
		size int64
		idx  offsetIndex
	}
	var pinArr [4]pin
	pins := pinArr[:0]
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	res := &ReadResult{HighWatermark: l.mu.next, LogStartOffset: l.mu.logStart, LastStableOffset: l.lsoLocked(), files: l.files}
	if offset < res.LogStartOffset || offset > res.HighWatermark {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, res.LogStartOffset, res.HighWatermark)
	}
	end := res.HighWatermark
	if committed {
		end = res.LastStableOffset
	}
	if offset >= end {
		l.mu.RUnlock()
		return res, nil
	}
	segs := l.mu.segs
	// The segment holding offset is the last one based at or below it;
	// compaction may leave gaps, so later segments may be needed too:
	// pin following segments until they alone could fill the budget.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	i = max(i, 0)
	var later int64
	for j := i; j < len(segs) && (j == i || later < maxBytes || minOne && later == 0); j++ {
		seg := segs[j]
		err := l.ensureLoaded(seg)
		var f *os.File
		if err == nil {
			f, err = l.files.acquire(&seg.cf)
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrIO, err)
			}
		}
		if err != nil {
			l.mu.RUnlock()
			for _, p := range pins {
				l.files.release(&p.seg.cf)
			}
			return nil, err
		}
		pins = append(pins, pin{seg, f, seg.size, seg.idx})
		if j > i {
			later += seg.size
		}
	}
	l.mu.RUnlock()

	hr := headerReaders.Get().(*headerReader)
	defer headerReaders.Put(hr)
	budget := maxBytes
	used := 0
	var err error
	for k := range pins {
		p := &pins[k]
		if p.size == 0 {
			continue
		}
		hr.reset(p.f, p.size)
		size := p.size
		if end < res.HighWatermark {
			// A committed read: the segment ends, for this read, at
			// the first batch at or past the LSO.
			var stop int64
			stop, err = findStart(hr, p.seg.base, p.idx, end, p.size)
			if err != nil {
				break
			}
			if stop >= 0 {
				size = stop
			}
		}
		var start, stop int64
		start, err = findStart(hr, p.seg.base, p.idx, offset, size)
		if err != nil {
			break
		}
		if start < 0 || start >= size {
			if size < p.size {
				break // the LSO is in this segment
			}
			continue // offset lies past this segment's last batch
		}
		stop, err = findEnd(hr, p.idx, start, size, budget, minOne && res.Bytes == 0)
		if err != nil || stop == start {
			break
		}
		res.Spans = append(res.Spans, Span{File: p.f, Pos: start, Len: stop - start})
		res.pinned = append(res.pinned, &p.seg.cf)
		used = k + 1
		res.Bytes += stop - start
		budget -= stop - start
		if stop < p.size || budget <= 0 {
			break
		}
		// The segment is exhausted: continue in the next one from
		// its first batch.
		offset = -1
	}
	// Unpin what no span uses.
	for k := range pins {
		if k >= used || !spanUses(res.Spans, pins[k].f) {
			l.files.release(&pins[k].seg.cf)
		}
	}
	if err != nil {
		res.Release()
		return nil, err
	}
	return res, nil
}

func spanUses(spans []Span, f *os.File) bool {
	for _, s := range spans {
		if s.File == f {
			return true
		}
	}
	return false
}

// findStart returns the position of the first batch whose last offset is
// at or above offset (-1 when the segment has none). offset -1 means the
// segment's first batch.
func findStart(hr *headerReader, base int64, idx offsetIndex, offset, size int64) (int64, error) {
	if offset < 0 {
		return 0, nil
	}
	pos := int64(0)
	if rel := offset - base; rel > 0 {
		pos = idx.lookup(uint32(min(rel, math.MaxUint32)))
	}
	for pos < size {
		h, err := hr.at(pos)
		if err != nil {
			return -1, err
		}
		if h.LastOffset() >= offset {
			return pos, nil
		}
		pos += h.Size()
	}
	return -1, nil
}

// findEnd returns the end of the last whole batch that fits in budget
// from start (at least one batch when minOne).
func findEnd(hr *headerReader, idx offsetIndex, start, size, budget int64, minOne bool) (int64, error) {
	h, err := hr.at(start)
	if err != nil {
		return 0, err
	}
	if h.Size() > budget {
		if minOne {
			return start + h.Size(), nil
		}
		return start, nil
	}
	limit := start + budget
	if limit >= size {
		limit = size
	}
	// Jump to the last indexed batch inside the budget, then walk.
	pos := max(start+h.Size(), idx.lookupPos(limit))
	for pos < limit {
		h, err := hr.at(pos)
		if err != nil {
			return 0, err
		}
		if pos+h.Size() > limit {
			break
		}
		pos += h.Size()
	}
	return min(pos, limit), nil
}

// HighWatermark is the log end offset (replication factor 1).
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.next
}

// LogStartOffset is the first offset still readable.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.logStart
}

// Dir is the folder holding the log's files.
func (l *Log) Dir() string { return l.dir }

// SetConfig changes the topic configuration of an open log.
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.cfg = Defaults(cfg)
}

// Config returns the log's effective configuration (defaults applied).
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.cfg
}

// Sync flushes appended data to stable storage: the active segment and any
// segment sealed since the recovery point.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if !l.mu.dirty {
		return nil
	}
	for i, seg := range l.mu.segs {
		synced := i+1 < len(l.mu.segs) && l.mu.segs[i+1].base <= l.mu.recoveryPoint
		if synced || !seg.loaded {
			continue
		}
		if err := l.syncSegment(seg); err != nil {
			return err
		}
	}
	l.mu.unflushed = 0
	return nil
}

// Close flushes and closes the log, leaving a clean-shutdown marker.
func (l *Log) Close() error {
	return l.close(true)
}

// Remove closes the log and deletes its folder.
func (l *Log) Remove() error {
	if err := l.close(false); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}

func (l *Log) close(persist bool) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	l.mu.closed = true
	defer l.closeFilesLocked()
	if !persist || !l.mu.dirty {
		return nil
	}
	// Flush every segment appended since the recovery point, then
	// record the state and, last, the marker that says it is complete.
	for i, seg := range l.mu.segs {
		sealedBelow := i+1 < len(l.mu.segs) && l.mu.segs[i+1].base <= l.mu.recoveryPoint
		if sealedBelow || !seg.loaded {
			continue
		}
		if err := l.syncSegment(seg); err != nil {
			return err
		}
	}
	if seg := l.activeLocked(); seg != nil && seg.loaded {
		seg.sealTimeIndex()
		if err := l.writeIndexes(seg); err != nil {
			return err
		}
	}
	st := l.stateLocked()
	st.recoveryPoint = l.mu.next
	if err := l.writeFileAtomic(l.dir, stateFile, encodeState(st)); err != nil {
		return err
	}
	if err := os.WriteFile(l.dir+"/"+cleanMarker, nil, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return l.syncDir(l.dir)
}

func (l *Log) syncSegment(seg *segment) error {
	f, err := l.files.acquire(&seg.cf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer l.files.release(&seg.cf)
	if err := l.fs.SyncFile(f); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}

func (l *Log) stateLocked() *state {
	return &state{
		logStart:      l.mu.logStart,
		next:          l.mu.next,
		recoveryPoint: l.mu.recoveryPoint,
		cleanedTo:     l.mu.cleanedTo,
		producers:     l.mu.producers,
	}
}

func (l *Log) closeFiles() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFilesLocked()
}

func (l *Log) closeFilesLocked() {
	for _, seg := range l.mu.segs {
		l.files.kill(&seg.cf)
	}
}
