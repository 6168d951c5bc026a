package brokerd

// CreateTopics (key 19), versions 0–7.
//
// Creates each topic with NumPartitions partitions (-1: Config.Partitions)
// spread round-robin over the brokers, replication factor 1 (-1 means the
// default, 1), and the given configs (see configs.go: honoured keys reach
// the log, other valid Kafka topic configs are stored, unknown keys are
// refused with INVALID_CONFIG). ValidateOnly checks everything without
// creating. Names follow Kafka's rules (INVALID_TOPIC_EXCEPTION); an
// existing topic gets TOPIC_ALREADY_EXISTS. Every valid topic of one request
// is created together and cluster.json is written once (topics_batch.go). v5+ responses carry the
// partition count, replication factor and the topic's configs.
//
// Not supported: replication factor above 1 (INVALID_REPLICATION_FACTOR),
// manual replica assignments (INVALID_REPLICA_ASSIGNMENT), topic IDs (the
// v7 TopicID is zero).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleCreateTopics(req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	// Valid topics are created together after the loop, with one
	// metadata write (topics_batch.go).
	var batch []topicSpec
	var at []int
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(e *kafkaErr) { st.ErrorCode, st.ErrorMessage = e.codeAndMessage() }
		cfgs := map[string]string{}
		var cfgErr *kafkaErr
		for _, rc := range rt.Configs {
			if err := validateConfig(rc.Name, rc.Value); err != nil {
				cfgErr = kErr(kerr.InvalidConfig, "%v", err)
				break
			}
			cfgs[rc.Name] = *rc.Value
		}
		switch {
		case !cc.authorizeCluster(aclOpCreate) && !cc.allowedTopic(rt.Topic, aclOpCreate):
			fail(kErr(kerr.TopicAuthorizationFailed, "CREATE on the cluster or topic %q is required", rt.Topic))
		case seen[rt.Topic] > 1:
			fail(kErr(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic))
		case rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1:
			fail(kErr(kerr.InvalidReplicationFactor, "replication factor %d: brokerd keeps one replica per partition", rt.ReplicationFactor))
		case len(rt.ReplicaAssignment) > 0:
			fail(kErr(kerr.InvalidReplicaAssignment, "manual replica assignment is not supported"))
		case rt.NumPartitions == 0 || rt.NumPartitions < -1:
			fail(kErr(kerr.InvalidPartitions, "number of partitions must be at least 1 (or -1 for the default), got %d", rt.NumPartitions))
		case cfgErr != nil:
			fail(cfgErr)
		default:
			batch = append(batch, topicSpec{name: rt.Topic, n: rt.NumPartitions, configs: cfgs})
			at = append(at, len(resp.Topics))
		}
		resp.Topics = append(resp.Topics, st)
	}
	for i, r := range c.createTopics(batch, req.ValidateOnly) {
		st := &resp.Topics[at[i]]
		if r.err != nil {
			st.ErrorCode, st.ErrorMessage = r.err.codeAndMessage()
			continue
		}
		st.NumPartitions, st.ReplicationFactor = r.n, 1
		if req.Version >= 5 {
			st.Configs = createdTopicConfigs(batch[i].configs)
		}
	}
	return resp
}

// createdTopicConfigs lists every topic config with its value for a new
// topic created with cfgs, as v5+ responses carry them.
func createdTopicConfigs(cfgs map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(topicConfigNames))
	for _, name := range topicConfigNames {
		v, set := cfgs[name]
		d, _ := lookupConfig(name)
		if !set {
			v = d.def
		}
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name = name
		val := v
		rc.Value = &val
		rc.Source = 5 // DEFAULT_CONFIG
		if set {
			rc.Source = 1 // DYNAMIC_TOPIC_CONFIG
		}
		out = append(out, rc)
	}
	return out
}
