package brokerd

// DescribeAcls (key 29), versions 0–3.
//
// Lists the bindings that the filter matches (see aclFilter: ANY matches
// every value; the MATCH pattern type lists the bindings that apply to a
// named resource: literal, wildcard "*" and prefixes of it), grouped per
// resource. Before v1 there are no pattern types: the filter is LITERAL.
//
// Errors (top level): SECURITY_DISABLED when the authorizer is off;
// CLUSTER_AUTHORIZATION_FAILED without DESCRIBE on the cluster;
// INVALID_REQUEST for an unknown resource, pattern, operation or
// permission type.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDescribeACLs(req *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(err *kerr.Error, msg string) *kmsg.DescribeACLsResponse {
		resp.ErrorCode = err.Code
		resp.ErrorMessage = &msg
		return resp
	}
	a := cc.b.c.authz
	if a == nil {
		return fail(kerr.SecurityDisabled, "no authorizer is configured (strait broker --authorizer)")
	}
	if !cc.authorizeCluster(aclOpDescribe) {
		return fail(kerr.ClusterAuthorizationFailed, "DESCRIBE on the cluster is required")
	}
	pattern := req.ResourcePatternType
	if req.Version == 0 {
		pattern = kmsg.ACLResourcePatternTypeLiteral
	}
	f := aclFilter{ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: pattern,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if msg := checkFilter(f); msg != "" {
		return fail(kerr.InvalidRequest, msg)
	}
	type resKey struct {
		rt      kmsg.ACLResourceType
		name    string
		pattern kmsg.ACLResourcePatternType
	}
	index := map[resKey]int{}
	for _, b := range a.list(f) {
		k := resKey{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := index[k]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			index[k] = i
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host, acl.Operation, acl.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, acl)
	}
	return resp
}

// checkFilter returns why a filter is invalid, or "".
func checkFilter(f aclFilter) string {
	switch {
	case f.ResourceType < kmsg.ACLResourceTypeAny || f.ResourceType > kmsg.ACLResourceTypeUser:
		return "unknown resource type " + f.ResourceType.String()
	case f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return "unknown pattern type " + f.PatternType.String()
	case f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationDescribeTokens:
		return "unknown operation " + f.Operation.String()
	case f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow:
		return "unknown permission type " + f.Permission.String()
	}
	return ""
}
