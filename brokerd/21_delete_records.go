package brokerd

// DeleteRecords (key 21), versions 0–2.
//
// Advances each partition's log start offset to the requested offset (-1:
// the high watermark) through plog.DeleteRecords and answers the new low
// watermark. Whole segments below it are removed by the log; reads below
// it get OFFSET_OUT_OF_RANGE.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
// OFFSET_OUT_OF_RANGE (an offset past the high watermark).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDeleteRecords(req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, code := cc.led(rt.Topic, rp.Partition)
			if !cc.allowedTopic(rt.Topic, aclOpDelete) {
				code = kerr.TopicAuthorizationFailed.Code
			}
			switch {
			case code != 0:
				sp.ErrorCode = code
			case rp.Offset < -1:
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				lw, err := p.log.DeleteRecords(rp.Offset)
				if err != nil {
					sp.ErrorCode = appendErrCode(err)
					break
				}
				sp.LowWatermark = lw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
