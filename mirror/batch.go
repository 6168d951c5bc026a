package mirror

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch (magic 2) header, as stored and sent by Kafka:
//
//	 0  baseOffset            int64
//	 8  batchLength           int32   bytes after this field
//	12  partitionLeaderEpoch  int32
//	16  magic                 int8    2
//	17  crc                   uint32  CRC-32C of bytes 21..end
//	21  attributes            int16   0-2 codec, 3 log-append time, 4 transactional, 5 control
//	23  lastOffsetDelta       int32
//	27  firstTimestamp        int64
//	35  maxTimestamp          int64
//	43  producerId            int64
//	51  producerEpoch         int16
//	53  baseSequence          int32
//	57  recordCount           int32
//	61  records...
const (
	batchHeaderLen  = 61
	offAttributes   = 21
	offLastDelta    = 23
	offFirstTs      = 27
	offMaxTs        = 35
	offProducerID   = 43
	offProducerEpoc = 51
	offBaseSequence = 53
	offRecordCount  = 57

	attrCodecMask     = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// rawBatch is one complete record batch found in fetched bytes.
type rawBatch struct {
	Bytes       []byte // the whole batch, aliasing the fetch buffer
	Base        int64
	LastDelta   int32
	Count       int32
	Magic       int8
	Attributes  int16
	ProducerID  int64
	MaxTs       int64
	FirstTs     int64
	Transaction bool
	Control     bool
}

// End is the offset after the batch's last offset.
func (b *rawBatch) End() int64 { return b.Base + int64(b.LastDelta) + 1 }

// splitBatches cuts fetched bytes into complete batches; a torn batch at the
// end (a fetch cut at MaxBytes) is left out. Legacy message sets (magic 0/1)
// are returned with Magic < 2 and their offsets read from the wrapper.
func splitBatches(data []byte) ([]rawBatch, error) {
	var out []rawBatch
	for len(data) >= 17 {
		base := int64(binary.BigEndian.Uint64(data))
		length := int32(binary.BigEndian.Uint32(data[8:]))
		if length < 0 {
			return out, fmt.Errorf("%w: negative batch length %d at offset %d", ErrCorruptBatch, length, base)
		}
		size := 12 + int(length)
		if size > len(data) {
			break // torn tail
		}
		magic := int8(data[16])
		b := rawBatch{Bytes: data[:size], Base: base, Magic: magic}
		if magic == 2 {
			if size < batchHeaderLen {
				return out, fmt.Errorf("%w: batch of %d bytes at offset %d", ErrCorruptBatch, size, base)
			}
			b.Attributes = int16(binary.BigEndian.Uint16(data[offAttributes:]))
			b.LastDelta = int32(binary.BigEndian.Uint32(data[offLastDelta:]))
			b.FirstTs = int64(binary.BigEndian.Uint64(data[offFirstTs:]))
			b.MaxTs = int64(binary.BigEndian.Uint64(data[offMaxTs:]))
			b.ProducerID = int64(binary.BigEndian.Uint64(data[offProducerID:]))
			b.Count = int32(binary.BigEndian.Uint32(data[offRecordCount:]))
			b.Transaction = b.Attributes&attrTransactional != 0
			b.Control = b.Attributes&attrControl != 0
			if b.LastDelta < 0 || b.Count < 0 {
				return out, fmt.Errorf("%w: bad counts at offset %d", ErrCorruptBatch, base)
			}
		} else {
			// A legacy message set entry: its offset is the last
			// inner offset when compressed; treat it as one unit.
			b.Count = 1
		}
		out = append(out, b)
		data = data[size:]
	}
	return out, nil
}

// abortedHeap orders aborted transactions by first offset.
type abortedHeap []kmsg.FetchResponseTopicPartitionAbortedTransaction

func (h abortedHeap) Len() int           { return len(h) }
func (h abortedHeap) Less(i, j int) bool { return h[i].FirstOffset < h[j].FirstOffset }
func (h abortedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *abortedHeap) Push(x any) {
	*h = append(*h, x.(kmsg.FetchResponseTopicPartitionAbortedTransaction))
}
func (h *abortedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// step is one unit of work planned from a fetched chunk.
type step struct {
	Batch rawBatch
	// Whole: forward the batch as is (producer fields rewritten). Otherwise
	// the batch is decoded and only records at or past From are re-encoded.
	Whole bool
	From  int64
	// Skip: nothing to write (control, aborted, our own, or already
	// mirrored); the position still moves to Batch.End().
	Skip       bool
	SkipReason string
}

// planBatches decides, purely from fetched bytes, what to do with each batch:
// skip control batches, aborted transactional data (the consumer's
// algorithm: an aborted producer's batches are dropped from its first offset
// until its next control batch), batches written by one of the mirror's own
// producers (loop prevention) and offsets before pos; forward whole batches
// without holes; decode the rest.
func planBatches(batches []rawBatch, pos int64, aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction, own func(int64) bool) []step {
	h := make(abortedHeap, len(aborted))
	copy(h, aborted)
	heap.Init(&h)
	abortedPIDs := map[int64]bool{}
	var out []step
	for _, b := range batches {
		if b.Magic == 2 {
			for h.Len() > 0 && h[0].FirstOffset <= b.End()-1 {
				abortedPIDs[heap.Pop(&h).(kmsg.FetchResponseTopicPartitionAbortedTransaction).ProducerID] = true
			}
		}
		st := step{Batch: b, From: pos}
		switch {
		case b.End() <= pos:
			st.Skip, st.SkipReason = true, "already mirrored"
		case b.Magic == 2 && b.Control:
			// The first control batch of an aborted producer closes
			// its aborted transaction.
			delete(abortedPIDs, b.ProducerID)
			st.Skip, st.SkipReason = true, "control"
		case b.Magic == 2 && b.Transaction && abortedPIDs[b.ProducerID]:
			st.Skip, st.SkipReason = true, "aborted"
		case b.Magic == 2 && own != nil && b.ProducerID >= 0 && own(b.ProducerID):
			st.Skip, st.SkipReason = true, "own"
		case b.Magic == 2 && b.Base >= pos && b.Count == b.LastDelta+1:
			st.Whole = true
		}
		out = append(out, st)
	}
	return out
}

// rewriteBatch turns a source batch into the mirror's own idempotent batch in
// place: base offset zeroed (clients send 0 and Kafka refuses anything
// else; the broker assigns it), producer id, epoch and base sequence
// replaced, transactional bit cleared, CRC-32C recomputed. Compression and
// records are untouched; callers keep the source base offset they parsed.
func rewriteBatch(b []byte, producerID int64, epoch int16, seq int32) {
	binary.BigEndian.PutUint64(b[0:], 0)
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) &^ attrTransactional
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint32(b[12:], 0xffffffff) // partition leader epoch: the broker sets it
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(producerID))
	binary.BigEndian.PutUint16(b[offProducerEpoc:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[offAttributes:], crc32c))
}

