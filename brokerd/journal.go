package brokerd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"

	"strait/brokerd/group"
	"strait/brokerd/plog"
)

// offsetsTopic is the compacted log behind the group coordinator's
// journal. It has one partition, kept in Dir/internal, led by broker 0.
// Metadata lists it as internal (as Kafka does) and it can be fetched, but
// only the coordinator writes it: Produce, DeleteTopics, CreatePartitions
// and config changes on it are refused.
const offsetsTopic = "__consumer_offsets"

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// journal implements group.Journal over a compacted plog log. Each Append
// is one uncompressed record batch; a nil value is a tombstone, which the
// log's cleaner drops after delete.retention.ms.
type journal struct {
	mu  sync.Mutex // serialises appends so batches keep the caller's order
	log *plog.Log
	// part is the log's place in the topic table, for waking fetches.
	part *partition
}

var _ group.Journal = (*journal)(nil)

func openJournal(dir string, opts plog.Options) (*journal, error) {
	l, err := plog.Open(dir, plog.Config{Compact: true}, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrJournal, err)
	}
	return &journal{log: l}, nil
}

// Append stores the records as one batch; it returns after plog acknowledges
// it, which is as durable as a produce.
func (j *journal) Append(records []group.KV) error {
	if len(records) == 0 {
		return nil
	}
	batch := encodeBatch(records, time.Now().UnixMilli())
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.log.Append(batch, time.Now()); err != nil {
		return fmt.Errorf("%w: append: %w", ErrJournal, err)
	}
	if j.part != nil {
		j.part.notify()
	}
	return nil
}

// Replay reads the whole log, oldest first.
func (j *journal) Replay(fn func(key, value []byte) error) error {
	off := j.log.LogStartOffset()
	for {
		rr, err := j.log.Read(off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("%w: read: %w", ErrJournal, err)
		}
		if len(rr.Spans) == 0 {
			rr.Release()
			return nil
		}
		var data []byte
		for _, s := range rr.Spans {
			b, err := readSpan(s)
			if err != nil {
				rr.Release()
				return fmt.Errorf("%w: %w", ErrJournal, err)
			}
			data = append(data, *b...)
			copyPool.put(b)
		}
		rr.Release()
		next, err := decodeBatches(data, fn)
		if err != nil {
			return err
		}
		if next <= off {
			return fmt.Errorf("%w: no progress at offset %d", ErrJournal, off)
		}
		off = next
	}
}

func (j *journal) close() error { return j.log.Close() }

// encodeBatch builds one uncompressed v2 record batch (baseOffset 0, no
// producer) holding records, timestamps all ts. Layout:
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
//	magic int8 (2) | crc uint32 | attributes int16 | lastOffsetDelta int32 |
//	firstTimestamp int64 | maxTimestamp int64 | producerId int64 |
//	producerEpoch int16 | baseSequence int32 | records count int32 | records
//
// The CRC-32C covers attributes through the end.
func encodeBatch(records []group.KV, ts int64) []byte {
	b := make([]byte, 61, 61+len(records)*64)
	binary.BigEndian.PutUint64(b[0:], 0)
	binary.BigEndian.PutUint32(b[12:], 0)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], 0)
	binary.BigEndian.PutUint32(b[23:], uint32(len(records)-1))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)     // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff) // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(len(records)))
	var rec []byte
	for i, kv := range records {
		rec = rec[:0]
		rec = append(rec, 0)                   // attributes
		rec = kbin.AppendVarlong(rec, 0)       // timestamp delta
		rec = kbin.AppendVarint(rec, int32(i)) // offset delta
		rec = appendVarBytes(rec, kv.Key)
		rec = appendVarBytes(rec, kv.Value)
		rec = kbin.AppendVarint(rec, 0) // no headers
		b = kbin.AppendVarint(b, int32(len(rec)))
		b = append(b, rec...)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return kbin.AppendVarint(dst, -1)
	}
	dst = kbin.AppendVarint(dst, int32(len(v)))
	return append(dst, v...)
}

var errShortBatch = errors.New("short batch")

// decodeBatches calls fn for every record of the uncompressed batches in
// data and returns the offset after the last batch.
func decodeBatches(data []byte, fn func(key, value []byte) error) (int64, error) {
	var next int64
	for len(data) > 0 {
		if len(data) < 61 {
			return 0, fmt.Errorf("%w: %w", ErrJournal, errShortBatch)
		}
		base := int64(binary.BigEndian.Uint64(data[0:]))
		length := int(int32(binary.BigEndian.Uint32(data[8:])))
		if length < 49 || 12+length > len(data) {
			return 0, fmt.Errorf("%w: batch length %d", ErrJournal, length)
		}
		batch := data[:12+length]
		data = data[12+length:]
		attrs := binary.BigEndian.Uint16(batch[21:])
		lastDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		next = base + lastDelta + 1
		if attrs&0x20 != 0 { // control batch
			continue
		}
		if attrs&0x07 != 0 {
			return 0, fmt.Errorf("%w: compressed batch at offset %d", ErrJournal, base)
		}
		n := int(int32(binary.BigEndian.Uint32(batch[57:])))
		r := kbin.Reader{Src: batch[61:]}
		for i := 0; i < n; i++ {
			l := r.Varint()
			body := kbin.Reader{Src: r.Span(int(l))}
			body.Int8()
			body.Varlong()
			body.Varint()
			key := body.VarintBytes()
			value := body.VarintBytes()
			if !r.Ok() || !body.Ok() {
				return 0, fmt.Errorf("%w: bad record at offset %d", ErrJournal, base)
			}
			if err := fn(key, value); err != nil {
				return 0, err
			}
		}
	}
	return next, nil
}
