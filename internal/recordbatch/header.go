package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Offsets of the batch header fields (see the diagram in doc.go).
const (
	OffBaseOffset           = 0
	OffLength               = 8
	OffPartitionLeaderEpoch = 12
	OffMagic                = 16
	OffCRC                  = 17
	OffAttributes           = 21
	OffLastOffsetDelta      = 23
	OffFirstTimestamp       = 27
	OffMaxTimestamp         = 35
	OffProducerID           = 43
	OffProducerEpoch        = 51
	OffBaseSequence         = 53
	OffRecordCount          = 57

	// HeaderSize is the fixed part of a batch; the records follow it.
	HeaderSize = 61
	// LengthOverhead is what precedes the bytes counted by batchLength:
	// baseOffset and batchLength themselves.
	LengthOverhead = 12
	// FrameSize is the prefix every message format shares (offset, length,
	// and the magic byte at the same place in v0, v1 and v2).
	FrameSize = OffMagic + 1
	// Magic is the only batch format this package decodes.
	Magic = 2
)

// Attribute bits.
const (
	AttrCompression   = 0x07 // mask of the codec, see Codec*
	AttrTimestampType = 0x08 // set: timestamps are log-append time
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

// Compression codecs, the value of Attributes&AttrCompression.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLZ4    = 3
	CodecZstd   = 4
)

// NoLeaderEpoch is the partitionLeaderEpoch a producer writes: unknown.
const NoLeaderEpoch = -1

