package brokerd

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/group"
	"strait/internal/recordbatch"
)

// testBatch builds a v2 batch of n records with the given producer fields.
func testBatch(n int, value []byte, pid int64, epoch int16, seq int32) []byte {
	kvs := make([]group.KV, n)
	for i := range kvs {
		kvs[i] = group.KV{Key: []byte{byte(i)}, Value: value}
	}
	b := encodeBatch(kvs, 1_700_000_000_000)
	recordbatch.SetProducer(b, recordbatch.Producer{ID: pid, Epoch: epoch, BaseSequence: seq})
	recordbatch.UpdateCRC(b)
	return b
}

func produceRaw(t *testing.T, rc *rawConn, topic string, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return rc.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

func TestProduceBadBatches(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "bad", 1, map[string]*string{"max.message.bytes": strp("2000")})
	rc := dialRaw(t, c.Addrs()[0])

	good := testBatch(3, []byte("ok"), -1, -1, -1)
	if p := produceRaw(t, rc, "bad", good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch: %+v", p)
	}
	corrupt := testBatch(3, []byte("ok"), -1, -1, -1)
	corrupt[len(corrupt)-2] ^= 0xff
	if p := produceRaw(t, rc, "bad", corrupt); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch: error %d, want CORRUPT_MESSAGE", p.ErrorCode)
	}
	big := testBatch(4, bytes.Repeat([]byte("x"), 1000), -1, -1, -1)
	if p := produceRaw(t, rc, "bad", big); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("large batch: error %d, want MESSAGE_TOO_LARGE", p.ErrorCode)
	}
	if p := produceRaw(t, rc, "bad", []byte{1, 2, 3}); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("garbage: error %d, want CORRUPT_MESSAGE", p.ErrorCode)
	}
	if p := produceRaw(t, rc, "nope", good); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: error %d", p.ErrorCode)
	}
	// Nothing bad reached the log.
	if hw := c.topicPartitions("bad")[0].log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
}

// A retried idempotent batch is answered with its original offset and
// stored once; a gap in sequences is refused.
func TestIdempotentProduce(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "idem", 1, nil)
	rc := dialRaw(t, c.Addrs()[0])
	pid := initProducerID(t, c)

	produceRaw(t, rc, "idem", testBatch(1, []byte("pad"), -1, -1, -1))
	first := produceRaw(t, rc, "idem", testBatch(2, []byte("a"), pid, 0, 0))
	if first.ErrorCode != 0 || first.BaseOffset != 1 {
		t.Fatalf("first: %+v", first)
	}
	again := produceRaw(t, rc, "idem", testBatch(2, []byte("a"), pid, 0, 0))
	if again.ErrorCode != 0 || again.BaseOffset != 1 {
		t.Fatalf("retry: %+v, want success at offset 1", again)
	}
	gap := produceRaw(t, rc, "idem", testBatch(1, []byte("b"), pid, 0, 5))
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", gap.ErrorCode)
	}
	if hw := c.topicPartitions("idem")[0].log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
}

func TestAcksZero(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "fire", 1, nil)
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "fire"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testBatch(2, []byte("z"), -1, -1, -1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rc.send(req)
	// The next response on the wire belongs to the next request.
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 1
	if _, ok := rc.roundTrip(mreq).(*kmsg.MetadataResponse); !ok {
		t.Fatal("no metadata response")
	}
	// Requests on one connection are handled in order, so the append is
	// done once the metadata answer arrives.
	if hw := c.topicPartitions("fire")[0].log.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after acks=0 produce, want 2", hw)
	}
}

// A failed acks=0 produce closes the connection: nothing else can tell the
// client.
func TestAcksZeroFailureCloses(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "missing"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testBatch(1, []byte("z"), -1, -1, -1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rc.send(req)
	rc.expectClosed()
}
