package brokerd

import (
	"fmt"
	"sync"
	"time"

	"strait/brokerd/group"
	"strait/brokerd/plog"
	"strait/internal/recordbatch"
)

// offsetsTopic is the compacted log behind the group coordinator's
// journal. It has one partition, kept in Dir/internal, led by broker 0.
// Metadata lists it as internal (as Kafka does) and it can be fetched, but
// only the coordinator writes it: Produce, DeleteTopics, CreatePartitions
// and config changes on it are refused.
const offsetsTopic = "__consumer_offsets"

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

// encodeBatch builds one uncompressed record batch (recordbatch's layout,
// no producer) holding records, timestamps all ts.
func encodeBatch(records []group.KV, ts int64) []byte {
	var e recordbatch.Encoder
	e.Start(make([]byte, 0, recordbatch.HeaderSize+len(records)*64), ts)
	for _, kv := range records {
		e.Add(0, kv.Key, kv.Value, nil)
	}
	return e.Finish(recordbatch.NoProducer)
}

// decodeBatches calls fn for every record of the uncompressed batches in
// data and returns the offset after the last batch.
func decodeBatches(data []byte, fn func(key, value []byte) error) (int64, error) {
	var next int64
	for len(data) > 0 {
		h, err := recordbatch.ParseHeader(data)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrJournal, err)
		}
		if h.Size() > int64(len(data)) {
			return 0, fmt.Errorf("%w: batch length %d beyond %d bytes", ErrJournal, h.Length, len(data))
		}
		batch := data[:h.Size()]
		data = data[h.Size():]
		next = h.NextOffset()
		if h.Control() {
			continue
		}
		if h.Codec() != recordbatch.CodecNone {
			return 0, fmt.Errorf("%w: compressed batch at offset %d", ErrJournal, h.BaseOffset)
		}
		it := recordbatch.Iterate(batch[recordbatch.HeaderSize:], h.RecordCount)
		var r recordbatch.Record
		for it.Next(&r) {
			if err := fn(r.Key, r.Value); err != nil {
				return 0, err
			}
		}
		if err := it.Err(); err != nil {
			return 0, fmt.Errorf("%w: offset %d: %w", ErrJournal, h.BaseOffset, err)
		}
	}
	return next, nil
}
