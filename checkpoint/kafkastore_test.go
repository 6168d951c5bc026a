package checkpoint

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// kafkaBackends are the clusters the kafka store is tested on: brokerd (the
// embedded destination) and kfake.
func kafkaBackends(t *testing.T) map[string]func(*testing.T) *kgo.Client {
	return map[string]func(*testing.T) *kgo.Client{
		"brokerd": func(t *testing.T) *kgo.Client { _, cl := newBrokerd(t); return cl },
		"kfake":   func(t *testing.T) *kgo.Client { _, cl := newKfake(t); return cl },
	}
}

func TestKafkaStoreRestart(t *testing.T) {
	for name, backend := range kafkaBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dest := backend(t)
			s, err := Open(ctx, pipelines.Checkpoints{Store: "kafka"}, dest)
			if err != nil {
				t.Fatal(err)
			}
			// The topic exists and is compacted.
			cfgs, err := kadm.NewClient(dest).DescribeTopicConfigs(ctx, DefaultTopic)
			if err != nil {
				t.Fatal(err)
			}
			c, err := cfgs.On(DefaultTopic, nil)
			if err != nil || c.Err != nil {
				t.Fatalf("describe %s: %v %v", DefaultTopic, err, c.Err)
			}
			compact := false
			for _, kv := range c.Configs {
				if kv.Key == "cleanup.policy" && kv.MaybeValue() == "compact" {
					compact = true
				}
			}
			if !compact {
				t.Errorf("%s is not compacted: %+v", DefaultTopic, c.Configs)
			}

			if err := s.Save(ctx, "east", sampleState(1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Save(ctx, "west", sampleState(7)); err != nil {
				t.Fatal(err)
			}
			// A partial update: one partition and a new producer id.
			upd := sampleState(2)
			delete(upd.Partitions, TP{"orders", 1})
			if err := s.Save(ctx, "east", upd); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// Restart: a new store on the same cluster (opening again finds
			// the topic already there).
			s2, err := Open(ctx, pipelines.Checkpoints{}, dest)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			st, err := s2.Load(ctx, "east")
			if err != nil {
				t.Fatal(err)
			}
			equalStates(t, st, mergedStates(sampleState(1), upd))
			st, err = s2.Load(ctx, "west")
			if err != nil {
				t.Fatal(err)
			}
			equalStates(t, st, sampleState(7))
			st, err = s2.Load(ctx, "none")
			if err != nil || len(st.Partitions) != 0 || len(st.ProducerIDs) != 0 {
				t.Fatalf("unknown pipeline: %+v %v", st, err)
			}
		})
	}
}

func TestKafkaStoreCorruptRecord(t *testing.T) {
	ctx := context.Background()
	_, dest := newKfake(t)
	s, err := OpenKafka(ctx, dest, "ckpts")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Save(ctx, "p", sampleState(1)); err != nil {
		t.Fatal(err)
	}
	tp := TP{"orders", 0}
	good := encodePartition("p", tp, sampleState(1).Partitions[tp])
	key := partitionKey("p", tp)
	bad := map[string][]byte{
		"flipped byte": func() []byte { b := append([]byte(nil), good...); b[5] ^= 1; return b }(),
		"truncated":    good[:len(good)-3],
		"garbage":      []byte("not a checkpoint"),
		// A valid record filed under another partition's key.
		"wrong key": encodePartition("p", TP{"orders", 9}, sampleState(1).Partitions[tp]),
	}
	for name, v := range bad {
		produce(t, dest, &kgo.Record{Topic: "ckpts", Key: []byte(key), Value: v})
		_, err := s.Load(ctx, "p")
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "orders") {
			t.Fatalf("%s: err = %v, want ErrCorrupt naming the key", name, err)
		}
	}
	// Other pipelines are not affected by p's damage.
	if _, err := s.Load(ctx, "q"); err != nil {
		t.Fatalf("other pipeline: %v", err)
	}
	// A later good record for the key supersedes the damaged one.
	if err := s.Save(ctx, "p", sampleState(3)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, st, mergedStates(sampleState(1), sampleState(3)))
}
