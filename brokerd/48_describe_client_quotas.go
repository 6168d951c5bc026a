package brokerd

// DescribeClientQuotas (key 48), versions 0–1.
//
// Lists the stored quotas whose entity matches every component of the
// filter: a component names an entity type (user or client-id) and asks
// for an exact name (match type 0), the default (1) or any entity that has
// that type (2). With Strict, an entity with a type the filter does not
// name is left out. See quota.go for the entities and their precedence.
//
// Errors (top level): INVALID_REQUEST for an unknown entity type or match
// type, or a type named twice; CLUSTER_AUTHORIZATION_FAILED without
// DESCRIBE_CONFIGS on the cluster when the authorizer is on.
//
// Not supported: the ip entity type (KIP-612).

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDescribeClientQuotas(req *kmsg.DescribeClientQuotasRequest) *kmsg.DescribeClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(err *kerr.Error, msg string) *kmsg.DescribeClientQuotasResponse {
		resp.ErrorCode = err.Code
		resp.ErrorMessage = &msg
		return resp
	}
	if !cc.authorizeCluster(aclOpDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed, "DESCRIBE_CONFIGS on the cluster is required")
	}
	seen := map[string]bool{}
	for _, comp := range req.Components {
		if comp.EntityType != quotaEntityUser && comp.EntityType != quotaEntityClient {
			return fail(kerr.InvalidRequest, "unknown entity type "+comp.EntityType)
		}
		if seen[comp.EntityType] {
			return fail(kerr.InvalidRequest, "entity type "+comp.EntityType+" named twice")
		}
		seen[comp.EntityType] = true
		if comp.MatchType < 0 || comp.MatchType > 2 || comp.MatchType == 0 && comp.Match == nil {
			return fail(kerr.InvalidRequest, "bad match for entity type "+comp.EntityType)
		}
	}
	matches := func(e quotaEntity) bool {
		for _, comp := range req.Components {
			p := e.User
			if comp.EntityType == quotaEntityClient {
				p = e.Client
			}
			switch {
			case !p.Set:
				return false
			case comp.MatchType == 0 && (p.Default || p.Name != *comp.Match):
				return false
			case comp.MatchType == 1 && !p.Default:
				return false
			}
		}
		if req.Strict {
			if e.User.Set && !seen[quotaEntityUser] || e.Client.Set && !seen[quotaEntityClient] {
				return false
			}
		}
		return true
	}
	q := cc.b.c.quotas
	q.mu.Lock()
	var entities []quotaEntity
	for e, vals := range q.mu.values {
		if len(vals) > 0 && matches(e) {
			entities = append(entities, e)
		}
	}
	sort.Slice(entities, func(i, j int) bool { return entityLess(entities[i], entities[j]) })
	for _, e := range entities {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, part := range []struct {
			typ string
			p   quotaPart
		}{{quotaEntityUser, e.User}, {quotaEntityClient, e.Client}} {
			if !part.p.Set {
				continue
			}
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = part.typ, part.p.name()
			entry.Entity = append(entry.Entity, ent)
		}
		keys := make([]string, 0, len(q.mu.values[e]))
		for k := range q.mu.values[e] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, q.mu.values[e][k]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	q.mu.Unlock()
	return resp
}
