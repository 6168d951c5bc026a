package brokerd

// AlterConfigs (key 33), versions 0–2.
//
// Replaces a topic's whole config set (Kafka's legacy semantics: keys not
// in the request return to their defaults). Values are validated as in
// CreateTopics; honoured keys take effect on the open logs at once.
// ValidateOnly checks without changing.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG (unknown key or bad
// value), INVALID_REQUEST for broker resources (broker configs are
// read-only) and other resource types.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleAlterConfigs(req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		e := func() *kafkaErr {
			if rr.ResourceType != resourceTopic {
				return kErr(kerr.InvalidRequest, "brokerd alters topic configs only; broker configs are read-only")
			}
			if _, ok := c.topicConfigs(rr.ResourceName); !ok {
				return kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", rr.ResourceName)
			}
			cfgs := map[string]string{}
			for _, rc := range rr.Configs {
				if err := validateConfig(rc.Name, rc.Value); err != nil {
					return kErr(kerr.InvalidConfig, "%v", err)
				}
				cfgs[rc.Name] = *rc.Value
			}
			if req.ValidateOnly {
				return nil
			}
			return c.setTopicConfigs(rr.ResourceName, cfgs)
		}()
		if e != nil {
			sr.ErrorCode = e.code
			msg := e.msg
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
