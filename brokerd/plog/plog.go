package plog

// CONTRACT STUB: these signatures are the agreed API between brokerd and its
// partition log. The implementation replaces the bodies; signatures may grow
// (new fields, new methods) but existing ones stay so brokerd keeps compiling.

import (
	"errors"
	"log/slog"
	"os"
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
	ErrUnsupported      = errors.New("plog: unsupported batch feature") // e.g. transactional batches
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

// Options are process-wide settings shared by every log.
type Options struct {
	Fsync  bool       // fsync before acknowledging every append
	Files  *FileCache // bounds open file descriptors across all logs
	Logger *slog.Logger
}

// FileCache bounds the number of segment files open at once across logs.
type FileCache struct{}

// NewFileCache returns a cache holding at most max open files.
func NewFileCache(max int) *FileCache { return &FileCache{} }

// Log is one partition's log: a folder of segments.
type Log struct{}

// Open opens (or creates) the partition log in dir. It must be cheap: no
// segment file is opened or scanned unless the last shutdown was unclean.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	return nil, errors.New("plog: not implemented")
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
	return AppendResult{}, ErrClosed
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
}

// Release lets the file cache close the spans' files again.
func (r *ReadResult) Release() {}

// Read returns file spans of whole batches starting at the batch containing
// offset, up to maxBytes (at least one batch when minOne), never past the
// high watermark. offset == HighWatermark returns no spans and no error.
func (l *Log) Read(offset int64, maxBytes int64, minOne bool) (*ReadResult, error) {
	return nil, ErrClosed
}

// HighWatermark is the log end offset (replication factor 1).
func (l *Log) HighWatermark() int64 { return 0 }

// LogStartOffset is the first offset still readable.
func (l *Log) LogStartOffset() int64 { return 0 }

// OffsetForTimestamp returns the first offset whose record timestamp is >=
// ts, and that timestamp; (-1, -1) when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	return -1, -1, ErrClosed
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3); (-1, -1) when empty.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) { return -1, -1, ErrClosed }

// DeleteRecords advances the log start offset to before (DeleteRecords API);
// -1 means the high watermark. Returns the new log start offset.
func (l *Log) DeleteRecords(before int64) (int64, error) { return 0, ErrClosed }

// SetConfig changes the topic configuration of an open log.
func (l *Log) SetConfig(cfg Config) {}

// Maintain applies retention (time, size) and, for compacted logs, runs the
// cleaner when enough is dirty. Called periodically by brokerd's background
// loop, never on the produce or fetch path.
func (l *Log) Maintain(now time.Time) error { return nil }

// Sync flushes appended data to stable storage.
func (l *Log) Sync() error { return nil }

// Close flushes and closes the log, leaving a clean-shutdown marker.
func (l *Log) Close() error { return nil }

// Remove closes the log and deletes its folder.
func (l *Log) Remove() error { return nil }
