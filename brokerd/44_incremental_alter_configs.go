package brokerd

// IncrementalAlterConfigs (key 44), versions 0–1.
//
// Applies SET, DELETE (back to the default), APPEND and SUBTRACT (list
// configs: cleanup.policy) to a topic's configs, validating the result as
// CreateTopics does; honoured keys take effect on the open logs at once.
// ValidateOnly checks without changing.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG (unknown key, bad
// value, APPEND/SUBTRACT on a non-list config), INVALID_REQUEST for broker
// resources (read-only) and other resource types.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if e := cc.authorizeConfigs(rr.ResourceType, rr.ResourceName, aclOpAlterConfigs); e != nil {
			sr.ErrorCode, sr.ErrorMessage = e.codeAndMessage()
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		e := cc.b.c.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cfgs map[string]string) (map[string]string, *kafkaErr) {
			for _, rc := range rr.Configs {
				d, known := lookupConfig(rc.Name)
				if !known {
					return nil, kErr(kerr.InvalidConfig, "unknown topic config %q", rc.Name)
				}
				switch rc.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if err := validateConfig(rc.Name, rc.Value); err != nil {
						return nil, kErr(kerr.InvalidConfig, "%v", err)
					}
					cfgs[rc.Name] = *rc.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cfgs, rc.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if d.kind != kindPolicy {
						return nil, kErr(kerr.InvalidConfig, "config %q is not a list", rc.Name)
					}
					if rc.Value == nil {
						return nil, kErr(kerr.InvalidConfig, "config %q: null value", rc.Name)
					}
					cur, set := cfgs[rc.Name]
					if !set {
						cur = d.def
					}
					items := strings.Split(cur, ",")
					for _, v := range strings.Split(*rc.Value, ",") {
						has := slices.Contains(items, v)
						if rc.Op == kmsg.IncrementalAlterConfigOpAppend && !has {
							items = append(items, v)
						}
						if rc.Op == kmsg.IncrementalAlterConfigOpSubtract && has {
							items = slices.DeleteFunc(items, func(s string) bool { return s == v })
						}
					}
					nv := strings.Join(items, ",")
					if err := validateConfig(rc.Name, &nv); err != nil {
						return nil, kErr(kerr.InvalidConfig, "%v", err)
					}
					cfgs[rc.Name] = nv
				default:
					return nil, kErr(kerr.InvalidRequest, "unknown operation %d", rc.Op)
				}
			}
			return cfgs, nil
		})
		sr.ErrorCode, sr.ErrorMessage = e.codeAndMessage()
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
