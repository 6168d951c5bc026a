package plog

import (
	"fmt"

	"strait/internal/recordbatch"
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
	// inTxn: a transaction of this producer is open here, starting at
	// txnFirst (its first batch). Invariant: Log.mu.ongoing counts the
	// producers with inTxn set.
	inTxn    bool
	txnFirst int64
}

func (p *producer) clone() *producer {
	c := &producer{epoch: p.epoch, batches: make([]producerBatch, len(p.batches), maxProducerBatches), inTxn: p.inTxn, txnFirst: p.txnFirst}
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

// checkSeq decides what to do with an idempotent batch given the
// producer's current state (nil when unknown). It returns the original
// batch when h is a retry of one of the remembered batches.
func checkSeq(p *producer, h *recordbatch.Header) (*producerBatch, error) {
	if h.BaseSequence < 0 {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d", ErrOutOfOrderSeq, h.ProducerID, h.BaseSequence)
	}
	if p == nil {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: unknown producer %d starts at sequence %d", ErrOutOfOrderSeq, h.ProducerID, h.BaseSequence)
		}
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < p.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidEpoch, h.ProducerID, h.ProducerEpoch, p.epoch)
	case h.ProducerEpoch > p.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSeq, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := h.LastSequence()
	for i := range p.batches {
		b := &p.batches[i]
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if len(p.batches) == 0 {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d expected sequence 0, got %d", ErrOutOfOrderSeq, h.ProducerID, h.BaseSequence)
		}
		return nil, nil
	}
	if want := recordbatch.AddSequence(p.batches[len(p.batches)-1].lastSeq, 1); h.BaseSequence != want {
		return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSeq, h.ProducerID, want, h.BaseSequence)
	}
	return nil, nil
}
