package brokerd

// ListOffsets (key 2), versions 1–8.
//
// Per partition, by the requested timestamp: -2 (earliest) gives the log
// start offset, -1 (latest) the high watermark, -3 (max timestamp, KIP-734)
// the offset and timestamp of the record with the largest timestamp, and
// any other value the first offset whose timestamp is at or after it
// (offset -1 when there is none). Leader epoch is always 0. With
// READ_COMMITTED (isolation level 1, v2+) latest is the last stable offset,
// and no answer lies past it.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER.
//
// Not supported: v0's multiple old-style offsets, tiered storage
// timestamps -4/-5 (v9+ only, not advertised).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleListOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			p, code := cc.led(rt.Topic, rp.Partition)
			if !cc.allowedTopic(rt.Topic, aclOpDescribe) {
				code = kerr.TopicAuthorizationFailed.Code
			}
			switch {
			case code != 0:
				sp.ErrorCode = code
			default:
				var err error
				switch rp.Timestamp {
				case -2:
					sp.Offset = p.log.LogStartOffset()
				case -1:
					sp.Offset = p.log.HighWatermark()
					if req.IsolationLevel == 1 {
						sp.Offset = p.log.LastStableOffset()
					}
				case -3:
					sp.Offset, sp.Timestamp, err = p.log.MaxTimestamp()
				default:
					sp.Offset, sp.Timestamp, err = p.log.OffsetForTimestamp(rp.Timestamp)
				}
				if err != nil {
					sp.ErrorCode = appendErrCode(err)
				}
				if lso := p.log.LastStableOffset(); req.IsolationLevel == 1 && rp.Timestamp != -2 && sp.Offset > lso {
					sp.Offset, sp.Timestamp = lso, -1
				}
				sp.LeaderEpoch = 0
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
