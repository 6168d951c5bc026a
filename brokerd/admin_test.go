package brokerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func strp(s string) *string { return &s }

func TestCreateTopicsValidation(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	add := func(name string, parts int32, rf int16, cfgs map[string]string) {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for k, v := range cfgs {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, strp(v)
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	add("ok", -1, -1, map[string]string{"retention.ms": "1000", "compression.type": "zstd"})
	add("bad name!", 1, 1, nil)
	add("..", 1, 1, nil)
	add("rf3", 1, 3, nil)
	add("zero", 0, 1, nil)
	add("badcfg", 1, 1, map[string]string{"no.such.config": "1"})
	add("badval", 1, 1, map[string]string{"retention.ms": "soon"})
	want := map[string]int16{
		"ok": 0, "bad name!": kerr.InvalidTopicException.Code, "..": kerr.InvalidTopicException.Code,
		"rf3": kerr.InvalidReplicationFactor.Code, "zero": kerr.InvalidPartitions.Code,
		"badcfg": kerr.InvalidConfig.Code, "badval": kerr.InvalidConfig.Code,
	}
	resp := rc.roundTrip(req).(*kmsg.CreateTopicsResponse)
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: error %d, want %d (%v)", st.Topic, st.ErrorCode, want[st.Topic], st.ErrorMessage)
		}
		if st.Topic == "ok" && (st.NumPartitions != 3 || st.ReplicationFactor != 1) {
			t.Errorf("ok: %d partitions rf %d", st.NumPartitions, st.ReplicationFactor)
		}
	}
	// Again: exists. Validate-only on a new name creates nothing.
	req.Topics = req.Topics[:1]
	resp = rc.roundTrip(req).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("second create: %d", resp.Topics[0].ErrorCode)
	}
	req.Topics[0].Topic = "dry"
	req.ValidateOnly = true
	resp = rc.roundTrip(req).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || c.topicPartitions("dry") != nil {
		t.Fatalf("validate only: error %d, created %v", resp.Topics[0].ErrorCode, c.topicPartitions("dry") != nil)
	}
}

func TestConfigsPartitionsDeleteRecords(t *testing.T) {
	c := startCluster(t, Config{Brokers: 3})
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	createTopic(t, cl, "cfg", 2, map[string]*string{"cleanup.policy": strp("compact"), "segment.bytes": strp("1048576")})

	rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("cfg", nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]kadm.Config{}
	for _, cfg := range rc.Configs {
		vals[cfg.Key] = cfg
	}
	if v := vals["cleanup.policy"]; v.MaybeValue() != "compact" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy: %+v", v)
	}
	if v := vals["retention.ms"]; v.MaybeValue() != "604800000" || v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms: %+v", v)
	}

	// Incremental: set, delete, append.
	alter := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("3600000")},
		{Op: kadm.DeleteConfig, Name: "segment.bytes"},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("delete")},
	}
	ar, err := adm.AlterTopicConfigs(ctx, alter, "cfg")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %v", err, ar[0].Err)
	}
	cfgs, _ := c.topicConfigs("cfg")
	if cfgs["retention.ms"] != "3600000" || cfgs["cleanup.policy"] != "compact,delete" || cfgs["segment.bytes"] != "" {
		t.Fatalf("after alter: %v", cfgs)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "bogus", Value: strp("1")}}, "cfg")
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bogus config: %v %v", err, ar[0].Err)
	}
	// Broker configs are read-only.
	brs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(brs) != 1 || brs[0].Err != nil || len(brs[0].Configs) == 0 {
		t.Fatalf("broker configs: %v %+v", err, brs)
	}

	// CreatePartitions.
	if _, err := adm.UpdatePartitions(ctx, 5, "cfg"); err != nil {
		t.Fatal(err)
	}
	if n := len(c.topicPartitions("cfg")); n != 5 {
		t.Fatalf("%d partitions after growing", n)
	}
	r, _ := adm.UpdatePartitions(ctx, 4, "cfg")
	if !errors.Is(r["cfg"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", r["cfg"].Err)
	}

	// Produce to the new partition, then DeleteRecords.
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: "cfg", Partition: 4, Key: []byte{byte(i)}, Value: []byte("v")})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "cfg", Partition: 4, At: 6})
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := dr.Lookup("cfg", 4); d.Err != nil || d.LowWatermark != 6 {
		t.Fatalf("delete records: %+v", d)
	}
	starts, err := adm.ListStartOffsets(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("cfg", 4); o.Offset != 6 {
		t.Fatalf("start offset %d, want 6", o.Offset)
	}
}

