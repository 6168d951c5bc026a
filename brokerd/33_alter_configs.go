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
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if e := cc.authorizeConfigs(rr.ResourceType, rr.ResourceName, aclOpAlterConfigs); e != nil {
			sr.ErrorCode, sr.ErrorMessage = e.codeAndMessage()
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		e := cc.b.c.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, *kafkaErr) {
			cfgs := map[string]string{}
			for _, rc := range rr.Configs {
				if err := validateConfig(rc.Name, rc.Value); err != nil {
					return nil, kErr(kerr.InvalidConfig, "%v", err)
				}
				cfgs[rc.Name] = *rc.Value
			}
			return cfgs, nil
		})
		sr.ErrorCode, sr.ErrorMessage = e.codeAndMessage()
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterTopicConfigs is what AlterConfigs and IncrementalAlterConfigs
// share: only topics may be altered, the topic must exist, edit turns its
// current configs (a copy) into the new set, and ValidateOnly stops
// before anything changes.
func (c *Cluster) alterTopicConfigs(resourceType kmsg.ConfigResourceType, name string, validateOnly bool, edit func(current map[string]string) (map[string]string, *kafkaErr)) *kafkaErr {
	if resourceType != resourceTopic {
		return kErr(kerr.InvalidRequest, "brokerd alters topic configs only; broker configs are read-only")
	}
	current, ok := c.topicConfigs(name)
	if !ok {
		return kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", name)
	}
	cfgs, e := edit(current)
	if e != nil || validateOnly {
		return e
	}
	return c.setTopicConfigs(name, cfgs)
}
