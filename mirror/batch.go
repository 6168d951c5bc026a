package mirror

import (
	"container/heap"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/internal/recordbatch"
)

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
	for len(data) >= recordbatch.FrameSize {
		f, err := recordbatch.ReadFrame(data)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
		}
		if f.Size > int64(len(data)) {
			break // torn tail
		}
		b := rawBatch{Bytes: data[:f.Size], Base: f.BaseOffset, Magic: f.Magic}
		if f.Magic == recordbatch.Magic {
			h, err := recordbatch.ParseHeader(b.Bytes)
			if err != nil {
				return out, fmt.Errorf("%w: batch of %d bytes at offset %d: %w", ErrCorruptBatch, f.Size, f.BaseOffset, err)
			}
			b.Attributes = h.Attributes
			b.LastDelta = h.LastOffsetDelta
			b.FirstTs = h.FirstTimestamp
			b.MaxTs = h.MaxTimestamp
			b.ProducerID = h.ProducerID
			b.Count = h.RecordCount
			b.Transaction = h.Transactional()
			b.Control = h.Control()
		} else {
			// A legacy message set entry: its offset is the last
			// inner offset when compressed; treat it as one unit.
			b.Count = 1
		}
		out = append(out, b)
		data = data[f.Size:]
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
// else; the broker assigns it), partitionLeaderEpoch -1 as a producer
// sends it, producer id, epoch and base sequence replaced, transactional
// bit cleared, CRC-32C patched. Compression and records are untouched;
// callers keep the source base offset they parsed.
//
// The CRC is patched by the header's difference (recordbatch.PatchCRC), not
// recomputed: recomputing was a pass over every byte the mirror forwards,
// about a tenth of batch mode's CPU, and it would give a batch corrupted
// on the way from the source a valid CRC. Patched, such a batch keeps a
// wrong one and the destination refuses it (CORRUPT_MESSAGE).
func rewriteBatch(b []byte, producerID int64, epoch int16, seq int32) {
	var old recordbatch.CoveredHeader
	old.Save(b)
	recordbatch.SetBaseOffset(b, 0)
	recordbatch.SetPartitionLeaderEpoch(b, recordbatch.NoLeaderEpoch)
	recordbatch.SetProducer(b, recordbatch.Producer{ID: producerID, Epoch: epoch, BaseSequence: seq})
	recordbatch.ClearAttributes(b, recordbatch.AttrTransactional)
	recordbatch.PatchCRC(b, &old)
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
	first := recs[0].Timestamp.UnixMilli()
	for _, r := range recs {
		first = min(first, r.Timestamp.UnixMilli())
	}
	var e recordbatch.Encoder
	e.Start(make([]byte, 0, recordbatch.HeaderSize+64*len(recs)), first)
	var hs []recordbatch.RecordHeader
	for _, r := range recs {
		hs = hs[:0]
		for _, h := range r.Headers {
			hs = append(hs, recordbatch.RecordHeader{Key: h.Key, Value: h.Value})
		}
		e.Add(r.Timestamp.UnixMilli()-first, r.Key, r.Value, hs)
	}
	return e.Finish(recordbatch.Producer{ID: producerID, Epoch: epoch, BaseSequence: seq})
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
func nextSeq(seq int32, n int32) int32 { return recordbatch.AddSequence(seq, n) }
