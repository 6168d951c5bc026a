package brokerd

// DeleteTopics (key 20), versions 0–6.
//
// Deletes each named topic at once: its partitions' logs are closed and
// their folders removed, the metadata forgets it, and long polls waiting
// on it are woken. An unknown topic gets UNKNOWN_TOPIC_OR_PARTITION.
//
// Not supported: deleting by topic ID (v6 entries without a name get
// UNKNOWN_TOPIC_ID, since brokerd has no topic IDs).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDeleteTopics(req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	var names []*string
	if req.Version >= 6 {
		for _, t := range req.Topics {
			names = append(names, t.Topic)
		}
	} else {
		for i := range req.TopicNames {
			names = append(names, &req.TopicNames[i])
		}
	}
	// Every named topic goes in one batch: one metadata write.
	var batch []string
	var at []int
	for _, name := range names {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = name
		if name == nil {
			st.ErrorCode = kerr.UnknownTopicID.Code
			msg := "brokerd has no topic IDs; delete by name"
			st.ErrorMessage = &msg
		} else if !cc.allowedTopic(*name, aclOpDelete) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
		} else {
			batch = append(batch, *name)
			at = append(at, len(resp.Topics))
		}
		resp.Topics = append(resp.Topics, st)
	}
	for i, e := range c.deleteTopics(batch) {
		st := &resp.Topics[at[i]]
		st.ErrorCode, st.ErrorMessage = e.codeAndMessage()
	}
	return resp
}
