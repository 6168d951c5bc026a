package brokerd

// Produce (key 0), versions 3–12.
//
// Each partition's records (one or more v2 record batches) go to
// plog.Append, which checks length, magic, CRC-32C, size and the
// idempotent producer's sequence, and assigns offsets. acks 0 sends no
// response (a failure closes the connection, as Kafka does); acks 1 and
// -1 (all) are the same with replication factor 1: the response follows
// the append (and the fsync when Config.Fsync or the topic's
// flush.messages=1 asks for one). Appends wake long-polling fetches of the
// partition.
//
// Errors: a partition another broker leads gets NOT_LEADER_OR_FOLLOWER, an
// unknown one UNKNOWN_TOPIC_OR_PARTITION; plog errors map to
// CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, OUT_OF_ORDER_SEQUENCE_NUMBER,
// INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, INVALID_RECORD; a duplicate
// idempotent batch is answered with success and the original offset, as
// Kafka does.
//
// Not supported: transactions (a transactional id or batch is refused),
// record formats older than v2 (versions below 3), topic IDs (v13).

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/plog"
)

// handleProduce returns nil for acks=0. An acks=0 request that failed on
// some partition returns an error instead: with no response to carry the
// error, Kafka closes the connection so the client notices and refreshes
// its metadata; so does brokerd.
func (cc *conn) handleProduce(req *kmsg.ProduceRequest) (*kmsg.ProduceResponse, error) {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	txn := req.TransactionID != nil && *req.TransactionID != ""
	now := time.Now()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			p, _ := c.lookup(rt.Topic, rp.Partition)
			switch {
			case txn:
				sp.ErrorCode = kerr.InvalidRequest.Code
				msg := "brokerd does not support transactions"
				sp.ErrorMessage = &msg
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.topic == offsetsTopic:
				// Only the group coordinator writes its journal.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			case p.leader != cc.b.id:
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				res, err := p.log.Append(rp.Records, now)
				if err != nil {
					sp.ErrorCode = appendErrCode(err)
					if sp.ErrorCode == kerr.InvalidRecord.Code || sp.ErrorCode == kerr.CorruptMessage.Code {
						msg := err.Error()
						sp.ErrorMessage = &msg
					}
					if sp.ErrorCode == kerr.KafkaStorageError.Code {
						c.log.Warn("append", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
					break
				}
				sp.BaseOffset = res.BaseOffset
				sp.LogStartOffset = res.LogStartOffset
				if !res.Duplicate {
					p.notify()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					return nil, fmt.Errorf("%w: acks=0 produce to %s-%d failed with error %d", ErrAcksZero, st.Topic, sp.Partition, sp.ErrorCode)
				}
			}
		}
		return nil, nil
	}
	return resp, nil
}

// appendErrCode maps a plog append error to its Kafka error code.
func appendErrCode(err error) int16 {
	switch {
	case errors.Is(err, plog.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, plog.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, plog.ErrOutOfOrderSeq):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, plog.ErrInvalidEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, plog.ErrUnknownProducer):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, plog.ErrInvalidRecord), errors.Is(err, plog.ErrUnsupported):
		return kerr.InvalidRecord.Code
	case errors.Is(err, plog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, plog.ErrClosed):
		// The partition was deleted or the broker is closing.
		return kerr.NotLeaderForPartition.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}
