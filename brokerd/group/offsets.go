package group

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit serves OffsetCommit. A member of the current generation may commit
// while the group is Stable or PreparingRebalance (consumers commit while
// revoking); generation -1 with no member id is a "simple" commit, allowed
// only while the group has no members, which is how tools and the mirror's
// group-offset sync write offsets.
func (s *state) commit(cl *call, r *kmsg.OffsetCommitRequest, now time.Time) {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	generation, memberID, instanceID := r.Generation, r.MemberID, r.InstanceID
	if r.Version == 0 {
		generation, memberID, instanceID = -1, "", nil
	}
	simple := generation < 0 && memberID == "" && (instanceID == nil || *instanceID == "")
	g := s.groups[r.Group]
	var code int16
	switch {
	case g == nil && simple:
	case g == nil:
		code = kerr.IllegalGeneration.Code
	case simple && len(g.members) == 0:
	default:
		var m *member
		m, code = checkMember(g, memberID, instanceID, generation)
		if code == 0 && g.state == stateCompleting {
			code = kerr.RebalanceInProgress.Code
		}
		if code == 0 && m.join == nil && m.sync == nil {
			m.expires = now.Add(m.sessionTimeout)
		}
	}

	type pending struct {
		topic     string
		partition int32
		o         offset
		code      *int16
	}
	var (
		kvs   []KV
		apply []pending
	)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			if code == 0 && p.Metadata != nil && len(*p.Metadata) > maxMetadataBytes {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for i, t := range r.Topics {
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if rp.ErrorCode != 0 {
				continue
			}
			o := offset{offset: p.Offset, epoch: -1, commitMillis: now.UnixMilli()}
			if r.Version >= 6 {
				o.epoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				o.metadata = *p.Metadata
			}
			kvs = append(kvs, KV{Key: offsetKey(r.Group, t.Topic, p.Partition), Value: offsetValue(o)})
			apply = append(apply, pending{topic: t.Topic, partition: p.Partition, o: o, code: &rp.ErrorCode})
		}
	}
	if len(kvs) > 0 {
		if err := s.append(kvs); err != nil {
			for _, a := range apply {
				*a.code = kerr.UnknownServerError.Code
			}
		} else {
			if g == nil {
				g = s.getOrCreate(r.Group)
			}
			for _, a := range apply {
				g.setOffset(a.topic, a.partition, a.o)
			}
		}
	}
	reply(cl, resp)
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

type fetchedPartition struct {
	partition int32
	o         offset
	found     bool
}

// committed lists every offset a group has committed, sorted by topic and
// partition.
func (s *state) committed(group string) []fetchedTopic {
	g := s.groups[group]
	var out []fetchedTopic
	{
		if g == nil {
			return nil
		}
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		slices.Sort(names)
		for _, t := range names {
			ft := fetchedTopic{topic: t}
			for p, o := range g.offsets[t] {
				ft.partitions = append(ft.partitions, fetchedPartition{partition: p, o: o, found: true})
			}
			slices.SortFunc(ft.partitions, func(a, b fetchedPartition) int { return cmp.Compare(a.partition, b.partition) })
			out = append(out, ft)
		}
	}
	return out
}

func (s *state) lookup(group, topic string, partition int32) (offset, bool) {
	g := s.groups[group]
	if g == nil {
		return offset{}, false
	}
	o, ok := g.offsets[topic][partition]
	return o, ok
}

// fetch serves OffsetFetch: one group before v8, a batch of groups from v8.
// With RequireStable (v7+), a partition with an offset pending in an open
// transaction answers UNSTABLE_OFFSET_COMMIT, which the client retries.
func (s *state) fetch(cl *call, r *kmsg.OffsetFetchRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version < 8 {
		for _, ft := range s.fetchTopics(r.Group, r.Topics == nil && r.Version >= 2, r.Topics) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = ft.topic
			for _, fp := range ft.partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition = fp.partition
				rp.Offset, rp.LeaderEpoch, rp.Metadata = fp.answer()
				if r.RequireStable && s.pendingFor(r.Group, ft.topic, fp.partition) {
					rp.ErrorCode = kerr.UnstableOffsetCommit.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		reply(cl, resp)
		return
	}
	for _, rg := range r.Groups {
		og := kmsg.NewOffsetFetchResponseGroup()
		og.Group = rg.Group
		topics := make([]kmsg.OffsetFetchRequestTopic, len(rg.Topics))
		for i, t := range rg.Topics {
			topics[i].Topic, topics[i].Partitions = t.Topic, t.Partitions
		}
		for _, ft := range s.fetchTopics(rg.Group, rg.Topics == nil, topics) {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = ft.topic
			for _, fp := range ft.partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition = fp.partition
				rp.Offset, rp.LeaderEpoch, rp.Metadata = fp.answer()
				if r.RequireStable && s.pendingFor(rg.Group, ft.topic, fp.partition) {
					rp.ErrorCode = kerr.UnstableOffsetCommit.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			og.Topics = append(og.Topics, rt)
		}
		resp.Groups = append(resp.Groups, og)
	}
	reply(cl, resp)
}

// Group resource operations reported when DescribeGroups asks for them:
// READ (3), DELETE (6), DESCRIBE (8); brokerd has no ACLs.
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8

// describe serves DescribeGroups. Unknown groups read as Dead, as in Kafka.
// Member metadata and assignments are reported only while Stable, when
// they are settled.
func (s *state) describe(cl *call, r *kmsg.DescribeGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range r.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		if r.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAuthorizedOps
		}
		g := s.groups[name]
		switch {
		case name == "":
			dg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			dg.State = "Dead"
		default:
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			stable := g.state == stateStable
			if stable {
				dg.Protocol = g.protocol
			}
			for _, id := range g.memberOrder() {
				m := g.members[id]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = m.id
				dm.InstanceID = m.instanceID
				dm.ClientID = m.client.ClientID
				dm.ClientHost = m.client.ClientHost
				if stable {
					dm.ProtocolMetadata = m.metadataFor(g.protocol)
					dm.MemberAssignment = m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	reply(cl, resp)
}

// list serves ListGroups with the v4 states filter and the v5 types filter
// (every group here is a "classic" group).
func (s *state) list(cl *call, r *kmsg.ListGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	names := make([]string, 0, len(s.groups))
	for n := range s.groups {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		g := s.groups[n]
		st := g.state.String()
		if len(r.StatesFilter) > 0 && !slices.ContainsFunc(r.StatesFilter, func(f string) bool { return strings.EqualFold(f, st) }) {
			continue
		}
		if len(r.TypesFilter) > 0 && !slices.ContainsFunc(r.TypesFilter, func(f string) bool { return strings.EqualFold(f, "classic") }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = n
		lg.ProtocolType = g.protocolType
		lg.GroupState = st
		lg.GroupType = "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	reply(cl, resp)
}

// deleteGroups serves DeleteGroups: only groups without members, whose
// offsets and metadata are tombstoned in the journal.
func (s *state) deleteGroups(cl *call, r *kmsg.DeleteGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range r.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		g := s.groups[name]
		switch {
		case name == "":
			dg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		case len(g.members) > 0 || g.state != stateEmpty:
			dg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			kvs := []KV{{Key: groupKey(name)}}
			for t, ps := range g.offsets {
				for p := range ps {
					kvs = append(kvs, KV{Key: offsetKey(name, t, p)})
				}
			}
			if err := s.append(kvs); err != nil {
				dg.ErrorCode = kerr.UnknownServerError.Code
				break
			}
			delete(s.groups, name)
			delete(s.live, name)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	reply(cl, resp)
}

// subscribed reports whether any member of a consumer group subscribes to
// topic; a subscription that does not decode counts as subscribed, so an
// offset is never deleted from under a member.
func (g *group) subscribed(topic string) bool {
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return true
		}
		if slices.Contains(md.Topics, topic) {
			return true
		}
	}
	return false
}

// offsetDelete serves OffsetDelete (KIP-496): drop committed offsets of
// topics no member is subscribed to.
func (s *state) offsetDelete(cl *call, r *kmsg.OffsetDeleteRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := s.groups[r.Group]
	switch {
	case r.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case len(g.members) > 0 && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		reply(cl, resp)
		return
	}
	type del struct {
		topic     string
		partition int32
	}
	var (
		kvs  []KV
		dels []del
	)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		busy := len(g.members) > 0 && g.subscribed(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if busy {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[t.Topic][p.Partition]; ok {
				kvs = append(kvs, KV{Key: offsetKey(r.Group, t.Topic, p.Partition)})
				dels = append(dels, del{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := s.append(kvs); err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		resp.Topics = nil
	} else {
		for _, d := range dels {
			s.dropOffset(r.Group, d.topic, d.partition)
		}
	}
	reply(cl, resp)
}

// fetchTopics returns the group's committed offsets for the named
// partitions, or every committed partition when all is set.
func (s *state) fetchTopics(group string, all bool, topics []kmsg.OffsetFetchRequestTopic) []fetchedTopic {
	if all {
		return s.committed(group)
	}
	ts := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{topic: t.Topic}
		for _, p := range t.Partitions {
			o, ok := s.lookup(group, t.Topic, p)
			ft.partitions = append(ft.partitions, fetchedPartition{partition: p, o: o, found: ok})
		}
		ts = append(ts, ft)
	}
	return ts
}

// answer is the offset, leader epoch and metadata an OffsetFetch response
// carries for the partition: -1, -1 and "" when nothing is committed.
func (fp fetchedPartition) answer() (int64, int32, *string) {
	if !fp.found {
		empty := ""
		return -1, -1, &empty
	}
	md := fp.o.metadata
	return fp.o.offset, fp.o.epoch, &md
}
