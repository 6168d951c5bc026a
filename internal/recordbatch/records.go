package recordbatch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Record is one decoded record. Its slices alias the records section it
// was read from.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil when the key is null
	Value          []byte // nil when the value is null (a tombstone)
	// Headers is the undecoded header section (count and headers); see
	// EachHeader.
	Headers []byte
	// Raw is the record's whole encoding, length varint included, so a
	// record can be copied into another batch unchanged.
	Raw []byte
}

// Iter walks the records of an uncompressed records section. It never
// allocates and never panics on malformed input:
//
//	it := recordbatch.Iterate(section, h.RecordCount)
//	var r recordbatch.Record
//	for it.Next(&r) { ... }
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	b    []byte
	i, n int32
	err  error
}

// Iterate returns an iterator over count records at the start of section.
// Bytes after the last record are ignored.
func Iterate(section []byte, count int32) Iter { return Iter{b: section, n: count} }

// Next decodes the next record into r; false at the end or on an error.
func (it *Iter) Next(r *Record) bool {
	if it.err != nil || it.i >= it.n {
		return false
	}
	if err := decodeRecord(it.b, r); err != nil {
		it.err = fmt.Errorf("%w: record %d: %w", ErrRecord, it.i, err)
		return false
	}
	it.b = it.b[len(r.Raw):]
	it.i++
	return true
}

// Err is the error that stopped Next, if any.
func (it *Iter) Err() error { return it.err }

type fieldError string

func (e fieldError) Error() string { return string(e) }

const (
	errLength    fieldError = "length"
	errEmpty     fieldError = "empty"
	errTimestamp fieldError = "timestamp"
	errOffset    fieldError = "offset delta"
	errKey       fieldError = "key"
	errValue     fieldError = "value"
	errHeader    fieldError = "header"
)

func decodeRecord(b []byte, r *Record) error {
	l, k := binary.Varint(b)
	if k <= 0 || l < 0 || int64(len(b)-k) < l {
		return errLength
	}
	r.Raw = b[:k+int(l)]
	body := r.Raw[k:]
	if len(body) < 1 {
		return errEmpty
	}
	r.Attributes = int8(body[0])
	body = body[1:]
	var ok bool
	var v int64
	if v, body, ok = varint(body); !ok {
		return errTimestamp
	}
	r.TimestampDelta = v
	if v, body, ok = varint(body); !ok || v < 0 || v > math.MaxInt32 {
		return errOffset
	}
	r.OffsetDelta = int32(v)
	if r.Key, body, ok = bytesField(body); !ok {
		return errKey
	}
	if r.Value, body, ok = bytesField(body); !ok {
		return errValue
	}
	r.Headers = body
	return nil
}

// EachHeader calls fn for each header of the record; a null header value
// is nil.
func (r *Record) EachHeader(fn func(key, value []byte) error) error {
	n, b, ok := varint(r.Headers)
	if !ok || n < 0 || n > int64(len(b)) {
		return fmt.Errorf("%w: %w", ErrRecord, errHeader)
	}
	for ; n > 0; n-- {
		var key, val []byte
		if key, b, ok = bytesField(b); !ok || key == nil {
			return fmt.Errorf("%w: %w", ErrRecord, errHeader)
		}
		if val, b, ok = bytesField(b); !ok {
			return fmt.Errorf("%w: %w", ErrRecord, errHeader)
		}
		if err := fn(key, val); err != nil {
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

// bytesField reads a varint-length-prefixed byte string (-1 = null, nil).
func bytesField(b []byte) (val, rest []byte, ok bool) {
	l, b, ok := varint(b)
	if !ok || l < -1 || l > int64(len(b)) {
		return nil, b, false
	}
	if l == -1 {
		return nil, b, true
	}
	return b[:l:l], b[l:], true
}

// AppendVarBytes appends a varint length (-1 for nil) and the bytes: the
// encoding of a record's key, value and header value.
func AppendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// RecordHeader is one header of a record to encode.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Encoder builds one uncompressed batch. Its zero value is ready for
// Start; it keeps its scratch space between batches.
//
//	var e recordbatch.Encoder
//	e.Start(nil, firstTs)
//	e.Add(0, key, value, nil)
//	batch := e.Finish(recordbatch.NoProducer)
type Encoder struct {
	buf      []byte
	rec      []byte
	start    int // where the batch begins in buf
	count    int32
	firstTs  int64
	maxDelta int64
}

// Start begins a batch appended to dst (which the batch's bytes extend)
// whose records have timestamps firstTimestamp plus their delta.
func (e *Encoder) Start(dst []byte, firstTimestamp int64) {
	e.start = len(dst)
	e.buf = append(dst, make([]byte, HeaderSize)...)
	e.count, e.firstTs, e.maxDelta = 0, firstTimestamp, 0
}

// Add appends a record with the next offset delta.
func (e *Encoder) Add(timestampDelta int64, key, value []byte, headers []RecordHeader) {
	r := e.rec[:0]
	r = append(r, 0) // attributes: none defined for records
	r = binary.AppendVarint(r, timestampDelta)
	r = binary.AppendVarint(r, int64(e.count))
	r = AppendVarBytes(r, key)
	r = AppendVarBytes(r, value)
	r = binary.AppendVarint(r, int64(len(headers)))
	for _, h := range headers {
		r = binary.AppendVarint(r, int64(len(h.Key)))
		r = append(r, h.Key...)
		r = AppendVarBytes(r, h.Value)
	}
	e.buf = binary.AppendVarint(e.buf, int64(len(r)))
	e.buf = append(e.buf, r...)
	e.rec = r
	e.count++
	e.maxDelta = max(e.maxDelta, timestampDelta)
}

// Finish writes the header (base offset 0, partitionLeaderEpoch
// NoLeaderEpoch, no attributes, the producer given) and the CRC, and
// returns dst extended by the batch. At least one record must have been
// added.
func (e *Encoder) Finish(p Producer) []byte {
	batch := e.buf[e.start:]
	h := Header{
		Length:               int32(len(batch) - LengthOverhead),
		PartitionLeaderEpoch: NoLeaderEpoch,
		Magic:                Magic,
		LastOffsetDelta:      e.count - 1,
		FirstTimestamp:       e.firstTs,
		MaxTimestamp:         e.firstTs + e.maxDelta,
		ProducerID:           p.ID,
		ProducerEpoch:        p.Epoch,
		BaseSequence:         p.BaseSequence,
		RecordCount:          e.count,
	}
	h.Put(batch)
	UpdateCRC(batch)
	out := e.buf
	e.buf = nil
	return out
}
