package brokerd

// CreatePartitions (key 37), versions 0–3.
//
// Grows each topic to Count partitions; new partitions' leaders continue
// the round-robin over brokers. ValidateOnly checks without growing.
//
// All topics of one request are grown together and cluster.json is written
// once (topics_batch.go).
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (a topic named twice), INVALID_PARTITIONS (a count not above
// the current one), INVALID_REPLICA_ASSIGNMENT (manual assignments are not
// supported).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	// Every topic goes in one batch: one metadata write.
	var batch []partitionGrowth
	var at []int
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !cc.allowedTopic(rt.Topic, aclOpAlter) {
			st.ErrorCode, st.ErrorMessage = kErr(kerr.TopicAuthorizationFailed, "ALTER on topic %q is required", rt.Topic).codeAndMessage()
		} else if len(rt.Assignment) > 0 {
			st.ErrorCode, st.ErrorMessage = kErr(kerr.InvalidReplicaAssignment, "manual replica assignment is not supported").codeAndMessage()
		} else {
			batch = append(batch, partitionGrowth{name: rt.Topic, count: rt.Count})
			at = append(at, len(resp.Topics))
		}
		resp.Topics = append(resp.Topics, st)
	}
	for i, e := range c.addPartitionsBatch(batch, req.ValidateOnly) {
		st := &resp.Topics[at[i]]
		st.ErrorCode, st.ErrorMessage = e.codeAndMessage()
	}
	return resp
}
