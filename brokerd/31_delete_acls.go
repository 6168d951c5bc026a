package brokerd

// DeleteAcls (key 31), versions 0–3.
//
// Removes every binding each filter matches (see aclFilter; a binding
// matched by several filters is reported under each) and reports them.
// All filters are applied together and stored (acls.json, atomically)
// before the response. Before v1 the filters are LITERAL.
//
// Errors per filter: SECURITY_DISABLED when the authorizer is off;
// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster;
// INVALID_REQUEST for an unknown type; KAFKA_STORAGE_ERROR when the file
// cannot be written.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDeleteACLs(req *kmsg.DeleteACLsRequest) *kmsg.DeleteACLsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	a := cc.b.c.authz
	authorized := cc.authorizeCluster(aclOpAlter)
	var drop []aclFilter
	var slots []int
	for _, rf := range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		f := aclFilter{ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType}
		if req.Version == 0 {
			f.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err, msg := aclAdminRefusal(a, authorized, checkFilter(f)); err != nil {
			r.ErrorCode, r.ErrorMessage = err.Code, &msg
		} else {
			drop = append(drop, f)
			slots = append(slots, len(resp.Results))
		}
		resp.Results = append(resp.Results, r)
	}
	if len(drop) == 0 {
		return resp
	}
	removed, err := a.change(nil, drop)
	if err != nil {
		cc.b.c.log.Warn("save acls", "err", err)
		msg := err.Error()
		for _, i := range slots {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.KafkaStorageError.Code, &msg
		}
		return resp
	}
	for k, i := range slots {
		for _, b := range removed[k] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	return resp
}
