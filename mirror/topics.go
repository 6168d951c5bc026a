package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Destination topics are created, grown and configured in batches: one
// DescribeConfigs on the source for every selected topic, one CreateTopics
// for every missing destination topic, one CreatePartitions for every topic
// to grow, one DescribeConfigs and one IncrementalAlterConfigs on the
// destination for every topic whose configs drifted. A whole request that
// fails is retried; an error for one topic is logged and set as the
// pipeline's last error for that topic alone, and the next refresh tries
// it again. At 10,000 topics this is a handful of requests instead of tens
// of thousands.

// adminBatch caps the topics in one admin request, so a request stays a
// sensible size for any broker.
const adminBatch = 1000

// topicPlan is what one topic needs on the destination.
type topicPlan struct {
	src, dest string
	parts     int32
	configs   map[string]*string // set on the source topic (sync.topic_configs)
}

// syncTopics creates missing destination topics, grows those with fewer
// partitions than their source (sync.partitions) and copies topic configs
// (sync.topic_configs), each in batches.
func (p *pipeline) syncTopics(ctx context.Context, names []string, want map[string]kadm.TopicDetail, dmeta kadm.Metadata) {
	configs := p.sourceConfigs(ctx, names)
	var create, grow, existing []topicPlan
	for _, name := range names {
		tp := topicPlan{src: name, dest: p.cfg.DestTopic(name), parts: int32(len(want[name].Partitions)), configs: configs[name]}
		dtd, exists := dmeta.Topics[tp.dest]
		switch {
		case !exists || errors.Is(dtd.Err, kerr.UnknownTopicOrPartition):
			create = append(create, tp)
		default:
			if p.cfg.Sync.Partitions && int32(len(dtd.Partitions)) < tp.parts {
				grow = append(grow, tp)
			}
			if len(tp.configs) > 0 {
				existing = append(existing, tp)
			}
		}
	}
	for i := 0; i < len(create); i += adminBatch {
		p.createTopics(ctx, create[i:min(i+adminBatch, len(create))])
	}
	for i := 0; i < len(grow); i += adminBatch {
		p.growTopics(ctx, grow[i:min(i+adminBatch, len(grow))])
	}
	for i := 0; i < len(existing); i += adminBatch {
		p.alterConfigs(ctx, existing[i:min(i+adminBatch, len(existing))])
	}
}

// sourceConfigs returns, per source topic, the configs set on the topic
// itself (broker defaults and read-only values stay where they are), or
// nothing without sync.topic_configs.
func (p *pipeline) sourceConfigs(ctx context.Context, names []string) map[string]map[string]*string {
	out := map[string]map[string]*string{}
	if !p.cfg.Sync.TopicConfigs || len(names) == 0 {
		return out
	}
	rcs, err := p.sadm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		p.log.Warn("describing source topic configs failed", "topics", len(names), "err", err)
		return out
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			p.log.Warn("describing source topic configs failed", "topic", rc.Name, "err", rc.Err)
			continue
		}
		m := map[string]*string{}
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && !c.Sensitive && c.Value != nil {
				m[c.Key] = c.Value
			}
		}
		out[rc.Name] = m
	}
	return out
}

// topicErr records one topic's failure: logged, and kept as the
// pipeline's last error.
func (p *pipeline) topicErr(what, topic string, err error) {
	p.log.Warn(what+" failed; trying again at the next refresh", "topic", topic, "err", err)
	p.setErr(fmt.Sprintf("%s %s: %v", what, topic, err))
}

// createTopics creates plans' destination topics in one request. A topic
// whose configs the destination refuses is created again without them: the
// records matter more.
func (p *pipeline) createTopics(ctx context.Context, plans []topicPlan) {
	errs := p.createTopicsOnce(ctx, plans, true)
	var bare []topicPlan
	created := 0
	for _, tp := range plans {
		err, failed := errs[tp.dest]
		switch {
		case !failed:
			created++
		case len(tp.configs) > 0 && (errors.Is(err, kerr.InvalidConfig) || errors.Is(err, kerr.InvalidRequest) || errors.Is(err, kerr.PolicyViolation)):
			p.log.Warn("destination refused topic configs; creating without them", "topic", tp.dest, "err", err)
			bare = append(bare, tp)
		default:
			p.topicErr("create destination topic", tp.dest, err)
		}
	}
	if len(bare) > 0 {
		errs := p.createTopicsOnce(ctx, bare, false)
		for _, tp := range bare {
			if err, failed := errs[tp.dest]; failed {
				p.topicErr("create destination topic", tp.dest, err)
			} else {
				created++
			}
		}
	}
	if created > 0 {
		p.log.Info("created destination topics", "topics", created)
	}
}

