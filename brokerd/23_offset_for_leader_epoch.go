package brokerd

// OffsetForLeaderEpoch (key 23), versions 0–4.
//
// brokerd never changes a partition's leader (replication factor 1), so
// every partition has had one leader epoch, 0, since it was created. The
// end offset of epoch 0 is therefore the log end offset (the high
// watermark): a consumer whose position is past it learns that data it
// read is gone (e.g. an unsynced tail lost in a crash) and resets, as
// KIP-320 intends. A requested epoch above 0 is unknown to the log and
// gets epoch and offset -1 (Kafka's "undefined"); a current leader epoch
// above 0 in the request gets UNKNOWN_LEADER_EPOCH.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER.
//
// Not supported: follower requests (ReplicaID >= 0) are answered like
// consumer ones.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, code := cc.led(rt.Topic, rp.Partition)
			if !cc.allowedTopic(rt.Topic, aclOpDescribe) {
				code = kerr.TopicAuthorizationFailed.Code
			}
			switch {
			case code != 0:
				sp.ErrorCode = code
			case req.Version >= 2 && rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.LeaderEpoch == 0:
				sp.LeaderEpoch, sp.EndOffset = 0, p.log.HighWatermark()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