// Errors. Every decoding error wraps ErrCorrupt; the others say which check
// failed.
var (
	// ErrCorrupt: the bytes are not a well-formed record batch.
	ErrCorrupt = errors.New("recordbatch: corrupt batch")
	// ErrShort: fewer bytes than the structure needs.
	ErrShort = fmt.Errorf("%w: short", ErrCorrupt)
	// ErrMagic: a magic byte other than 2.
	ErrMagic = fmt.Errorf("%w: bad magic", ErrCorrupt)
	// ErrLength: a batchLength that cannot frame a batch.
	ErrLength = fmt.Errorf("%w: bad length", ErrCorrupt)
	// ErrCounts: negative base offset, lastOffsetDelta or record count.
	ErrCounts = fmt.Errorf("%w: bad offsets", ErrCorrupt)
	// ErrCRC: the CRC-32C does not match the bytes.
	ErrCRC = fmt.Errorf("%w: crc mismatch", ErrCorrupt)
	// ErrRecord: a record inside the batch does not decode.
	ErrRecord = fmt.Errorf("%w: bad record", ErrCorrupt)
	// ErrCompression: an unknown codec or a section that does not
	// decompress (or decompresses past MaxDecompressed).
	ErrCompression = fmt.Errorf("%w: bad compression", ErrCorrupt)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed part of a batch. It is a plain value: it
// keeps no reference to the bytes it came from.
type Header struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after the length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// DecodeHeader decodes the header fields of b without checking them; b
// must hold at least HeaderSize bytes.
func DecodeHeader(b []byte) Header {
	_ = b[HeaderSize-1]
	return Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[OffBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[OffLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[OffPartitionLeaderEpoch:])),
		Magic:                int8(b[OffMagic]),
		CRC:                  binary.BigEndian.Uint32(b[OffCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[OffAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[OffLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[OffFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[OffMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[OffProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[OffProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[OffBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[OffRecordCount:])),
	}
}

// ParseHeader decodes the header at the start of b and checks the fields
// that make a batch walkable: magic 2, a batchLength covering at least the
// header, non-negative base offset, lastOffsetDelta and record count, and
// a last offset whose successor still fits in an int64. On
// error the decoded fields are returned too (for messages), unless b is
// shorter than a header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header of %d bytes", ErrShort, len(b))
	}
	h := DecodeHeader(b)
	return h, h.Validate()
}

// Validate checks what ParseHeader checks.
func (h *Header) Validate() error {
	switch {
	case h.Magic != Magic:
		return fmt.Errorf("%w: magic %d, want 2", ErrMagic, h.Magic)
	case h.Length < HeaderSize-LengthOverhead:
		return fmt.Errorf("%w: batch length %d below header size", ErrLength, h.Length)
	case h.LastOffsetDelta < 0 || h.RecordCount < 0:
		return fmt.Errorf("%w: negative lastOffsetDelta %d or record count %d", ErrCounts, h.LastOffsetDelta, h.RecordCount)
	case h.BaseOffset < 0:
		return fmt.Errorf("%w: negative base offset %d", ErrCounts, h.BaseOffset)
	case h.BaseOffset > math.MaxInt64-1-int64(h.LastOffsetDelta):
		// The offset after the batch must still be an offset.
		return fmt.Errorf("%w: base offset %d plus lastOffsetDelta %d passes the largest offset", ErrCounts, h.BaseOffset, h.LastOffsetDelta)
	}
	return nil
}

// Put encodes h into the first HeaderSize bytes of b, CRC field included
// as it is in h (UpdateCRC computes it once the records are in place).
func (h *Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint64(b[OffBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[OffLength:], uint32(h.Length))
	binary.BigEndian.PutUint32(b[OffPartitionLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[OffMagic] = byte(h.Magic)
	binary.BigEndian.PutUint32(b[OffCRC:], h.CRC)
	binary.BigEndian.PutUint16(b[OffAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[OffLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[OffFirstTimestamp:], uint64(h.FirstTimestamp))
	binary.BigEndian.PutUint64(b[OffMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[OffProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[OffProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[OffBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[OffRecordCount:], uint32(h.RecordCount))
}

// Size is the batch's total size in bytes, header included.
func (h *Header) Size() int64 { return int64(h.Length) + LengthOverhead }

// LastOffset is the offset of the batch's last record slot.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the compression codec, one of Codec*.
func (h *Header) Codec() int16 { return h.Attributes & AttrCompression }

// Transactional reports the transactional attribute.
func (h *Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports the control attribute (transaction markers).
func (h *Header) Control() bool { return h.Attributes&AttrControl != 0 }

// Dense reports whether the batch has a record in every offset slot, as a
// batch fresh from a producer does: at least one record and recordCount
// equal to lastOffsetDelta+1. Compaction leaves batches that are not.
func (h *Header) Dense() bool {
	return h.RecordCount >= 1 && int64(h.RecordCount) == int64(h.LastOffsetDelta)+1
}

// LastSequence is the sequence number of the batch's last record.
func (h *Header) LastSequence() int32 { return AddSequence(h.BaseSequence, h.LastOffsetDelta) }

// AddSequence advances an idempotent sequence number by n >= 0, wrapping
// from math.MaxInt32 to 0 as Kafka does.
func AddSequence(seq, n int32) int32 {
	s := int64(seq) + int64(n)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// Frame is the prefix shared by every message format: enough to step over
// a batch or a legacy message set entry.
type Frame struct {
	BaseOffset int64
	Size       int64 // whole entry, LengthOverhead included
	Magic      int8
}

// ReadFrame reads the frame at the start of b (at least FrameSize bytes).
// The entry may extend past b; compare Size with len(b).
func ReadFrame(b []byte) (Frame, error) {
	if len(b) < FrameSize {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes", ErrShort, len(b))
	}
	base := int64(binary.BigEndian.Uint64(b[OffBaseOffset:]))
	length := int32(binary.BigEndian.Uint32(b[OffLength:]))
	if length < 0 {
		return Frame{}, fmt.Errorf("%w: negative batch length %d at offset %d", ErrLength, length, base)
	}
	return Frame{BaseOffset: base, Size: int64(length) + LengthOverhead, Magic: int8(b[OffMagic])}, nil
}

// ComputeCRC is the CRC-32C of a whole batch, as its header should hold.
func ComputeCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[OffAttributes:], castagnoli)
}

// CheckCRC verifies the CRC of a whole batch against its parsed header.
func CheckCRC(batch []byte, h *Header) error {
	if len(batch) < HeaderSize {
		return fmt.Errorf("%w: batch of %d bytes", ErrShort, len(batch))
	}
	if got := ComputeCRC(batch); got != h.CRC {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCRC, got, h.CRC)
	}
	return nil
}

// UpdateCRC recomputes the CRC of a whole batch built or edited in memory.
func UpdateCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[OffCRC:], ComputeCRC(batch))
}

// SetBaseOffset rewrites baseOffset (outside the CRC).
func SetBaseOffset(batch []byte, base int64) {
	binary.BigEndian.PutUint64(batch[OffBaseOffset:], uint64(base))
}

// SetPartitionLeaderEpoch rewrites partitionLeaderEpoch (outside the CRC).
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[OffPartitionLeaderEpoch:], uint32(epoch))
}

// Producer is the idempotent-producer identity of a batch.
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32
}

// NoProducer marks a batch from a producer that is not idempotent.
var NoProducer = Producer{ID: -1, Epoch: -1, BaseSequence: -1}

// SetProducer rewrites producerId, producerEpoch and baseSequence. They are
// inside the CRC: call UpdateCRC after the last edit.
func SetProducer(batch []byte, p Producer) {
	binary.BigEndian.PutUint64(batch[OffProducerID:], uint64(p.ID))
	binary.BigEndian.PutUint16(batch[OffProducerEpoch:], uint16(p.Epoch))
	binary.BigEndian.PutUint32(batch[OffBaseSequence:], uint32(p.BaseSequence))
}

// SetAttributes rewrites the attributes. They are inside the CRC: call
// UpdateCRC after the last edit.
func SetAttributes(batch []byte, attrs int16) {
	binary.BigEndian.PutUint16(batch[OffAttributes:], uint16(attrs))
}

// ClearAttributes clears the given attribute bits. They are inside the
// CRC: call UpdateCRC after the last edit.
func ClearAttributes(batch []byte, bits int16) {
	a := binary.BigEndian.Uint16(batch[OffAttributes:]) &^ uint16(bits)
	binary.BigEndian.PutUint16(batch[OffAttributes:], a)
}
