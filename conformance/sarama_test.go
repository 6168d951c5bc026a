package conformance

// IBM/sarama against strait broker: topic creation through the cluster
// admin, keyed records with headers from a sync producer (plain and
// idempotent), a consumer group that reads them back in order and commits,
// the committed offsets read back, and a SASL/PLAIN login.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

const saramaRecords = 1000

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "strait-conformance-sarama"
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	return cfg
}

func TestSaramaRoundTrip(t *testing.T) {
	b := startBroker(t)
	saramaRoundTrip(t, b, saramaConfig(), "sarama-plain")
}

func TestSaramaIdempotent(t *testing.T) {
	b := startBroker(t)
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	saramaRoundTrip(t, b, cfg, "sarama-idempotent")
}

func TestSaramaSASLPlain(t *testing.T) {
	b := startBroker(t, "--sasl-user", "u:p")
	cfg := saramaConfig()
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "u", "p"
	saramaRoundTrip(t, b, cfg, "sarama-sasl")

	bad := saramaConfig()
	bad.Net.SASL.Enable = true
	bad.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	bad.Net.SASL.User, bad.Net.SASL.Password = "u", "wrong"
	bad.Metadata.Retry.Max = 0
	if c, err := sarama.NewClient(b.addrs, bad); err == nil {
		c.Close()
		t.Fatal("sarama logged in with a wrong password")
	}
}

// saramaRoundTrip creates a 3-partition topic, produces saramaRecords
// records over ten keys, consumes them with a group, commits, and checks
// the group's committed offsets equal the partitions' high watermarks.
func saramaRoundTrip(t *testing.T, b *broker, cfg *sarama.Config, topic string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(b.addrs, cfg)
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}

	prod, err := sarama.NewSyncProducer(b.addrs, cfg)
	if err != nil {
		t.Fatalf("sync producer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, saramaRecords)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%10)),
			Value: sarama.StringEncoder(strconv.Itoa(i)),
			Headers: []sarama.RecordHeader{
				{Key: []byte("origin"), Value: []byte("sarama")},
				{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))},
			},
		}
	}
	// Batches of 100 keep several records per produce request.
	for i := 0; i < len(msgs); i += 100 {
		if err := prod.SendMessages(msgs[i : i+100]); err != nil {
			t.Fatalf("SendMessages: %v", err)
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatalf("producer close: %v", err)
	}
	// Records of one key go to one partition, in the order they were sent.
	high := map[int32]int64{}
	for _, m := range msgs {
		if m.Offset+1 > high[m.Partition] {
			high[m.Partition] = m.Offset + 1
		}
	}

	const group = "sarama-group"
	cg, err := sarama.NewConsumerGroup(b.addrs, group, cfg)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	h := &saramaHandler{t: t, want: saramaRecords, next: map[string]int{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatal(h.err)
		}
	case err := <-consumed:
		t.Fatalf("consume ended before every record arrived: %v (%d of %d)", err, h.count(), saramaRecords)
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records in 30s", h.count(), saramaRecords)
	}
	cancel()
	if err := <-consumed; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("consumer group close: %v", err)
	}
	if h.err != nil {
		t.Fatal(h.err)
	}

	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		blk := res.GetBlock(topic, p)
		if blk == nil || blk.Err != sarama.ErrNoError {
			t.Fatalf("committed offset of partition %d: %+v", p, blk)
		}
		if blk.Offset != high[p] {
			t.Errorf("partition %d committed %d, want %d", p, blk.Offset, high[p])
		}
	}
}

// saramaHandler checks each key's records arrive in sequence with their
// headers, marks every record and commits once all have arrived.
type saramaHandler struct {
	t    *testing.T
	want int
	mu   sync.Mutex
	next map[string]int // key -> the sequence expected next
	n    int
	err  error
	done chan struct{}
	once sync.Once
}

func (h *saramaHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (*saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		if err := h.check(m); err != nil {
			h.once.Do(func() { close(h.done) })
			return err
		}
		s.MarkMessage(m, "")
		// A commit waits behind the fetch long-polls pipelined on the
		// coordinator's connection (Consumer.MaxWaitTime each), as it does
		// against Kafka, so commit every hundred records and at the end.
		if n := h.count(); n%100 == 0 || n == h.want {
			s.Commit()
		}
		if h.count() == h.want {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func (h *saramaHandler) check(m *sarama.ConsumerMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := string(m.Key)
	seq, err := strconv.Atoi(string(m.Value))
	if err != nil || key != fmt.Sprintf("key-%d", seq%10) {
		h.err = fmt.Errorf("%w: partition %d offset %d: key %q value %q", errMismatch, m.Partition, m.Offset, key, m.Value)
		return h.err
	}
	want, ok := h.next[key]
	if !ok {
		want = seq % 10
	}
	if seq != want && seq != want-10 {
		h.err = fmt.Errorf("%w: key %s: got sequence %d, want %d", errMismatch, key, seq, want)
		return h.err
	}
	if seq == want-10 {
		return nil // redelivered after a rebalance; already counted
	}
	if len(m.Headers) != 2 || string(m.Headers[0].Key) != "origin" || string(m.Headers[0].Value) != "sarama" ||
		string(m.Headers[1].Key) != "seq" || string(m.Headers[1].Value) != string(m.Value) {
		h.err = fmt.Errorf("%w: record %d headers %v", errMismatch, seq, m.Headers)
		return h.err
	}
	h.next[key] = seq + 10
	h.n++
	return nil
}
