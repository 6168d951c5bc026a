package plog

import (
	"fmt"

	"strait/internal/recordbatch"
)

// The record batch format itself (layout, CRC, records, compression) is
// internal/recordbatch's; these wrappers classify its errors as plog's.

// parseHeader decodes a batch header from b and checks the fields that make
// the batch walkable (see recordbatch.ParseHeader).
func parseHeader(b []byte) (recordbatch.Header, error) {
	h, err := recordbatch.ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return h, nil
}

// checkCRC verifies the CRC-32C of a whole batch.
func checkCRC(batch []byte, h *recordbatch.Header) error {
	if err := recordbatch.CheckCRC(batch, h); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// setBaseOffset rewrites the fields outside the CRC that the broker owns:
// the offset it assigns and its leader epoch, always 0 in brokerd.
func setBaseOffset(batch []byte, base int64) {
	recordbatch.SetBaseOffset(batch, base)
	recordbatch.SetPartitionLeaderEpoch(batch, 0)
}

// recordsOf returns the decompressed record bytes of a batch.
func recordsOf(batch []byte, h *recordbatch.Header) ([]byte, error) {
	out, err := recordbatch.RecordBytes(batch, h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// parseRecords walks n records in b, calling fn for each. It never panics
// on malformed input; it returns ErrCorrupt instead.
func parseRecords(b []byte, n int32, fn func(r *recordbatch.Record) error) error {
	it := recordbatch.Iterate(b, n)
	var r recordbatch.Record
	for it.Next(&r) {
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// validatedBatch is one batch of a produce payload that passed validation.
type validatedBatch struct {
	pos int // position in the payload
	h   recordbatch.Header
}

// splitPayload validates every batch of a produce payload without changing
// it: framing, magic, CRC, size limit, record count, no control batches
// or transactional batches without a producer id without a producer id, keys when compacted.
func splitPayload(p []byte, maxMessageBytes int32, compacted bool) ([]validatedBatch, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrCorrupt)
	}
	var out []validatedBatch
	for pos := 0; pos < len(p); {
		rest := p[pos:]
		if len(rest) < recordbatch.HeaderSize {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
		}
		h, err := parseHeader(rest)
		if err != nil {
			return nil, err
		}
		if h.Size() > int64(len(rest)) {
			return nil, fmt.Errorf("%w: batch length %d beyond payload", ErrCorrupt, h.Length)
		}
		if h.Size() > int64(maxMessageBytes) {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, h.Size(), maxMessageBytes)
		}
		batch := rest[:h.Size()]
		if err := checkCRC(batch, &h); err != nil {
			return nil, err
		}
		if h.Control() {
			return nil, fmt.Errorf("%w: control batch from a producer", ErrInvalidRecord)
		}
		if h.Transactional() && h.ProducerID < 0 {
			return nil, fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidRecord)
		}
		if codec := h.Codec(); codec > recordbatch.CodecZstd {
			return nil, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
		}
		if !h.Dense() {
			return nil, fmt.Errorf("%w: %d records but lastOffsetDelta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
		}
		if compacted {
			recs, err := recordsOf(batch, &h)
			if err != nil {
				return nil, err
			}
			err = parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
				if r.Key == nil {
					return fmt.Errorf("%w: record without key on a compacted log", ErrInvalidRecord)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		out = append(out, validatedBatch{pos: pos, h: h})
		pos += int(h.Size())
	}
	return out, nil
}
