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
// Transactions: a request with a transactional id is checked with the
// transaction coordinator first (KIP-890 part 1): every partition must be
// in the producer's open transaction (AddPartitionsToTxn), else
// INVALID_TXN_STATE; an older epoch gets INVALID_PRODUCER_EPOCH, another
// producer id INVALID_PRODUCER_ID_MAPPING. plog then tracks the open
// transaction per partition until the coordinator's marker ends it.
//
// Errors: a partition another broker leads gets NOT_LEADER_OR_FOLLOWER, an
// unknown one UNKNOWN_TOPIC_OR_PARTITION; plog errors map to
// CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, OUT_OF_ORDER_SEQUENCE_NUMBER,
// INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, INVALID_RECORD; a duplicate
// idempotent batch is answered with success and the original offset, as
// Kafka does.
//
// With the authorizer on, a topic needs WRITE (TOPIC_AUTHORIZATION_FAILED).
//
// Not supported: record formats older than v2 (versions below 3), topic IDs (v13).

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
	// The response slices are sized up front so that jobs can point into
	// them while appends run.
	var jobs []appendJob
	var jobBytes int
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			p, _ := c.lookup(rt.Topic, rp.Partition)
			switch {
			case !cc.allowedTopic(rt.Topic, aclOpWrite):
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.topic == offsetsTopic || p.topic == txnStateTopic:
				// Only the coordinators write their journals.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			case p.leader != cc.b.id:
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				jobs = append(jobs, appendJob{p: p, topic: rt.Topic, records: rp.Records, sp: sp})
				jobBytes += len(rp.Records)
			}
		}
	}
	if txn && len(jobs) > 0 {
		jobs = cc.verifyTxnProduce(*req.TransactionID, jobs)
	}
	if len(jobs) > 1 && jobBytes >= parallelAppendBytes && distinctPartitions(jobs) {
		// The client waits for the whole request, so appending its
		// partitions one after another adds their copy times up. Different
		// partitions share no state, so they append side by side.
		// One worker per CPU takes jobs in turn, so a request naming
		// hundreds of partitions starts no more goroutines than can run.
		var next atomic.Int64
		work := func() {
			for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
				jobs[i].run(c, now)
			}
		}
		var wg sync.WaitGroup
		for range min(len(jobs), runtime.GOMAXPROCS(0)) - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
	} else {
		for i := range jobs {
			jobs[i].run(c, now)
		}
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

// parallelAppendBytes is the request size from which its partitions are
// appended concurrently; below it a goroutine costs more than it saves.
const parallelAppendBytes = 256 << 10

// appendJob is one partition's records of a produce request.
type appendJob struct {
	p       *partition
	topic   string
	records []byte
	sp      *kmsg.ProduceResponseTopicPartition
}

func (j *appendJob) run(c *Cluster, now time.Time) {
	sp := j.sp
	res, err := j.p.log.Append(j.records, now)
	if err != nil {
		sp.ErrorCode = appendErrCode(err)
		if sp.ErrorCode == kerr.InvalidRecord.Code || sp.ErrorCode == kerr.CorruptMessage.Code {
			msg := err.Error()
			sp.ErrorMessage = &msg
		}
		if sp.ErrorCode == kerr.KafkaStorageError.Code {
			c.log.Warn("append", "topic", j.topic, "partition", sp.Partition, "err", err)
		}
		return
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogStartOffset = res.LogStartOffset
	if !res.Duplicate {
		j.p.notify()
	}
}

// distinctPartitions reports whether no partition appears twice: a request
// naming one partition twice appends in order, as written.
func distinctPartitions(jobs []appendJob) bool {
	for i := range jobs {
		for k := i + 1; k < len(jobs); k++ {
			if jobs[i].p == jobs[k].p {
				return false
			}
		}
	}
	return true
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
