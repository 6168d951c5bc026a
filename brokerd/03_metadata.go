package brokerd

// Metadata (key 3), versions 0–12.
//
// Lists every broker of the cluster (host and port of its listener, no
// rack), the cluster ID, broker 0 as controller, and the requested topics
// (all topics for a null list, or an empty list before v1). Each partition
// has one replica, its leader, which is also the whole ISR; leader epoch 0.
// A missing topic is created when the request allows it (always before v4)
// and Config.AutoCreateTopics is on; otherwise UNKNOWN_TOPIC_OR_PARTITION.
// Invalid names get INVALID_TOPIC_EXCEPTION. Requested names are
// deduplicated, as Kafka does, so the response is at most one entry per
// distinct name; a request listing more than Limits.MaxMetadataTopics
// names closes the connection before it is decoded. __consumer_offsets (the group
// coordinator's journal) is listed as an internal topic with one partition
// on broker 0, as Kafka lists it, so clients that skip internal topics (and
// franz-go's suite, which looks for it) see it; it can be fetched but only
// the coordinator writes it.
//
// With the authorizer on, a listing of all topics leaves out those the
// principal may not DESCRIBE, a named one gets TOPIC_AUTHORIZATION_FAILED,
// and auto-creation needs CREATE on the cluster or the topic.
//
// Not supported: topic IDs (always zero, so clients keep using names),
// authorized operations (reported as "not provided"), racks, and the v13
// top-level error code.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleMetadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, b := range c.brokers {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.id, b.host, b.port
		resp.Brokers = append(resp.Brokers, mb)
	}
	id := c.ClusterID()
	resp.ClusterID = &id
	resp.ControllerID = 0
	resp.AuthorizedOperations = -2147483648

	var names []string
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		c.mu.RLock()
		for name := range c.mu.topics {
			names = append(names, name)
		}
		c.mu.RUnlock()
		sort.Strings(names)
	} else {
		seen := make(map[string]struct{}, len(req.Topics))
		for _, t := range req.Topics {
			if t.Topic == nil {
				continue
			}
			if _, dup := seen[*t.Topic]; !dup {
				seen[*t.Topic] = struct{}{}
				names = append(names, *t.Topic)
			}
		}
	}
	allowCreate := c.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, name := range names {
		mt := kmsg.NewMetadataResponseTopic()
		n := name
		mt.Topic = &n
		mt.AuthorizedOperations = -2147483648
		if !cc.allowedTopic(name, aclOpDescribe) {
			if all {
				continue // topics the principal may not describe are hidden
			}
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		parts := c.topicPartitions(name)
		if parts == nil && !all {
			if err := validTopicName(name); err != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if allowCreate && (cc.authorizeCluster(aclOpCreate) || cc.allowedTopic(name, aclOpCreate)) {
				if _, kerrc := c.createTopic(name, 0, nil, false); kerrc != nil && kerrc.code != kerr.TopicAlreadyExists.Code {
					mt.ErrorCode = kerrc.code
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				parts = c.topicPartitions(name)
			}
		}
		if parts == nil {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		mt.IsInternal = c.isInternal(name)
		for _, p := range parts {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition = p.index
			mp.Leader = p.leader
			mp.LeaderEpoch = 0
			mp.Replicas = []int32{p.leader}
			mp.ISR = []int32{p.leader}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// isInternal reports whether name is brokerd's internal topic.
func (c *Cluster) isInternal(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.mu.topics[name]
	return t != nil && t.internal
}

// topicPartitions returns a topic's partitions, or nil when it does not
// exist.
func (c *Cluster) topicPartitions(name string) []*partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if t := c.mu.topics[name]; t != nil {
		return t.parts
	}
	return nil
}