// decodeBatch returns the records of one batch at or past from.
func decodeBatch(b rawBatch, from int64, topic string, partition int32) ([]*kgo.Record, error) {
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:             from,
		IsolationLevel:     kgo.ReadUncommitted(),
		Topic:              topic,
		Partition:          partition,
		KeepControlRecords: false,
	}, &kmsg.FetchResponseTopicPartition{
		Partition:     partition,
		HighWatermark: b.End(),
		RecordBatches: b.Bytes,
	}, decompressor, nil)
	if fp.Err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptBatch, fp.Err)
	}
	return fp.Records, nil
}

// encodeBatch writes records as one uncompressed magic-2 batch with
// contiguous offset deltas, producer fields set. Used for the rare batches
// that cannot be forwarded whole (a start in the middle of a batch, holes
// left by compaction, legacy message sets).
func encodeBatch(recs []*kgo.Record, producerID int64, epoch int16, seq int32) []byte {
	first, maxTs := recs[0].Timestamp.UnixMilli(), recs[0].Timestamp.UnixMilli()
	for _, r := range recs {
		ts := r.Timestamp.UnixMilli()
		if ts < first {
			first = ts
		}
		if ts > maxTs {
			maxTs = ts
		}
	}
	b := make([]byte, batchHeaderLen, batchHeaderLen+64*len(recs))
	var rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, r.Timestamp.UnixMilli()-first)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, r.Key)
		rec = appendVarBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = binary.AppendVarint(rec, int64(len(h.Key)))
			rec = append(rec, h.Key...)
			rec = appendVarBytes(rec, h.Value)
		}
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	binary.BigEndian.PutUint64(b[0:], 0)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], 0)
	binary.BigEndian.PutUint32(b[offLastDelta:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(b[offFirstTs:], uint64(first))
	binary.BigEndian.PutUint64(b[offMaxTs:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(producerID))
	binary.BigEndian.PutUint16(b[offProducerEpoc:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(len(recs)))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

// appendVarBytes appends a varint length (-1 for nil) and the bytes.
func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// runs groups the offsets of decoded records into contiguous runs, for the
// offset map: each run is (first source offset, index in the batch, length).
func runs(recs []*kgo.Record) [][3]int64 {
	var out [][3]int64
	for i, r := range recs {
		if n := len(out); n > 0 && out[n-1][0]+out[n-1][2] == r.Offset {
			out[n-1][2]++
			continue
		}
		out = append(out, [3]int64{r.Offset, int64(i), 1})
	}
	return out
}

// nextSeq advances an idempotent sequence number, wrapping as Kafka does.
func nextSeq(seq int32, n int32) int32 {
	s := int64(seq) + int64(n)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}