func TestDeleteTopicRemovesData(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, Config{Dir: dir, Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "gone", 1, nil)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "gone", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "broker-0", "gone-0")
	if _, err := os.Stat(pdir); err != nil {
		t.Fatal(err)
	}
	resp, err := kadm.NewClient(cl).DeleteTopics(context.Background(), "gone")
	if err != nil || resp["gone"].Err != nil {
		t.Fatalf("delete: %v %v", err, resp["gone"].Err)
	}
	if _, err := os.Stat(pdir); !os.IsNotExist(err) {
		t.Fatalf("partition folder still there: %v", err)
	}
	resp, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), "gone")
	if !errors.Is(resp["gone"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", resp["gone"].Err)
	}
}

// Topics, configs, data, the cluster id and the producer-id counter
// survive a restart on the same folder.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := Start(ctx, Config{Dir: dir, Brokers: 2, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	id := c.ClusterID()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "keep", 3, map[string]*string{"retention.ms": strp("-1")})
	for p := int32(0); p < 3; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "keep", Partition: p, Value: []byte{byte(p)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	first := initProducerID(t, c)
	cl.Close()
	first0 := c.Addrs()[0]
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = startCluster(t, Config{Dir: dir, Brokers: 2, Listen: first0})
	if c.ClusterID() != id {
		t.Fatalf("cluster id changed: %s -> %s", id, c.ClusterID())
	}
	if c.Addrs()[0] != first0 {
		t.Fatalf("address %s, want %s", c.Addrs()[0], first0)
	}
	if cfgs, _ := c.topicConfigs("keep"); cfgs["retention.ms"] != "-1" {
		t.Fatalf("configs lost: %v", cfgs)
	}
	if second := initProducerID(t, c); second <= first {
		t.Fatalf("producer id reused: %d after %d", second, first)
	}
	cl = newClient(t, c, kgo.ConsumeTopics("keep"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 3 {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value[0] != byte(r.Partition) || r.Offset != 0 {
				t.Fatalf("record %+v", r)
			}
			got++
		})
	}
}

func initProducerID(t *testing.T, c *Cluster) int64 {
	t.Helper()
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := rc.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %d", resp.ErrorCode)
	}
	// Bumping an existing id keeps it and raises the epoch.
	req.ProducerID, req.ProducerEpoch = resp.ProducerID, resp.ProducerEpoch
	bump := rc.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if bump.ProducerID != resp.ProducerID || bump.ProducerEpoch != resp.ProducerEpoch+1 {
		t.Fatalf("bump: %+v after %+v", bump, resp)
	}
	// Transactions are refused clearly.
	req.TransactionalID = strp("txn")
	if r := rc.roundTrip(req).(*kmsg.InitProducerIDResponse); r.ErrorCode == 0 {
		t.Fatal("transactional InitProducerId accepted")
	}
	return resp.ProducerID
}

// Port 0 still yields consecutive ports, so passing the old first address
// on restart gives every broker its old address.
func TestConsecutivePorts(t *testing.T) {
	dir := t.TempDir()
	c, err := Start(context.Background(), Config{Dir: dir, Brokers: 3, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.Addrs()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startCluster(t, Config{Dir: dir, Brokers: 3, Listen: addrs[0]})
	if got := c.Addrs(); got[0] != addrs[0] || got[1] != addrs[1] || got[2] != addrs[2] {
		t.Fatalf("addresses %v after restart, want %v", got, addrs)
	}
}

// Two clusters never share a folder.
func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	startCluster(t, Config{Dir: dir, Brokers: 1})
	if c, err := Start(context.Background(), Config{Dir: dir, Brokers: 1}); !errors.Is(err, ErrInUse) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("second Start on one folder: %v, want ErrInUse", err)
	}
}