// createTopicsOnce sends one CreateTopics and returns each topic's error
// (an existing topic is not one). A failed request is retried whole.
func (p *pipeline) createTopicsOnce(ctx context.Context, plans []topicPlan, withConfigs bool) map[string]error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 60000
	for _, tp := range plans {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tp.dest, tp.parts, -1
		if withConfigs {
			for k, v := range tp.configs {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name, c.Value = k, v
				rt.Configs = append(rt.Configs, c)
			}
		}
		req.Topics = append(req.Topics, rt)
	}
	errs := map[string]error{}
	err := p.retry(ctx, fmt.Sprintf("create %d destination topics", len(plans)), func() error {
		resp, err := req.RequestWith(ctx, p.dst)
		if err != nil {
			return err
		}
		clear(errs)
		answered := map[string]bool{}
		for _, rt := range resp.Topics {
			answered[rt.Topic] = true
			if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				errs[rt.Topic] = err
			} else {
				p.log.Debug("created destination topic", "topic", rt.Topic, "partitions", rt.NumPartitions)
			}
		}
		for _, tp := range plans {
			if !answered[tp.dest] {
				errs[tp.dest] = fmt.Errorf("%w: no answer for the topic", ErrCluster)
			}
		}
		return nil
	})
	if err != nil { // stopping
		for _, tp := range plans {
			errs[tp.dest] = err
		}
	}
	return errs
}

// growTopics grows plans' destination topics to their source partition
// counts in one CreatePartitions request.
func (p *pipeline) growTopics(ctx context.Context, plans []topicPlan) {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 60000
	for _, tp := range plans {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = tp.dest, tp.parts
		req.Topics = append(req.Topics, rt)
	}
	_ = p.retry(ctx, fmt.Sprintf("grow %d destination topics", len(plans)), func() error {
		resp, err := req.RequestWith(ctx, p.dst)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			err := kerr.ErrorForCode(rt.ErrorCode)
			switch {
			case err == nil:
				p.log.Info("grew destination topic", "topic", rt.Topic)
			case errors.Is(err, kerr.InvalidPartitions): // already grown
			default:
				p.topicErr("grow destination topic", rt.Topic, err)
			}
		}
		return nil
	})
}

// alterConfigs sets, on existing destination topics, the source topic
// configs they lack or hold with another value: one DescribeConfigs and
// one IncrementalAlterConfigs for all of plans.
func (p *pipeline) alterConfigs(ctx context.Context, plans []topicPlan) {
	dests := make([]string, len(plans))
	for i, tp := range plans {
		dests[i] = tp.dest
	}
	rcs, err := p.dadm.DescribeTopicConfigs(ctx, dests...)
	if err != nil {
		p.log.Warn("describing destination topic configs failed", "topics", len(dests), "err", err)
		return
	}
	have := map[string]map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue // not there yet, or not ours to read: next refresh
		}
		m := map[string]string{}
		for _, c := range rc.Configs {
			m[c.Key] = c.MaybeValue()
		}
		have[rc.Name] = m
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, tp := range plans {
		h, ok := have[tp.dest]
		if !ok {
			continue
		}
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, tp.dest
		for k, v := range tp.configs {
			if cur, ok := h[k]; !ok || cur != *v {
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Value, c.Op = k, v, kmsg.IncrementalAlterConfigOpSet
				r.Configs = append(r.Configs, c)
			}
		}
		if len(r.Configs) > 0 {
			req.Resources = append(req.Resources, r)
		}
	}
	if len(req.Resources) == 0 {
		return
	}
	resp, err := req.RequestWith(ctx, p.dst)
	if err != nil {
		p.log.Warn("altering destination topic configs failed", "topics", len(req.Resources), "err", err)
		return
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			p.topicErr("alter destination topic configs", r.ResourceName, err)
		}
	}
}
