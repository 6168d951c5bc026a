package conformance

// segmentio/kafka-go against strait broker: CreateTopics through
// kafka.Client, keyed records with headers from a Writer, a Reader in a
// consumer group that reads them back in order per key and commits, and the
// committed offsets read back with OffsetFetch.

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestKafkaGoRoundTrip(t *testing.T) {
	b := startBroker(t)
	const topic, group, n = "kafka-go", "kafka-go-group", 1000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	client := &kafka.Client{Addr: kafka.TCP(b.addrs...), Timeout: 10 * time.Second}
	cres, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if err := cres.Errors[topic]; err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(b.addrs...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    100,
		BatchTimeout: 10 * time.Millisecond,
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:   []byte(fmt.Sprintf("key-%d", i%10)),
			Value: []byte(strconv.Itoa(i)),
			Headers: []kafka.Header{
				{Key: "origin", Value: []byte("kafka-go")},
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
			},
		}
	}
	for i := 0; i < n; i += 100 {
		if err := w.WriteMessages(ctx, msgs[i:i+100]...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("writer close: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        b.addrs,
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		CommitInterval: 0, // CommitMessages commits synchronously
		MaxWait:        500 * time.Millisecond,
	})
	next := map[string]int{}
	high := map[int]int64{}
	for got := 0; got < n; got++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("FetchMessage after %d of %d records: %v", got, n, err)
		}
		key := string(m.Key)
		seq, err := strconv.Atoi(string(m.Value))
		if err != nil || key != fmt.Sprintf("key-%d", seq%10) {
			t.Fatalf("partition %d offset %d: key %q value %q", m.Partition, m.Offset, key, m.Value)
		}
		want, ok := next[key]
		if !ok {
			want = seq % 10
		}
		if seq != want {
			t.Fatalf("key %s: got sequence %d, want %d", key, seq, want)
		}
		next[key] = seq + 10
		if len(m.Headers) != 2 || m.Headers[0].Key != "origin" || string(m.Headers[0].Value) != "kafka-go" ||
			m.Headers[1].Key != "seq" || string(m.Headers[1].Value) != string(m.Value) {
			t.Fatalf("record %d headers %v", seq, m.Headers)
		}
		high[m.Partition] = m.Offset + 1
		if (got+1)%100 == 0 {
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages: %v", err)
			}
		}
	}
	// The last record of every partition: CommitMessages keeps the
	// highest offset per partition.
	var last []kafka.Message
	for p, off := range high {
		last = append(last, kafka.Message{Topic: topic, Partition: p, Offset: off - 1})
	}
	if err := r.CommitMessages(ctx, last...); err != nil {
		t.Fatalf("CommitMessages: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("reader close: %v", err)
	}

	ores, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{topic: {0, 1, 2}},
	})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if ores.Error != nil {
		t.Fatalf("OffsetFetch: %v", ores.Error)
	}
	for _, p := range ores.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("OffsetFetch partition %d: %v", p.Partition, p.Error)
		}
		if p.CommittedOffset != high[p.Partition] {
			t.Errorf("partition %d committed %d, want %d", p.Partition, p.CommittedOffset, high[p.Partition])
		}
	}
	if len(ores.Topics[topic]) != 3 {
		t.Errorf("OffsetFetch answered %d partitions, want 3", len(ores.Topics[topic]))
	}
}
