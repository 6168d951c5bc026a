package plog

import (
	"fmt"
	"math"
)

// maxProducerBatches is how many recent batches per producer are kept to
// recognise retries (Kafka keeps five: a client has at most five requests
// in flight per partition).
const maxProducerBatches = 5

// producerBatch is what the log remembers of one idempotent batch.
type producerBatch struct {
	firstSeq, lastSeq int32
	base, last        int64
}

// producer is the idempotence state of one producer id on this partition.
// Invariant: batches are in append order, at most maxProducerBatches.
type producer struct {
	epoch   int16
	batches []producerBatch
}

func (p *producer) clone() *producer {
	c := &producer{epoch: p.epoch, batches: make([]producerBatch, len(p.batches), maxProducerBatches)}
	copy(c.batches, p.batches)
	return c
}

// lastOffset is the last offset the producer wrote here (-1 if none).
func (p *producer) lastOffset() int64 {
	if len(p.batches) == 0 {
		return -1
	}
	return p.batches[len(p.batches)-1].last
}

func (p *producer) push(b producerBatch) {
	if len(p.batches) == maxProducerBatches {
		copy(p.batches, p.batches[1:])
		p.batches = p.batches[:maxProducerBatches-1]
	}
	p.batches = append(p.batches, b)
}

// lastSeqOf is the sequence of a batch's last record; sequences wrap from
// math.MaxInt32 to 0.
func lastSeqOf(h *header) int32 {
	s := int64(h.baseSeq) + int64(h.lastDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// checkSeq decides what to do with an idempotent batch given the
// producer's current state (nil when unknown). It returns the original
// batch when h is a retry of one of the remembered batches.
func checkSeq(p *producer, h *header) (*producerBatch, error) {
	if h.baseSeq < 0 {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d", ErrOutOfOrderSeq, h.producerID, h.baseSeq)
	}
	if p == nil {
		if h.baseSeq != 0 {
			return nil, fmt.Errorf("%w: unknown producer %d starts at sequence %d", ErrOutOfOrderSeq, h.producerID, h.baseSeq)
		}
		return nil, nil
	}
	switch {
	case h.epoch < p.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidEpoch, h.producerID, h.epoch, p.epoch)
	case h.epoch > p.epoch:
		if h.baseSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSeq, h.producerID, h.epoch, h.baseSeq)
		}
		return nil, nil
	}
	last := lastSeqOf(h)
	for i := range p.batches {
		b := &p.batches[i]
		if b.firstSeq == h.baseSeq && b.lastSeq == last {
			return b, nil
		}
	}
	if len(p.batches) == 0 {
		if h.baseSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d expected sequence 0, got %d", ErrOutOfOrderSeq, h.producerID, h.baseSeq)
		}
		return nil, nil
	}
	if want := nextSeq(p.batches[len(p.batches)-1].lastSeq); h.baseSeq != want {
		return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSeq, h.producerID, want, h.baseSeq)
	}
	return nil, nil
}

// applyBatch records an appended batch in the producer map (used by append
// and by recovery, which trusts what is on disk).
func applyBatch(m map[int64]*producer, h *header) map[int64]*producer {
	if h.producerID < 0 {
		return m
	}
	if m == nil {
		m = make(map[int64]*producer)
	}
	p := m[h.producerID]
	if p == nil || h.epoch != p.epoch {
		if p != nil && h.epoch < p.epoch {
			return m
		}
		p = &producer{epoch: h.epoch}
		m[h.producerID] = p
	}
	p.push(producerBatch{firstSeq: h.baseSeq, lastSeq: lastSeqOf(h), base: h.baseOffset, last: h.lastOffset()})
	return m
}
