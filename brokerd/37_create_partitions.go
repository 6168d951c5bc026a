package brokerd

// CreatePartitions (key 37), versions 0–3.
//
// Grows each topic to Count partitions; new partitions' leaders continue
// the round-robin over brokers. ValidateOnly checks without growing.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (a count not above
// the current one), INVALID_REPLICA_ASSIGNMENT (manual assignments are not
// supported).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var e *kafkaErr
		if !cc.allowedTopic(rt.Topic, aclOpAlter) {
			e = kErr(kerr.TopicAuthorizationFailed, "ALTER on topic %q is required", rt.Topic)
		} else if len(rt.Assignment) > 0 {
			e = kErr(kerr.InvalidReplicaAssignment, "manual replica assignment is not supported")
		} else {
			e = c.addPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		if e != nil {
			st.ErrorCode = e.code
			msg := e.msg
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
