package brokerd

// DescribeConfigs (key 32), versions 0–4.
//
// Topics (resource type 2): every topic config brokerd knows (configs.go),
// or the requested names; explicitly set values have source
// DYNAMIC_TOPIC_CONFIG, the rest DEFAULT_CONFIG with Kafka's default.
// Brokers (type 4): a read-only view of the settings that matter to
// clients (broker.id, num.partitions, auto.create.topics.enable,
// socket.request.max.bytes, message.max.bytes, default.replication.factor,
// log.dirs), source STATIC_BROKER_CONFIG.
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST for other resource
// types or an unknown broker id.
//
// Not supported: synonyms (always empty), documentation, sensitive
// configs, broker loggers (type 8).

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceDynamicTopic = 1
	sourceStaticBroker = 4
	sourceDefault      = 5
)

func (cc *conn) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if e := cc.authorizeConfigs(rr.ResourceType, rr.ResourceName, aclOpDescribeConfigs); e != nil {
			sr.ErrorCode, sr.ErrorMessage = e.codeAndMessage()
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		add := func(name, value string, source int8, readOnly bool, kind configKind) {
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name = name
			v := value
			rc.Value = &v
			rc.ReadOnly = readOnly
			rc.IsDefault = source == sourceDefault
			rc.Source = kmsg.ConfigSource(source)
			rc.ConfigType = configType(kind)
			sr.Configs = append(sr.Configs, rc)
		}
		switch rr.ResourceType {
		case resourceTopic:
			cfgs, ok := c.topicConfigs(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "unknown topic " + rr.ResourceName
				sr.ErrorMessage = &msg
				break
			}
			for _, name := range topicConfigNames {
				if !want(name) {
					continue
				}
				d, _ := lookupConfig(name)
				if v, set := cfgs[name]; set {
					add(name, v, sourceDynamicTopic, false, d.kind)
				} else {
					add(name, d.def, sourceDefault, false, d.kind)
				}
			}
		case resourceBroker:
			id, err := strconv.Atoi(rr.ResourceName)
			if rr.ResourceName != "" && (err != nil || id < 0 || id >= len(c.brokers)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker " + rr.ResourceName
				sr.ErrorMessage = &msg
				break
			}
			for _, kv := range c.brokerConfigs(int32(id)) {
				if want(kv[0]) {
					add(kv[0], kv[1], sourceStaticBroker, true, kindString)
				}
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "brokerd describes topic and broker configs only"
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// brokerConfigs is the read-only broker view, as name/value pairs.
func (c *Cluster) brokerConfigs(id int32) [][2]string {
	return [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(c.cfg.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(id))},
		{"default.replication.factor", "1"},
		{"log.dirs", c.cfg.Dir},
		{"message.max.bytes", honouredConfigs["max.message.bytes"].def},
		{"num.partitions", strconv.Itoa(int(c.cfg.Partitions))},
		{"socket.request.max.bytes", strconv.Itoa(int(c.cfg.MaxRequestBytes))},
	}
}

func configType(k configKind) kmsg.ConfigType {
	switch k {
	case kindLong:
		return kmsg.ConfigTypeLong
	case kindInt:
		return kmsg.ConfigTypeInt
	case kindDouble:
		return kmsg.ConfigTypeDouble
	case kindBool:
		return kmsg.ConfigTypeBoolean
	case kindPolicy:
		return kmsg.ConfigTypeList
	default:
		return kmsg.ConfigTypeString
	}
}
