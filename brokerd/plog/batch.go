package plog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Offsets of the record batch v2 header fields (see doc.go).
const (
	offBaseOffset   = 0
	offLength       = 8
	offLeaderEpoch  = 12
	offMagic        = 16
	offCRC          = 17
	offAttributes   = 21
	offLastDelta    = 23
	offFirstTs      = 27
	offMaxTs        = 35
	offProducerID   = 43
	offEpoch        = 51
	offBaseSeq      = 53
	offRecordCount  = 57
	batchHeaderSize = 61
	// lengthOverhead is what precedes the bytes counted by batchLength.
	lengthOverhead = 12
)

// Batch attribute bits.
const (
	attrCompression   = 0x07
	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the decoded fixed part of a record batch.
type header struct {
	baseOffset  int64
	length      int32 // batchLength: bytes after the length field
	magic       int8
	crc         uint32
	attributes  int16
	lastDelta   int32
	firstTs     int64
	maxTs       int64
	producerID  int64
	epoch       int16
	baseSeq     int32
	recordCount int32
}

// size is the batch's total size on disk.
func (h *header) size() int64 { return int64(h.length) + lengthOverhead }

// lastOffset is the offset of the batch's last record slot.
func (h *header) lastOffset() int64 { return h.baseOffset + int64(h.lastDelta) }

// parseHeader decodes a batch header from b (at least batchHeaderSize bytes)
// and checks the fields that make the batch walkable: magic 2, a length
// covering at least the header, a non-negative lastOffsetDelta.
func parseHeader(b []byte) (header, error) {
	if len(b) < batchHeaderSize {
		return header{}, fmt.Errorf("%w: short header (%d bytes)", ErrCorrupt, len(b))
	}
	h := header{
		baseOffset:  int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		length:      int32(binary.BigEndian.Uint32(b[offLength:])),
		magic:       int8(b[offMagic]),
		crc:         binary.BigEndian.Uint32(b[offCRC:]),
		attributes:  int16(binary.BigEndian.Uint16(b[offAttributes:])),
		lastDelta:   int32(binary.BigEndian.Uint32(b[offLastDelta:])),
		firstTs:     int64(binary.BigEndian.Uint64(b[offFirstTs:])),
		maxTs:       int64(binary.BigEndian.Uint64(b[offMaxTs:])),
		producerID:  int64(binary.BigEndian.Uint64(b[offProducerID:])),
		epoch:       int16(binary.BigEndian.Uint16(b[offEpoch:])),
		baseSeq:     int32(binary.BigEndian.Uint32(b[offBaseSeq:])),
		recordCount: int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, h.magic)
	}
	if h.length < batchHeaderSize-lengthOverhead {
		return h, fmt.Errorf("%w: batch length %d below header size", ErrCorrupt, h.length)
	}
	if h.lastDelta < 0 || h.recordCount < 0 {
		return h, fmt.Errorf("%w: negative lastOffsetDelta %d or record count %d", ErrCorrupt, h.lastDelta, h.recordCount)
	}
	if h.baseOffset < 0 {
		return h, fmt.Errorf("%w: negative base offset %d", ErrCorrupt, h.baseOffset)
	}
	return h, nil
}

// checkCRC verifies the CRC-32C over attributes..end of a whole batch.
func checkCRC(batch []byte, h *header) error {
	if got := crc32.Checksum(batch[offAttributes:], castagnoli); got != h.crc {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, got, h.crc)
	}
	return nil
}

// setBaseOffset rewrites the fields outside the CRC that the broker owns.
func setBaseOffset(batch []byte, base int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], 0)
}

// fixCRC recomputes the CRC of a batch built or edited in memory.
func fixCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}

// record is one decoded record of a batch; raw is its full encoding
// (length varint included) so the cleaner can copy it unchanged.
type record struct {
	offsetDelta int32
	tsDelta     int64
	key         []byte
	nullKey     bool
	nullValue   bool
	raw         []byte
}

// recordsOf returns the decompressed record bytes of a batch.
func recordsOf(batch []byte, h *header) ([]byte, error) {
	body := batch[batchHeaderSize:h.size()]
	codec := h.attributes & attrCompression
	if codec == 0 {
		return body, nil
	}
	out, err := decompress(codec, body)
	if err != nil {
		return nil, fmt.Errorf("%w: codec %d: %v", ErrCorrupt, codec, err)
	}
	return out, nil
}

// maxDecompressed bounds the output of a decompression so a hostile batch
// cannot make the broker allocate without limit.
const maxDecompressed = 256 << 20

var (
	xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	zstdDec, _  = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
)

