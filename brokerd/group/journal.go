package group

import (
	"encoding/binary"
	"fmt"
	"time"

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
	case keyTxnOffset:
		return s.replayPending(key, value)
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
		s.restoreGroup(s.getOrCreate(k.Group), &v)
	}
	return nil
}

// restoreGroup rebuilds a group from its metadata record the way Kafka's
// coordinator loads __consumer_offsets: a record with members and a
// protocol is a Stable generation (the journal is written when one becomes
// Stable) and comes back Stable, with every member, its subscription to
// the chosen protocol, assignment, client, timeouts and static instance id;
// anything else is an Empty group. A later record of the same group
// replaces everything but its offsets. Sessions start at load (see loaded).
func (s *state) restoreGroup(g *group, v *kmsg.GroupMetadataValue) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	g.members = make(map[string]*member, len(v.Members))
	g.statics = make(map[string]string)
	g.pending = make(map[string]time.Time)
	g.rebalanceDeadline, g.syncDeadline = time.Time{}, time.Time{}
	g.state, g.protocol, g.leader = stateEmpty, "", ""
	g.emptySince = -1
	if len(v.Members) == 0 || v.Protocol == nil || *v.Protocol == "" {
		// Members without a chosen protocol cannot form a generation;
		// they rejoin, as they would after any failed rebalance.
		if len(v.Members) == 0 && v.Version >= 2 && v.CurrentStateTimestamp >= 0 {
			g.emptySince = v.CurrentStateTimestamp
		}
		return
	}
	g.protocol = *v.Protocol
	for _, gm := range v.Members {
		// Kafka never writes an empty or repeated member id, nor one
		// instance id twice; such a member is left out (it rejoins) so
		// that every static mapping names exactly one member.
		if _, dup := g.members[gm.MemberID]; gm.MemberID == "" || dup {
			continue
		}
		if gm.InstanceID != nil && *gm.InstanceID != "" {
			if _, dup := g.statics[*gm.InstanceID]; dup {
				continue
			}
		}
		session := s.clampSession(time.Duration(gm.SessionTimeoutMillis) * time.Millisecond)
		rebalance := time.Duration(gm.RebalanceTimeoutMillis) * time.Millisecond
		if v.Version < 1 || rebalance <= 0 {
			// Version 0 has no rebalance timeout; JoinGroup v0 uses
			// the session timeout for both.
			rebalance = session
		}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = g.protocol, gm.Subscription
		m := &member{
			id:               gm.MemberID,
			client:           ClientInfo{ClientID: gm.ClientID, ClientHost: gm.ClientHost},
			sessionTimeout:   session,
			rebalanceTimeout: rebalance,
			protocols:        []kmsg.JoinGroupRequestProtocol{p},
			assignment:       gm.Assignment,
		}
		s.seq++
		m.seq = s.seq
		if gm.InstanceID != nil && *gm.InstanceID != "" {
			iid := *gm.InstanceID
			m.instanceID = &iid
			g.statics[iid] = m.id
		}
		g.members[m.id] = m
	}
	if len(g.members) == 0 {
		g.protocol = ""
		return
	}
	g.state = stateStable
	if v.Leader != nil {
		if _, ok := g.members[*v.Leader]; ok {
			g.leader = *v.Leader
		}
	}
	if g.leader == "" {
		// A Stable generation always has a leader; the oldest member
		// is the one a rebalance would pick.
		g.leader = g.memberOrder()[0]
	}
}

// clampSession keeps a journaled session timeout within the bounds a join
// would accept, so a damaged or foreign record cannot make a member expire
// at once or never.
func (s *state) clampSession(d time.Duration) time.Duration {
	return min(max(d, s.minSession), maxSessionTimeout)
}

// loaded finishes a replay at now: every restored member's session starts
// over from the load time, as Kafka restarts each member's heartbeat timer
// when it loads a group, and groups with members join the live set so the
// timer watches them.
func (s *state) loaded(now time.Time) {
	for _, g := range s.groups {
		for _, m := range g.members {
			m.expires = now.Add(m.sessionTimeout)
		}
		s.touch(g)
	}
}
