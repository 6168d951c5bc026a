package brokerd

// Authorization of the group coordinator's requests (package group knows
// nothing of ACLs). Before the coordinator sees a request, the groups and
// topics the principal may not use are taken out of it; afterwards they
// are put back into the response with GROUP_AUTHORIZATION_FAILED or
// TOPIC_AUTHORIZATION_FAILED, as Kafka answers them:
//
//	JoinGroup, SyncGroup, Heartbeat, LeaveGroup   READ on the group
//	OffsetCommit                                  READ on the group and each topic
//	OffsetFetch                                   DESCRIBE on the group; topics
//	                                              without DESCRIBE are left out
//	DescribeGroups                                DESCRIBE on each group
//	ListGroups                                    DESCRIBE on the cluster, or only
//	                                              the groups with DESCRIBE
//	DeleteGroups                                  DELETE on each group
//	OffsetDelete                                  DELETE on the group, READ on each topic

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleGroupAuthorized runs a group request through the coordinator with
// the authorizer's checks around it; with the authorizer off it is the
// coordinator's answer unchanged.
func (cc *conn) handleGroupAuthorized(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	coord := cc.b.c.coord
	if cc.b.c.authz == nil {
		return coord.Handle(ctx, req)
	}
	denied := kerr.GroupAuthorizationFailed.Code
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		if !cc.allowedGroup(r.Group, aclOpRead) {
			resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
	case *kmsg.SyncGroupRequest:
		if !cc.allowedGroup(r.Group, aclOpRead) {
			resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
	case *kmsg.HeartbeatRequest:
		if !cc.allowedGroup(r.Group, aclOpRead) {
			resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
	case *kmsg.LeaveGroupRequest:
		if !cc.allowedGroup(r.Group, aclOpRead) {
			resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
	case *kmsg.OffsetCommitRequest:
		return cc.offsetCommitAuthorized(ctx, r)
	case *kmsg.OffsetFetchRequest:
		return cc.offsetFetchAuthorized(ctx, r)
	case *kmsg.DescribeGroupsRequest:
		var allowed, refused []string
		for _, g := range r.Groups {
			if cc.allowedGroup(g, aclOpDescribe) {
				allowed = append(allowed, g)
			} else {
				refused = append(refused, g)
			}
		}
		r.Groups = allowed
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		if len(allowed) > 0 {
			got, err := coord.Handle(ctx, r)
			if err != nil {
				return nil, err
			}
			resp = got.(*kmsg.DescribeGroupsResponse)
		}
		for _, g := range refused {
			dg := kmsg.NewDescribeGroupsResponseGroup()
			dg.Group, dg.ErrorCode = g, denied
			resp.Groups = append(resp.Groups, dg)
		}
		return resp, nil
	case *kmsg.ListGroupsRequest:
		got, err := coord.Handle(ctx, r)
		if err != nil || cc.authorizeCluster(aclOpDescribe) {
			return got, err
		}
		resp := got.(*kmsg.ListGroupsResponse)
		kept := resp.Groups[:0]
		for _, g := range resp.Groups {
			if cc.allowedGroup(g.Group, aclOpDescribe) {
				kept = append(kept, g)
			}
		}
		resp.Groups = kept
		return resp, nil
	case *kmsg.DeleteGroupsRequest:
		var allowed, refused []string
		for _, g := range r.Groups {
			if cc.allowedGroup(g, aclOpDelete) {
				allowed = append(allowed, g)
			} else {
				refused = append(refused, g)
			}
		}
		r.Groups = allowed
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		if len(allowed) > 0 {
			got, err := coord.Handle(ctx, r)
			if err != nil {
				return nil, err
			}
			resp = got.(*kmsg.DeleteGroupsResponse)
		}
		for _, g := range refused {
			dg := kmsg.NewDeleteGroupsResponseGroup()
			dg.Group, dg.ErrorCode = g, denied
			resp.Groups = append(resp.Groups, dg)
		}
		return resp, nil
	case *kmsg.OffsetDeleteRequest:
		if !cc.allowedGroup(r.Group, aclOpDelete) {
			resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
		for _, t := range r.Topics {
			if !cc.allowedTopic(t.Topic, aclOpRead) {
				resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
				resp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				return resp, nil
			}
		}
	}
	return coord.Handle(ctx, req)
}

func (cc *conn) offsetCommitAuthorized(ctx context.Context, r *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	groupOK := cc.allowedGroup(r.Group, aclOpRead)
	var allowed []kmsg.OffsetCommitRequestTopic
	var refused []kmsg.OffsetCommitResponseTopic
	for _, t := range r.Topics {
		code := int16(0)
		switch {
		case !groupOK:
			code = kerr.GroupAuthorizationFailed.Code
		case !cc.allowedTopic(t.Topic, aclOpRead):
			code = kerr.TopicAuthorizationFailed.Code
		}
		if code == 0 {
			allowed = append(allowed, t)
			continue
		}
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		refused = append(refused, rt)
	}
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	if len(allowed) > 0 || len(refused) == 0 {
		r.Topics = allowed
		got, err := cc.b.c.coord.Handle(ctx, r)
		if err != nil {
			return nil, err
		}
		resp = got.(*kmsg.OffsetCommitResponse)
	}
	resp.Topics = append(resp.Topics, refused...)
	return resp, nil
}

func (cc *conn) offsetFetchAuthorized(ctx context.Context, r *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	denied := kerr.GroupAuthorizationFailed.Code
	if r.Version < 8 {
		if !cc.allowedGroup(r.Group, aclOpDescribe) {
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = denied
			return resp, nil
		}
		got, err := cc.b.c.coord.Handle(ctx, r)
		if err != nil {
			return nil, err
		}
		resp := got.(*kmsg.OffsetFetchResponse)
		resp.Topics = filterTopics(resp.Topics, func(t kmsg.OffsetFetchResponseTopic) string { return t.Topic }, cc)
		return resp, nil
	}
	var allowed []kmsg.OffsetFetchRequestGroup
	var refused []string
	for _, g := range r.Groups {
		if cc.allowedGroup(g.Group, aclOpDescribe) {
			allowed = append(allowed, g)
		} else {
			refused = append(refused, g.Group)
		}
	}
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if len(allowed) > 0 {
		r.Groups = allowed
		got, err := cc.b.c.coord.Handle(ctx, r)
		if err != nil {
			return nil, err
		}
		resp = got.(*kmsg.OffsetFetchResponse)
	}
	for i := range resp.Groups {
		resp.Groups[i].Topics = filterTopics(resp.Groups[i].Topics, func(t kmsg.OffsetFetchResponseGroupTopic) string { return t.Topic }, cc)
	}
	for _, g := range refused {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = g, denied
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// filterTopics keeps the topics the principal may DESCRIBE.
func filterTopics[T any](ts []T, name func(T) string, cc *conn) []T {
	kept := ts[:0]
	for _, t := range ts {
		if cc.allowedTopic(name(t), aclOpDescribe) {
			kept = append(kept, t)
		}
	}
	return kept
}
