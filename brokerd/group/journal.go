package group

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Journal record versions, the same numbers Kafka uses in
// __consumer_offsets (see doc.go for the byte layout).
const (
	keyOffsetV0  = 0 // offset commit key, written by old brokers
	keyOffsetV1  = 1 // offset commit key, the one written here
	keyGroupMeta = 2 // group metadata key
	valueOffsetV = 3 // offset commit value version written
	valueGroupV  = 3 // group metadata value version written
	minKeyLen    = 2
)

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: keyOffsetV1, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = valueOffsetV
	v.Offset = o.offset
	v.LeaderEpoch = o.epoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitMillis
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: keyGroupMeta, Group: group}
	return k.AppendTo(nil)
}

func groupValue(g *group, nowMillis int64) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = valueGroupV
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = &g.protocol
	}
	if g.leader != "" {
		v.Leader = &g.leader
	}
	v.CurrentStateTimestamp = nowMillis
	for _, id := range g.memberOrder() {
		m := g.members[id]
		gm := kmsg.NewGroupMetadataValueMember()
		gm.MemberID = m.id
		gm.InstanceID = m.instanceID
		gm.ClientID = m.client.ClientID
		gm.ClientHost = m.client.ClientHost
		gm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		gm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		gm.Subscription = m.metadataFor(g.protocol)
		gm.Assignment = m.assignment
		v.Members = append(v.Members, gm)
	}
	return v.AppendTo(nil)
}

// replay applies one journal record. Unknown key versions are skipped so a
// newer record type does not stop an older broker; a record of a known
// version that does not decode is ErrCorruptJournal.
func (s *state) replay(key, value []byte) error {
	if len(key) < minKeyLen {
		return fmt.Errorf("%w: key of %d bytes", ErrCorruptJournal, len(key))
	}
	switch binary.BigEndian.Uint16(key) {
	case keyOffsetV0, keyOffsetV1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: offset key: %w", ErrCorruptJournal, err)
		}
		if value == nil {
			s.dropOffset(k.Group, k.Topic, k.Partition)
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: offset value for %s/%s/%d: %w", ErrCorruptJournal, k.Group, k.Topic, k.Partition, err)
		}
		if v.Version < 3 {
			v.LeaderEpoch = -1
		}
		g := s.getOrCreate(k.Group)
		g.setOffset(k.Topic, k.Partition, offset{offset: v.Offset, epoch: v.LeaderEpoch, metadata: v.Metadata, commitMillis: v.CommitTimestamp})
	case keyGroupMeta:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: group key: %w", ErrCorruptJournal, err)
		}
		if value == nil {
			delete(s.groups, k.Group)
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: group value for %s: %w", ErrCorruptJournal, k.Group, err)
		}
		// Members are not restored: their connections died with the
		// broker, and a restored member would hold up the next
		// rebalance until its session expired. The group comes back
		// Empty with its generation, so stale members are fenced and
		// rejoin.
		g := s.getOrCreate(k.Group)
		g.protocolType = v.ProtocolType
		g.generation = v.Generation
	}
	return nil
}
