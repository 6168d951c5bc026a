package brokerd_test

// Conformance of the group admin APIs with franz-go's kadm: ListGroups
// with a states filter, DescribeGroups, DeleteGroups, OffsetDelete.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConformanceGroupAdmin(t *testing.T) {
	c := confStart(t, t.TempDir(), 3)
	addrs := c.Addrs()
	const topic, group = "admin-topic", "admin-group"
	confCreateTopic(t, addrs, topic, 3)
	produceN(t, confClient(t, addrs), topic, 0, 30, 5)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("admin-member"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	readThenCommit(t, ctx, cons, 30)

	adm := kadm.NewClient(confClient(t, addrs))
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed[group]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %+v", listed)
	}
	if empty, err := adm.ListGroups(ctx, "Empty"); err != nil || len(empty) != 0 {
		t.Fatalf("ListGroups(Empty) with one Stable group: %v %v", empty.Groups(), err)
	}

	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	d := described[group]
	if d.Err != nil || d.State != "Stable" || d.Protocol == "" || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups: %+v", d)
	}
	m := d.Members[0]
	if m.ClientID != "admin-member" || m.ClientHost == "" {
		t.Errorf("member client id %q host %q", m.ClientID, m.ClientHost)
	}
	if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 3 {
		t.Errorf("member assignment %+v", m.Assigned)
	}

	// kadm returns the group's error both ways; the response is what counts.
	deleted, err := adm.DeleteGroup(ctx, group)
	if !errors.Is(deleted.Err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroup of a live group: %v %v, want NON_EMPTY_GROUP", err, deleted.Err)
	}
	toDelete := kadm.TopicsSet{}
	toDelete.Add(topic, 0, 1, 2)
	dr, err := adm.DeleteOffsets(ctx, group, toDelete)
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Error(); !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("DeleteOffsets of a subscribed topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}

	cons.Close() // leaves the group
	confWait(t, 30*time.Second, "the group to become Empty", func() error {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if st := described[group].State; st != "Empty" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	dr, err = adm.DeleteOffsets(ctx, group, toDelete)
	if err != nil || dr.Error() != nil {
		t.Fatalf("DeleteOffsets of an empty group: %v %v", err, dr.Error())
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			t.Errorf("offset %s/%d survived DeleteOffsets: %d", o.Topic, o.Partition, o.At)
		}
	})

	deleted, err = adm.DeleteGroup(ctx, group)
	if err != nil || deleted.Err != nil {
		t.Fatalf("DeleteGroup of an empty group: %v %v", err, deleted.Err)
	}
	described, err = adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if st := described[group].State; st != "Dead" {
		t.Fatalf("deleted group described as %q, want Dead", st)
	}
	if deleted, err = adm.DeleteGroup(ctx, group); !errors.Is(deleted.Err, kerr.GroupIDNotFound) {
		t.Fatalf("DeleteGroup twice: %v %v, want GROUP_ID_NOT_FOUND", err, deleted.Err)
	}
}
