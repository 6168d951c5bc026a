package brokerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicBatches: CreateTopics, CreatePartitions and DeleteTopics over
// many topics in one request answer every topic on its own, and what they
// did survives a restart.
func TestTopicBatches(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, Config{Dir: dir, Brokers: 3})
	rc := dialRaw(t, c.Addrs()[0])

	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 7
	add := func(name string, parts int32) {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, -1
		create.Topics = append(create.Topics, rt)
	}
	for i := range 40 {
		add(fmt.Sprintf("b.%02d", i), 4)
	}
	add("bad name!", 1)
	want := map[string]int16{"bad name!": kerr.InvalidTopicException.Code}
	resp := rc.roundTrip(create).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 41 {
		t.Fatalf("%d topics answered, want 41", len(resp.Topics))
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("create %s: error %d, want %d", st.Topic, st.ErrorCode, want[st.Topic])
		}
		if st.ErrorCode == 0 && (st.NumPartitions != 4 || len(st.Configs) == 0) {
			t.Errorf("create %s: %d partitions, %d configs", st.Topic, st.NumPartitions, len(st.Configs))
		}
	}
	// Again with one new name: the others exist, the new one is made.
	create.Topics = create.Topics[:3]
	create.Topics[2].Topic = "b.new"
	resp = rc.roundTrip(create).(*kmsg.CreateTopicsResponse)
	for i, wantCode := range []int16{kerr.TopicAlreadyExists.Code, kerr.TopicAlreadyExists.Code, 0} {
		if resp.Topics[i].ErrorCode != wantCode {
			t.Errorf("second create %s: error %d, want %d", resp.Topics[i].Topic, resp.Topics[i].ErrorCode, wantCode)
		}
	}

	grow := kmsg.NewPtrCreatePartitionsRequest()
	grow.Version = 3
	growTo := func(name string, n int32) {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, n
		grow.Topics = append(grow.Topics, rt)
	}
	growTo("b.00", 6)
	growTo("b.01", 8)
	growTo("b.02", 2) // fewer than it has
	growTo("b.03", 6)
	growTo("b.03", 7) // named twice
	growTo("none", 2)
	gresp := rc.roundTrip(grow).(*kmsg.CreatePartitionsResponse)
	gwant := []int16{0, 0, kerr.InvalidPartitions.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code}
	for i, st := range gresp.Topics {
		if st.ErrorCode != gwant[i] {
			t.Errorf("grow %s (#%d): error %d, want %d", st.Topic, i, st.ErrorCode, gwant[i])
		}
	}

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 6
	for _, name := range []string{"b.10", "b.11", "none", "b.12"} {
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = strp(name)
		del.Topics = append(del.Topics, dt)
	}
	dresp := rc.roundTrip(del).(*kmsg.DeleteTopicsResponse)
	dwant := []int16{0, 0, kerr.UnknownTopicOrPartition.Code, 0}
	for i, st := range dresp.Topics {
		if st.ErrorCode != dwant[i] {
			t.Errorf("delete %s: error %d, want %d", *st.Topic, st.ErrorCode, dwant[i])
		}
	}

	check := func(c *Cluster) {
		t.Helper()
		wantParts := map[string]int{"b.00": 6, "b.01": 8, "b.02": 4, "b.03": 4, "b.new": 4, "b.10": 0, "b.11": 0, "b.12": 0, "b.39": 4}
		for name, n := range wantParts {
			if got := len(c.topicPartitions(name)); got != n {
				t.Errorf("%s: %d partitions, want %d", name, got, n)
			}
		}
	}
	check(c)
	addr := c.Addrs()[0]
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2, err := Start(context.Background(), Config{Dir: dir, Brokers: 3, Listen: addr, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	check(c2)
}

// TestTopicBatchMetaWriteFails: when cluster.json cannot be written, every
// topic of the request fails with KAFKA_STORAGE_ERROR, nothing of them is
// left in memory or on disk, and the names can be created once the disk
// works again.
func TestTopicBatchMetaWriteFails(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, Config{Dir: dir, Brokers: 2})
	rc := dialRaw(t, c.Addrs()[0])
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 7
	for _, name := range []string{"f.a", "f.b", "f.c"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 2, 1
		create.Topics = append(create.Topics, rt)
	}
	// A folder where the temporary metadata file goes makes the write fail.
	block := filepath.Join(dir, metaFile+".tmp")
	if err := os.Mkdir(block, 0o755); err != nil {
		t.Fatal(err)
	}
	resp := rc.roundTrip(create).(*kmsg.CreateTopicsResponse)
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.KafkaStorageError.Code {
			t.Errorf("%s: error %d, want KAFKA_STORAGE_ERROR", st.Topic, st.ErrorCode)
		}
		if c.topicPartitions(st.Topic) != nil {
			t.Errorf("%s exists after a failed write", st.Topic)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "broker-*", st.Topic+"-*")); len(left) > 0 {
			t.Errorf("%s: partition folders left behind: %v", st.Topic, left)
		}
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	resp = rc.roundTrip(create).(*kmsg.CreateTopicsResponse)
	for _, st := range resp.Topics {
		if st.ErrorCode != 0 || len(c.topicPartitions(st.Topic)) != 2 {
			t.Errorf("%s after the disk recovered: error %d", st.Topic, st.ErrorCode)
		}
	}
}
