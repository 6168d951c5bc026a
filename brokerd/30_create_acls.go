package brokerd

// CreateAcls (key 30), versions 0–3.
//
// Adds bindings (see acl.go); a binding that already exists is accepted
// and not stored twice. The accepted creations are stored together
// (acls.json, written atomically) before the response. Before v1 every
// binding is LITERAL.
//
// Errors per creation: SECURITY_DISABLED when the authorizer is off;
// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster;
// INVALID_REQUEST for a resource type other than topic, group, cluster or
// transactional id, a pattern other than literal or prefixed, a cluster
// resource not named kafka-cluster, an empty name, a principal not of the
// form User:<name>, an empty host, or an operation or permission that is
// ANY or unknown; POLICY_VIOLATION, for every accepted creation, when the
// new bindings would take the count over Limits.MaxACLBindings (none is
// stored); KAFKA_STORAGE_ERROR when the file cannot be written.

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleCreateACLs(req *kmsg.CreateACLsRequest) *kmsg.CreateACLsResponse {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	a := cc.b.c.authz
	authorized := cc.authorizeCluster(aclOpAlter)
	var add []aclBinding
	var slots []int
	for _, cr := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		b := aclBinding{ResourceType: cr.ResourceType, ResourceName: cr.ResourceName, PatternType: cr.ResourcePatternType,
			Principal: cr.Principal, Host: cr.Host, Operation: cr.Operation, Permission: cr.PermissionType}
		if req.Version == 0 {
			b.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err, msg := aclAdminRefusal(a, authorized, checkBinding(b)); err != nil {
			r.ErrorCode, r.ErrorMessage = err.Code, &msg
		} else {
			add = append(add, b)
			slots = append(slots, len(resp.Results))
		}
		resp.Results = append(resp.Results, r)
	}
	if len(add) > 0 {
		if _, err := a.change(add, nil); err != nil {
			code := kerr.KafkaStorageError.Code
			if errors.Is(err, errTooManyACLs) {
				code = kerr.PolicyViolation.Code
			} else {
				cc.b.c.log.Warn("save acls", "err", err)
			}
			msg := err.Error()
			for _, i := range slots {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, &msg
			}
		}
	}
	return resp
}

// checkBinding returns why a binding cannot be stored, or "".
func checkBinding(b aclBinding) string {
	switch b.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId:
	case kmsg.ACLResourceTypeCluster:
		if b.ResourceName != clusterResource || b.PatternType != kmsg.ACLResourcePatternTypeLiteral {
			return "the cluster resource is the literal " + clusterResource
		}
	default:
		return "unsupported resource type " + b.ResourceType.String()
	}
	switch {
	case b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed:
		return "pattern type must be LITERAL or PREFIXED"
	case b.ResourceName == "":
		return "empty resource name"
	case !strings.HasPrefix(b.Principal, "User:") || len(b.Principal) == len("User:"):
		return "principal must be User:<name>, got " + b.Principal
	case b.Host == "":
		return "empty host (use * for any)"
	case b.Operation <= kmsg.ACLOperationAny || b.Operation > kmsg.ACLOperationDescribeTokens:
		return "invalid operation " + b.Operation.String()
	case b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny:
		return "permission must be ALLOW or DENY"
	}
	return ""
}
