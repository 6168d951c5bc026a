package brokerd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"strait/brokerd/group"
	"strait/brokerd/plog"
	"strait/brokerd/txn"
	"strait/internal/recordbatch"
)

// txnStateTopic is the compacted log behind the transaction coordinator's
// journal: one partition in Dir/internal, listed as internal, written only
// by the coordinator (like __consumer_offsets).
const txnStateTopic = "__transaction_state"

// txnJournal adapts the journal to txn.Journal.
type txnJournal struct{ j *journal }

func (t txnJournal) Append(records []txn.KV) error {
	kvs := make([]group.KV, len(records))
	for i, r := range records {
		kvs[i] = group.KV{Key: r.Key, Value: r.Value}
	}
	return t.j.Append(kvs)
}

func (t txnJournal) Replay(fn func(key, value []byte) error) error { return t.j.Replay(fn) }

// startTxn opens __transaction_state and starts the transaction
// coordinator; the group coordinator must be running already.
func (c *Cluster) startTxn() error {
	var err error
	if c.txnJournal, err = openJournal(filepath.Join(c.cfg.Dir, "internal", txnStateTopic+"-0"), c.opts); err != nil {
		return err
	}
	c.mu.topics[txnStateTopic] = &topic{
		name:     txnStateTopic,
		internal: true,
		configs:  map[string]string{"cleanup.policy": "compact"},
		parts:    []*partition{{topic: txnStateTopic, folder: -1, log: c.txnJournal.log}},
	}
	c.txnJournal.part = c.mu.topics[txnStateTopic].parts[0]
	c.txn, err = txn.New(txn.Config{
		Journal:         txnJournal{c.txnJournal},
		Markers:         markerWriter{c},
		AllocProducerID: c.allocProducerID,
		PartitionExists: func(topic string, partition int32) bool {
			p, _ := c.lookup(topic, partition)
			return p != nil && !c.isInternal(topic)
		},
		MaxTimeout:          c.cfg.TxnMaxTimeout,
		MaxTransactionalIDs: c.cfg.Limits.MaxTransactionalIDs,
		Logger:              c.log,
	})
	if err != nil {
		return fmt.Errorf("%w: transaction coordinator: %w", ErrJournal, err)
	}
	return nil
}

// markerWriter writes transaction markers in process: a control batch on
// every partition of the transaction (replication factor 1, so the
// partition's log is right here), and the group coordinator's commit or
// discard of pending offsets for __consumer_offsets.
type markerWriter struct{ c *Cluster }

// markerTimeout bounds one marker write to the group coordinator.
const markerTimeout = 10 * time.Second

func (m markerWriter) WriteMarkers(pid int64, epoch int16, commit bool, parts []txn.TopicPartition) error {
	c := m.c
	var errs []error
	now := time.Now()
	for _, tp := range parts {
		if tp.Topic == txn.OffsetsTopic {
			ctx, cancel := context.WithTimeout(c.ctx, markerTimeout)
			err := c.coord.CompleteTxn(ctx, pid, commit)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("group offsets: %w", err))
			}
			continue
		}
		p, _ := c.lookup(tp.Topic, tp.Partition)
		if p == nil {
			continue // deleted since: nothing left to end
		}
		res, err := p.log.AppendMarker(pid, epoch, commit, 0, now)
		switch {
		case errors.Is(err, plog.ErrInvalidEpoch):
			// A newer epoch already ended it (fencing); nothing to do.
			c.log.Warn("stale transaction marker", "topic", tp.Topic, "partition", tp.Partition, "producer_id", pid, "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("%s-%d: %w", tp.Topic, tp.Partition, err))
		case !res.Duplicate:
			p.notify()
		}
	}
	return errors.Join(errs...)
}

// verifyTxnProduce asks the transaction coordinator whether every job's
// partition is in the producer's open transaction and answers the ones
// that are not; it returns the jobs to append.
//
// With the authorizer on, a transactional produce also needs WRITE on the
// transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
func (cc *conn) verifyTxnProduce(txnID string, jobs []appendJob) []appendJob {
	if !cc.allowedTxnID(txnID, aclOpWrite) {
		for _, j := range jobs {
			j.sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		}
		return nil
	}
	pid, epoch := int64(-1), int16(-1)
	for _, j := range jobs {
		if h, err := recordbatch.ParseHeader(j.records); err == nil {
			pid, epoch = h.ProducerID, h.ProducerEpoch
			break
		}
	}
	if pid < 0 {
		return jobs // nothing decodes; plog answers each partition
	}
	parts := make([]txn.TopicPartition, len(jobs))
	for i, j := range jobs {
		parts[i] = txn.TopicPartition{Topic: j.topic, Partition: j.sp.Partition}
	}
	codes, err := cc.b.c.txn.Verify(cc.ctx, txnID, pid, epoch, parts)
	if err != nil {
		for _, j := range jobs {
			j.sp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return nil
	}
	kept := jobs[:0]
	for i, j := range jobs {
		switch codes[i] {
		case 0:
			kept = append(kept, j)
		case kerr.ProducerFenced.Code:
			j.sp.ErrorCode = kerr.InvalidProducerEpoch.Code
		default:
			j.sp.ErrorCode = codes[i]
		}
	}
	return kept
}
