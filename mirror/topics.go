package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Destination topics are created, grown and configured in batches: one
// CreateTopics for every missing destination topic, one CreatePartitions
// for every topic to grow, one DescribeConfigs on the source and one
// DescribeConfigs and one IncrementalAlterConfigs on the destination for
// the topics whose configs are looked at this round. A whole request that
// fails is retried; an error for one topic is logged and set as the
// pipeline's last error for that topic alone, and the next refresh tries
// it again. At 10,000 topics this is a handful of requests instead of tens
// of thousands.
//
// Kafka offers no cheap sign that a topic's configs changed, and
// describing every topic's configs on both clusters at every refresh is
// most of what an idle mirror allocates. So a refresh describes the
// configs of the topics it creates, of those not copied yet (new, or
// whose last copy failed), and of the share of the others whose turn it
// is: each comes up once every configResync refreshes, picked by a hash of
// its name. A config changed on the source (or on the destination)
// reaches the destination within configResync refreshes: one minute at
// the default refresh of 10 s.

// adminBatch caps the topics in one admin request, so a request stays a
// sensible size for any broker.
const adminBatch = 1000

// configResync is how many refreshes pass before a topic's configs are
// compared again.
const configResync = 6

// configSync is the topic-config sync's state, used by discovery alone
// (one goroutine).
type configSync struct {
	round  uint32
	synced map[string]bool // source topics whose configs were copied
}

// due reports whether topic's configs are compared this round.
func (c *configSync) due(topic string) bool {
	return !c.synced[topic] || nameHash(topic)%configResync == c.round%configResync
}

// nameHash is FNV-1a of s.
func nameHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// topicPlan is what one topic needs on the destination.
type topicPlan struct {
	src, dest string
	parts     int32
	configs   map[string]*string // set on the source topic (sync.topic_configs)
}

// syncTopics creates missing destination topics, grows those with fewer
// partitions than their source (sync.partitions) and copies topic configs
// (sync.topic_configs), each in batches. dest holds the destination
// topics that exist, with their partition leaders. It reports whether it
// created or grew a topic.
func (p *pipeline) syncTopics(ctx context.Context, want []srcTopic, dest map[string][]int32) bool {
	cs := &p.configs
	if cs.synced == nil {
		cs.synced = map[string]bool{}
	}
	cs.round++
	for name := range cs.synced {
		if _, ok := findTopic(want, name); !ok {
			delete(cs.synced, name)
		}
	}
	var create, grow, existing []topicPlan
	var describe []string
	for _, st := range want {
		d := p.cfg.DestTopic(st.name)
		_, exists := dest[d]
		if !exists || cs.due(st.name) {
			describe = append(describe, st.name)
		}
	}
	configs := p.sourceConfigs(ctx, describe)
	for _, st := range want {
		tp := topicPlan{src: st.name, dest: p.cfg.DestTopic(st.name), parts: int32(len(st.parts)), configs: configs[st.name]}
		dparts, exists := dest[tp.dest]
		switch {
		case !exists:
			create = append(create, tp)
		default:
			if p.cfg.Sync.Partitions && int32(len(dparts)) < tp.parts {
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
	return len(create) > 0 || len(grow) > 0
}

// describeTopicConfigs describes names' configs on cl, without synonyms
// or documentation, in batches.
func describeTopicConfigs(ctx context.Context, cl *kgo.Client, names []string, each func(kmsg.DescribeConfigsResponseResource)) error {
	for i := 0; i < len(names); i += adminBatch {
		req := kmsg.NewPtrDescribeConfigsRequest()
		batch := names[i:min(i+adminBatch, len(names))]
		req.Resources = make([]kmsg.DescribeConfigsRequestResource, len(batch))
		for j, n := range batch {
			req.Resources[j] = kmsg.NewDescribeConfigsRequestResource()
			req.Resources[j].ResourceType, req.Resources[j].ResourceName = kmsg.ConfigResourceTypeTopic, n
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, r := range resp.Resources {
			each(r)
		}
	}
	return nil
}

// sourceConfigs returns, per source topic of names, the configs set on the
// topic itself (broker defaults and read-only values stay where they are),
// or nothing without sync.topic_configs. A topic described is marked as
// synced; a failure to copy its configs unmarks it (unsynced).
func (p *pipeline) sourceConfigs(ctx context.Context, names []string) map[string]map[string]*string {
	out := map[string]map[string]*string{}
	if !p.cfg.Sync.TopicConfigs || len(names) == 0 {
		return out
	}
	err := describeTopicConfigs(ctx, p.src, names, func(rc kmsg.DescribeConfigsResponseResource) {
		if err := kerr.ErrorForCode(rc.ErrorCode); err != nil {
			p.log.Warn("describing source topic configs failed", "topic", rc.ResourceName, "err", err)
			return
		}
		var m map[string]*string
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && !c.IsSensitive && c.Value != nil {
				if m == nil {
					m = map[string]*string{}
				}
				m[c.Name] = c.Value
			}
		}
		out[rc.ResourceName] = m
		p.configs.synced[rc.ResourceName] = true
	})
	if err != nil {
		p.log.Warn("describing source topic configs failed", "topics", len(names), "err", err)
	}
	return out
}

// unsynced marks src's configs as not copied: the next refresh looks again.
func (p *pipeline) unsynced(src string) {
	delete(p.configs.synced, src)
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
// one IncrementalAlterConfigs for all of plans. A topic whose configs
// could not be compared or set is looked at again at the next refresh.
func (p *pipeline) alterConfigs(ctx context.Context, plans []topicPlan) {
	dests := make([]string, len(plans))
	for i, tp := range plans {
		dests[i] = tp.dest
	}
	// have holds, per destination topic, the values of the configs the
	// source sets on it, and only those.
	byDest := make(map[string]int, len(plans))
	for i, tp := range plans {
		byDest[tp.dest] = i
	}
	have := make(map[string]map[string]string, len(plans))
	err := describeTopicConfigs(ctx, p.dst, dests, func(rc kmsg.DescribeConfigsResponseResource) {
		i, ok := byDest[rc.ResourceName]
		if rc.ErrorCode != 0 || !ok {
			return // not there yet, or not ours to read: next refresh
		}
		want := plans[i].configs
		m := make(map[string]string, len(want))
		for _, c := range rc.Configs {
			if _, ok := want[c.Name]; ok && c.Value != nil {
				m[c.Name] = *c.Value
			}
		}
		have[rc.ResourceName] = m
	})
	if err != nil {
		p.log.Warn("describing destination topic configs failed", "topics", len(dests), "err", err)
		for _, tp := range plans {
			p.unsynced(tp.src)
		}
		return
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	src := map[string]string{}
	for _, tp := range plans {
		h, ok := have[tp.dest]
		if !ok {
			p.unsynced(tp.src)
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
			src[tp.dest] = tp.src
		}
	}
	if len(req.Resources) == 0 {
		return
	}
	resp, err := req.RequestWith(ctx, p.dst)
	if err != nil {
		p.log.Warn("altering destination topic configs failed", "topics", len(req.Resources), "err", err)
		for _, s := range src {
			p.unsynced(s)
		}
		return
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			p.topicErr("alter destination topic configs", r.ResourceName, err)
			p.unsynced(src[r.ResourceName])
		}
	}
}