func decompress(codec int16, in []byte) ([]byte, error) {
	switch codec {
	case 1:
		r, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, err
		}
		return readLimited(r)
	case 2:
		if bytes.HasPrefix(in, xerialMagic) && len(in) >= 16 {
			// Java clients frame snappy as xerial chunks: a 16-byte
			// header then [int32 length][snappy block] repeated.
			var out []byte
			for p := in[16:]; len(p) > 0; {
				if len(p) < 4 {
					return nil, io.ErrUnexpectedEOF
				}
				n := int(binary.BigEndian.Uint32(p))
				p = p[4:]
				if n < 0 || n > len(p) {
					return nil, io.ErrUnexpectedEOF
				}
				blk, err := decodeSnappy(p[:n])
				if err != nil {
					return nil, err
				}
				out = append(out, blk...)
				if len(out) > maxDecompressed {
					return nil, errTooBigOutput
				}
				p = p[n:]
			}
			return out, nil
		}
		return decodeSnappy(in)
	case 3:
		return readLimited(lz4.NewReader(bytes.NewReader(in)))
	case 4:
		return zstdDec.DecodeAll(in, nil)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

var errTooBigOutput = fmt.Errorf("decompressed size above %d bytes", maxDecompressed)

func decodeSnappy(b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed {
		return nil, errTooBigOutput
	}
	return s2.Decode(nil, b)
}

func readLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecompressed {
		return nil, errTooBigOutput
	}
	return out, nil
}

// parseRecords walks n records in b, calling fn for each. It never panics
// on malformed input; it returns ErrCorrupt instead.
func parseRecords(b []byte, n int32, fn func(r *record) error) error {
	for i := int32(0); i < n; i++ {
		l, k := binary.Varint(b)
		if k <= 0 || l < 0 || int64(len(b)-k) < l {
			return fmt.Errorf("%w: record %d length", ErrCorrupt, i)
		}
		raw := b[:k+int(l)]
		body := raw[k:]
		b = b[k+int(l):]
		var r record
		r.raw = raw
		if len(body) < 1 {
			return fmt.Errorf("%w: record %d empty", ErrCorrupt, i)
		}
		body = body[1:] // attributes
		var ok bool
		var v int64
		if v, body, ok = varint(body); !ok {
			return fmt.Errorf("%w: record %d timestamp", ErrCorrupt, i)
		}
		r.tsDelta = v
		if v, body, ok = varint(body); !ok || v < 0 || v > 1<<31-1 {
			return fmt.Errorf("%w: record %d offset delta", ErrCorrupt, i)
		}
		r.offsetDelta = int32(v)
		if r.key, r.nullKey, body, ok = bytesField(body); !ok {
			return fmt.Errorf("%w: record %d key", ErrCorrupt, i)
		}
		if _, r.nullValue, _, ok = bytesField(body); !ok {
			return fmt.Errorf("%w: record %d value", ErrCorrupt, i)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

func varint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, b, false
	}
	return v, b[k:], true
}

// bytesField reads a varint-length-prefixed byte string (-1 = null).
func bytesField(b []byte) (val []byte, null bool, rest []byte, ok bool) {
	l, b, ok := varint(b)
	if !ok || l < -1 || l > int64(len(b)) {
		return nil, false, b, false
	}
	if l == -1 {
		return nil, true, b, true
	}
	return b[:l], false, b[l:], true
}

// validatedBatch is one batch of a produce payload that passed validation.
type validatedBatch struct {
	pos int // position in the payload
	h   header
}

// splitPayload validates every batch of a produce payload without changing
// it: framing, magic, CRC, size limit, record count, no control or
// transactional batches, keys when compacted.
func splitPayload(p []byte, maxMessageBytes int32, compacted bool) ([]validatedBatch, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrCorrupt)
	}
	var out []validatedBatch
	for pos := 0; pos < len(p); {
		rest := p[pos:]
		if len(rest) < batchHeaderSize {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
		}
		h, err := parseHeader(rest)
		if err != nil {
			return nil, err
		}
		if h.size() > int64(len(rest)) {
			return nil, fmt.Errorf("%w: batch length %d beyond payload", ErrCorrupt, h.length)
		}
		if h.size() > int64(maxMessageBytes) {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, h.size(), maxMessageBytes)
		}
		batch := rest[:h.size()]
		if err := checkCRC(batch, &h); err != nil {
			return nil, err
		}
		if h.attributes&attrControl != 0 {
			return nil, fmt.Errorf("%w: control batch from a producer", ErrInvalidRecord)
		}
		if h.attributes&attrTransactional != 0 {
			return nil, fmt.Errorf("%w: transactional batch", ErrUnsupported)
		}
		if codec := h.attributes & attrCompression; codec > 4 {
			return nil, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
		}
		if h.recordCount < 1 || int64(h.recordCount) != int64(h.lastDelta)+1 {
			return nil, fmt.Errorf("%w: %d records but lastOffsetDelta %d", ErrCorrupt, h.recordCount, h.lastDelta)
		}
		if compacted {
			recs, err := recordsOf(batch, &h)
			if err != nil {
				return nil, err
			}
			err = parseRecords(recs, h.recordCount, func(r *record) error {
				if r.nullKey {
					return fmt.Errorf("%w: record without key on a compacted log", ErrInvalidRecord)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		out = append(out, validatedBatch{pos: pos, h: h})
		pos += int(h.size())
	}
	return out, nil
}
