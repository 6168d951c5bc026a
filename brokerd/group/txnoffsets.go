package group

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447).
//
// An offset committed inside a transaction is pending: journaled at once
// (so a decided commit survives a crash) but invisible to OffsetFetch
// until the transaction coordinator ends the transaction through
// CompleteTxn. A commit turns the producer's pending offsets into ordinary
// committed offsets; an abort discards them. Both write, in one journal
// batch, the offsets (commit only) and tombstones for the pending records,
// so after compaction a replay finds exactly the offsets still pending.
//
// Pending record key (version 100, a kind of strait's own; Kafka marks
// transactional offsets with control batches instead):
//
//	+-----------+------------------+--------------+--------------+------------+
//	| int16 100 | int64 producerId | string group | string topic | int32 part |
//	+-----------+------------------+--------------+--------------+------------+
//
// Its value is an offset commit value (version 3), as for a plain commit.
const keyTxnOffset = 100

// txnOffsetKey names one pending offset of a producer.
type txnOffsetKey struct {
	group, topic string
	partition    int32
}

func pendingKey(pid int64, k txnOffsetKey) []byte {
	b := kbin.AppendInt16(nil, keyTxnOffset)
	b = kbin.AppendInt64(b, pid)
	b = kbin.AppendString(b, k.group)
	b = kbin.AppendString(b, k.topic)
	return kbin.AppendInt32(b, k.partition)
}

func decodePendingKey(b []byte) (int64, txnOffsetKey, error) {
	r := kbin.Reader{Src: b}
	r.Int16()
	pid := r.Int64()
	k := txnOffsetKey{group: r.String(), topic: r.String(), partition: r.Int32()}
	if err := r.Complete(); err != nil {
		return 0, k, fmt.Errorf("%w: pending offset key: %w", ErrCorruptJournal, err)
	}
	return pid, k, nil
}

// replayPending applies a pending-offset record (or its tombstone).
func (s *state) replayPending(key, value []byte) error {
	pid, k, err := decodePendingKey(key)
	if err != nil {
		return err
	}
	if value == nil {
		if m := s.txnOffsets[pid]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(s.txnOffsets, pid)
			}
		}
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: pending offset value: %w", ErrCorruptJournal, err)
	}
	s.setPending(pid, k, offset{offset: v.Offset, epoch: v.LeaderEpoch, metadata: v.Metadata, commitMillis: v.CommitTimestamp})
	return nil
}

func (s *state) setPending(pid int64, k txnOffsetKey, o offset) {
	if s.txnOffsets == nil {
		s.txnOffsets = make(map[int64]map[txnOffsetKey]offset)
	}
	m := s.txnOffsets[pid]
	if m == nil {
		m = make(map[txnOffsetKey]offset)
		s.txnOffsets[pid] = m
	}
	m[k] = o
}

// pendingFor reports whether any producer has a pending offset for the
// partition (OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT).
func (s *state) pendingFor(group, topic string, partition int32) bool {
	k := txnOffsetKey{group, topic, partition}
	for _, m := range s.txnOffsets {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// txnCommit serves TxnOffsetCommit. brokerd has asked the transaction
// coordinator first whether the producer's transaction holds the group.
// From v3 (KIP-447) a member id and generation, when given, are checked
// like an OffsetCommit's, so a zombie that lost its partitions cannot
// commit for them.
func (s *state) txnCommit(cl *call, r *kmsg.TxnOffsetCommitRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var code int16
	if r.Version >= 3 && (r.Generation >= 0 || r.MemberID != "") {
		g := s.groups[r.Group]
		if g == nil {
			code = kerr.IllegalGeneration.Code
		} else {
			_, code = checkMember(g, r.MemberID, r.InstanceID, r.Generation)
		}
	}
	var kvs []KV
	type apply struct {
		k txnOffsetKey
		o offset
	}
	var todo []apply
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			if code == 0 && p.Metadata != nil && len(*p.Metadata) > maxMetadataBytes {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			if rp.ErrorCode == 0 {
				o := offset{offset: p.Offset, epoch: -1, commitMillis: now.UnixMilli()}
				if r.Version >= 2 {
					o.epoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					o.metadata = *p.Metadata
				}
				k := txnOffsetKey{r.Group, t.Topic, p.Partition}
				kvs = append(kvs, KV{Key: pendingKey(r.ProducerID, k), Value: offsetValue(o)})
				todo = append(todo, apply{k, o})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(kvs) > 0 {
		if err := s.append(kvs); err != nil {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if resp.Topics[i].Partitions[j].ErrorCode == 0 {
						resp.Topics[i].Partitions[j].ErrorCode = kerr.UnknownServerError.Code
					}
				}
			}
		} else {
			for _, a := range todo {
				s.setPending(r.ProducerID, a.k, a.o)
			}
		}
	}
	reply(cl, resp)
}

// completeTxn commits or discards the producer's pending offsets.
func (s *state) completeTxn(pid int64, commit bool) error {
	m := s.txnOffsets[pid]
	if len(m) == 0 {
		return nil
	}
	kvs := make([]KV, 0, 2*len(m))
	for k, o := range m {
		if commit {
			kvs = append(kvs, KV{Key: offsetKey(k.group, k.topic, k.partition), Value: offsetValue(o)})
		}
		kvs = append(kvs, KV{Key: pendingKey(pid, k)})
	}
	if err := s.append(kvs); err != nil {
		return err
	}
	if commit {
		for k, o := range m {
			s.getOrCreate(k.group).setOffset(k.topic, k.partition, o)
		}
	}
	delete(s.txnOffsets, pid)
	return nil
}

// CompleteTxn ends the producer's transaction in every group: its pending
// offsets become committed (commit) or are discarded. The transaction
// coordinator calls it as the marker for __consumer_offsets; repeating it
// is harmless.
func (c *Coordinator) CompleteTxn(ctx context.Context, producerID int64, commit bool) error {
	var err error
	cl := &call{reply: make(chan kmsg.Response, 1)}
	cl.fn = func(time.Time) { err = c.st.completeTxn(producerID, commit) }
	select {
	case c.calls <- cl:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
	select {
	case <-cl.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}
