package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// readChunk is the most one Fetch asks for: enough to stream at full speed,
// little enough that a reader's memory stays flat.
const readChunk = 4 << 20

var decompressor = kgo.DefaultDecompressor()

// Reader streams one partition's records in [from, end) with plain Fetch
// requests (READ_COMMITTED: control records and aborted data never show)
// to the partition's leader. Each byte is fetched once; only one response
// is held at a time.
type Reader struct {
	cl          *kgo.Client
	topic       string
	part        int32
	off, end    int64
	ignore      string // header left out of hashes
	leader      int32
	recs        []*kgo.Record
	i           int
	fails       int
	BytesRead   int64 // record-batch bytes fetched
	RecordsRead int64
}

// NewReader prepares a reader of topic/part over [from, end).
func NewReader(cl *kgo.Client, topic string, part int32, from, end int64, ignore string) *Reader {
	return &Reader{cl: cl, topic: topic, part: part, off: from, end: end, ignore: ignore, leader: -1}
}

// Iter adapts the reader for Compare.
func (r *Reader) Iter(ctx context.Context) Next {
	return func() (Rec, bool, error) {
		for {
			for r.i < len(r.recs) {
				rec := r.recs[r.i]
				r.i++
				if rec.Offset >= r.end {
					r.recs, r.off = nil, r.end
					return Rec{}, false, nil
				}
				r.RecordsRead++
				return Rec{Offset: rec.Offset, Hash: Hash(rec, r.ignore), Size: Size(rec), Ts: rec.Timestamp}, true, nil
			}
			if r.off >= r.end {
				return Rec{}, false, nil
			}
			if err := r.fetch(ctx); err != nil {
				return Rec{}, false, err
			}
		}
	}
}

// fetch reads the next chunk, retrying leader moves and transient errors a
// few times.
func (r *Reader) fetch(ctx context.Context) error {
	for {
		err := r.fetchOnce(ctx)
		if err == nil {
			r.fails = 0
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.fails++
		if r.fails > 8 {
			return fmt.Errorf("%w: read %s/%d at %d: %w", ErrRead, r.topic, r.part, r.off, err)
		}
		r.leader = -1
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(r.fails) * 100 * time.Millisecond):
		}
	}
}

func (r *Reader) fetchOnce(ctx context.Context) error {
	if r.leader < 0 {
		l, err := leader(ctx, r.cl, r.topic, r.part)
		if err != nil {
			return err
		}
		r.leader = l
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = readChunk
	req.IsolationLevel = 1 // READ_COMMITTED
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = r.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = r.part
	rp.FetchOffset = r.off
	rp.PartitionMaxBytes = readChunk
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl.Broker(int(r.leader)))
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return errors.New("malformed fetch response")
	}
	p := &resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		if errors.Is(err, kerr.OffsetOutOfRange) && p.LogStartOffset > r.off {
			// Deleted before it could be read: the comparison sees the
			// records after it, and counts the ones it expected here.
			r.off = p.LogStartOffset
			return nil
		}
		return err
	}
	r.BytesRead += int64(len(p.RecordBatches))
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: r.off, IsolationLevel: kgo.ReadCommitted(), Topic: r.topic, Partition: r.part,
	}, p, decompressor, nil)
	if fp.Err != nil && len(fp.Records) == 0 {
		return fp.Err
	}
	r.recs, r.i = fp.Records, 0
	if next > r.off {
		r.off = next
	} else if len(p.RecordBatches) == 0 && min(p.HighWatermark, p.LastStableOffset) <= r.off {
		// Nothing more below the end we were given (the log shrank, or
		// the records up to end were all control records or aborted).
		r.off = r.end
	}
	return nil
}

// leader asks for the partition's leader with a direct Metadata request
// (never auto-creating the topic).
func leader(ctx context.Context, cl *kgo.Client, topic string, part int32) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return -1, err
		}
		for _, p := range t.Partitions {
			if p.Partition == part {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return -1, err
				}
				if p.Leader < 0 {
					return -1, kerr.LeaderNotAvailable
				}
				return p.Leader, nil
			}
		}
	}
	return -1, kerr.UnknownTopicOrPartition
}
