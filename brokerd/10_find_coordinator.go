package brokerd

// FindCoordinator (key 10), versions 0–4.
//
// Group (key type 0) and transaction (key type 1) coordinators: the answer
// is the broker chosen by hashing the key (every broker reaches the same
// in-process coordinator, so the hash only spreads client connections).
// v4's batched CoordinatorKeys are answered one by one.
//
// Not supported: share groups (key type 2, v6); another key type gets
// INVALID_REQUEST. With the authorizer on, the key needs DESCRIBE on the
// group or the transactional id.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	one := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key = key
		if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
			co.ErrorCode = kerr.InvalidRequest.Code
			msg := "brokerd serves group and transaction coordinators only"
			co.ErrorMessage = &msg
			co.NodeID = -1
			return co
		}
		if code := cc.refuseCoordinator(req.CoordinatorType, key); code != 0 {
			co.ErrorCode, co.NodeID = code, -1
			return co
		}
		b := c.coordinatorFor(key)
		co.NodeID, co.Host, co.Port = b.id, b.host, b.port
		return co
	}
	if req.Version >= 4 {
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, one(k))
		}
		return resp
	}
	co := one(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
	resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
	return resp
}
