package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the kafka store's topic when the configuration names none.
const DefaultTopic = "__strait_checkpoints"

// KafkaStore keeps checkpoints in a compacted topic of the destination
// cluster: one record per (pipeline, topic, partition) and one per
// pipeline for its producer ids, so compaction keeps exactly the latest of
// each. The state therefore lives in the DR site and survives the loss of
// the mirror's host.
type KafkaStore struct {
	topic string
	// prod writes with acks=all and an idempotent producer, so an
	// acknowledged checkpoint is on every in-sync replica and retries
	// cannot reorder two saves of one key.
	prod *kgo.Client
	// base are the options of the destination client, reused for the
	// short-lived consumers of Load.
	base []kgo.Opt
	// readOnly stores never create the topic and refuse Save.
	readOnly bool

	mu struct {
		sync.Mutex
		// producers is, per pipeline, the producer-id list last loaded or
		// saved: Save merges new ids into it.
		producers map[string][]int64
	}
}

// OpenKafka opens a kafka store on the cluster dest reaches, creating the
// topic (one partition, cleanup.policy=compact) when it is missing. topic ""
// means DefaultTopic. The store makes its own client from dest's options;
// dest itself is not used after OpenKafka returns and stays the caller's.
func OpenKafka(ctx context.Context, dest *kgo.Client, topic string) (*KafkaStore, error) {
	return openKafka(ctx, dest, topic, false)
}

func openKafka(ctx context.Context, dest *kgo.Client, topic string, readOnly bool) (*KafkaStore, error) {
	if dest == nil {
		return nil, fmt.Errorf("%w: kafka store needs a destination client", ErrConfig)
	}
	if topic == "" {
		topic = DefaultTopic
	}
	base := append([]kgo.Opt(nil), dest.Opts()...)
	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), base...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("%w: kafka store client: %v", ErrConfig, err)
	}
	if !readOnly {
		if err := ensureTopic(ctx, kadm.NewClient(prod), topic); err != nil {
			prod.Close()
			return nil, err
		}
	}
	s := &KafkaStore{topic: topic, prod: prod, base: base, readOnly: readOnly}
	s.mu.producers = make(map[string][]int64)
	return s, nil
}

// ensureTopic creates the compacted checkpoint topic if it does not exist.
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("%w: create checkpoint topic %s: %v", ErrIO, topic, err)
	}
	return nil
}

// Topic is the store's topic.
func (s *KafkaStore) Topic() string { return s.topic }

// Load reads the checkpoint topic to its end and returns the latest record
// of each key that belongs to the pipeline. A damaged latest record is
// ErrCorrupt naming its key; damaged records later overwritten, or of other
// pipelines, do not matter.
func (s *KafkaStore) Load(ctx context.Context, pipeline string) (*State, error) {
	adm := kadm.NewClient(s.prod)
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if s.readOnly && errors.Is(err, kerr.UnknownTopicOrPartition) {
		// Nothing was ever checkpointed on this cluster.
		return &State{Partitions: map[TP]*Partition{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: list checkpoint topic ends: %v", ErrIO, err)
	}
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: list checkpoint topic starts: %v", ErrIO, err)
	}
	want := map[int32]int64{}
	at := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(s.topic, o.Partition)
		if o.Offset > start.Offset {
			want[o.Partition] = o.Offset
			at[o.Partition] = kgo.NewOffset().At(start.Offset)
		}
	})
	latest := map[string][]byte{}
	if len(want) > 0 {
		cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.base...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: at}),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint consumer: %v", ErrConfig, err)
		}
		defer cl.Close()
		for len(want) > 0 {
			pctx, cancel := context.WithTimeout(ctx, ReconcileIdle)
			fs := cl.PollFetches(pctx)
			idle := pctx.Err() != nil
			cancel()
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if idle && fs.NumRecords() == 0 {
				// Nothing more arrives although the listed end was not
				// reached: the last offsets hold no record (compacted).
				break
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					ferr = err
				}
			})
			if ferr != nil {
				return nil, fmt.Errorf("%w: read checkpoint topic: %v", ErrIO, ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
					delete(want, r.Partition)
				}
				if r.Attrs.IsControl() {
					return
				}
				if p, ok := keyPipeline(string(r.Key)); !ok || p != pipeline {
					return
				}
				// A nil value is a tombstone: the key was deleted.
				if r.Value == nil {
					delete(latest, string(r.Key))
				} else {
					latest[string(r.Key)] = r.Value
				}
			})
		}
	}
	st := &State{Partitions: map[TP]*Partition{}}
	for key, v := range latest {
		d, err := decodeRecord(v)
		if err == nil && d.key() != key {
			err = fmt.Errorf("%w: record content belongs to key %q", ErrCorrupt, d.key())
		}
		if err != nil {
			return nil, fmt.Errorf("%w (topic %s, key %q)", err, s.topic, key)
		}
		if d.kind == kindPartition {
			st.Partitions[d.tp] = d.part
		} else {
			st.ProducerIDs = d.producers
		}
	}
	s.mu.Lock()
	s.mu.producers[pipeline] = append([]int64(nil), st.ProducerIDs...)
	s.mu.Unlock()
	return st, nil
}

// Save writes one record per given partition, plus the producer-id record
// when st names ids not stored yet, and returns once all are acknowledged
// by every in-sync replica.
func (s *KafkaStore) Save(ctx context.Context, pipeline string, st *State) error {
	if s.readOnly {
		return fmt.Errorf("%w: store opened read-only", ErrConfig)
	}
	if st == nil {
		return nil
	}
	var recs []*kgo.Record
	for _, tp := range sortedTPs(st.Partitions) {
		p := st.Partitions[tp]
		if p == nil {
			continue
		}
		recs = append(recs, &kgo.Record{
			Topic: s.topic,
			Key:   []byte(partitionKey(pipeline, tp)),
			Value: encodePartition(pipeline, tp, p),
		})
	}
	s.mu.Lock()
	_, loaded := s.mu.producers[pipeline]
	s.mu.Unlock()
	if !loaded && len(st.ProducerIDs) > 0 {
		// The stored ids must be known to merge into them.
		if _, err := s.Load(ctx, pipeline); err != nil {
			return err
		}
	}
	s.mu.Lock()
	have := s.mu.producers[pipeline]
	ids := mergeProducers(have, st.ProducerIDs)
	changed := len(ids) != len(have)
	s.mu.Unlock()
	if changed {
		recs = append(recs, &kgo.Record{
			Topic: s.topic,
			Key:   []byte(producersKey(pipeline)),
			Value: encodeProducers(pipeline, ids),
		})
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("%w: write checkpoint: %v", ErrIO, err)
	}
	if changed {
		s.mu.Lock()
		s.mu.producers[pipeline] = ids
		s.mu.Unlock()
	}
	return nil
}

// Close flushes and closes the store's client.
func (s *KafkaStore) Close() error {
	s.prod.Close()
	return nil
}
