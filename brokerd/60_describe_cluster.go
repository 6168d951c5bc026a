package brokerd

// DescribeCluster (key 60), versions 0–1.
//
// Answers the cluster ID, broker 0 as controller and every broker's host
// and port. The endpoint type (v1) is always brokers.
//
// Not supported: controller endpoints (EndpointType 2 gets
// UNSUPPORTED_ENDPOINT_TYPE), racks, authorized operations (reported as
// "not provided"), fenced brokers (v2).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleDescribeCluster(req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "brokerd serves broker endpoints only"
		resp.ErrorMessage = &msg
		return resp
	}
	if !cc.authorizeCluster(aclOpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	resp.ClusterID = c.ClusterID()
	resp.ControllerID = 0
	resp.ClusterAuthorizedOperations = -2147483648
	for _, b := range c.brokers {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.id, b.host, b.port
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp
}
