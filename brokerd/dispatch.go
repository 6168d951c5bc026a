package brokerd

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/group"
)

// apiRange is the version range brokerd serves for one key.
type apiRange struct{ min, max int16 }

// apis lists the keys brokerd itself serves; group.Keys() adds the group
// coordinator's. Each handler file's header explains its range.
var apis = map[int16]apiRange{
	int16(kmsg.Produce):                 {3, 12}, // v13 switches to topic IDs
	int16(kmsg.Fetch):                   {4, 12}, // v13 switches to topic IDs
	int16(kmsg.ListOffsets):             {1, 8},
	int16(kmsg.Metadata):                {0, 12},
	int16(kmsg.FindCoordinator):         {0, 4},
	int16(kmsg.ApiVersions):             {0, 4},
	int16(kmsg.CreateTopics):            {0, 7},
	int16(kmsg.DeleteTopics):            {0, 6},
	int16(kmsg.DeleteRecords):           {0, 2},
	int16(kmsg.InitProducerID):          {0, 4},
	int16(kmsg.OffsetForLeaderEpoch):    {0, 4},
	int16(kmsg.DescribeConfigs):         {0, 4},
	int16(kmsg.AlterConfigs):            {0, 2},
	int16(kmsg.CreatePartitions):        {0, 3},
	int16(kmsg.IncrementalAlterConfigs): {0, 1},
	int16(kmsg.DescribeCluster):         {0, 1},
	int16(kmsg.AddPartitionsToTxn):      {0, 3}, // v4+ is broker to broker (KIP-890)
	int16(kmsg.AddOffsetsToTxn):         {0, 3},
	int16(kmsg.EndTxn):                  {0, 3}, // v4+ is KIP-890 part 2
	int16(kmsg.DescribeTransactions):    {0, 0},
	int16(kmsg.ListTransactions):        {0, 1}, // v2 adds an id pattern
	int16(kmsg.DescribeACLs):            {0, 3},
	int16(kmsg.CreateACLs):              {0, 3},
	int16(kmsg.DeleteACLs):              {0, 3},
	int16(kmsg.DescribeClientQuotas):    {0, 1},
	int16(kmsg.AlterClientQuotas):       {0, 1},
	int16(kmsg.SASLHandshake):           {0, 1}, // advertised only with SASL on
	int16(kmsg.SASLAuthenticate):        {0, 2}, // advertised only with SASL on
}

func minVersion(key int16) int16 {
	if r, ok := apis[key]; ok {
		return r.min
	}
	return 0
}

func maxVersion(key int16) (int16, bool) {
	if r, ok := apis[key]; ok {
		return r.max, true
	}
	v, ok := group.Keys()[key]
	return v, ok
}

// dispatch routes a decoded request to its handler, then charges it to
// the client's quotas (quota.go): the response carries the throttle time
// and the connection is muted for it.
func (cc *conn) dispatch(h header, req kmsg.Request) (*response, error) {
	if len(cc.b.c.cfg.SASLUsers) > 0 && !cc.sasl.authed && h.key != int16(kmsg.SASLHandshake) && h.key != int16(kmsg.ApiVersions) && h.key != int16(kmsg.SASLAuthenticate) {
		return nil, fmt.Errorf("%w: %s before SASL authentication", ErrUnauthenticated, kmsg.NameForKey(h.key))
	}
	start := time.Now()
	cc.waited = 0
	if r, ok := req.(*kmsg.FetchRequest); ok {
		out := cc.handleFetch(h, r)
		var n int64
		for _, p := range out.parts {
			n += int64(len(p.bytes)) + p.span.Len
		}
		if t := cc.applyQuotas(h, n, time.Since(start)-cc.waited); t > 0 {
			// The throttle field follows the size, correlation id and,
			// from v12, the header's tags.
			at := 8
			if r.Version >= 12 {
				at = 9
			}
			binary.BigEndian.PutUint32(out.parts[0].bytes[at:], uint32(throttleMillis(t)))
		}
		return out, nil
	}
	resp, err := cc.handle(h, req)
	if err != nil || resp == nil && h.key != int16(kmsg.Produce) {
		return nil, err
	}
	var n int64
	if r, ok := req.(*kmsg.ProduceRequest); ok {
		n = producedBytes(r)
	}
	t := cc.applyQuotas(h, n, time.Since(start)-cc.waited)
	if resp == nil {
		return nil, nil // acks=0: muted all the same
	}
	if tr, ok := resp.(kmsg.SetThrottleResponse); ok && t > 0 {
		tr.SetThrottle(throttleMillis(t))
	}
	resp.SetVersion(h.version)
	return frameResponse(h.corr, resp), nil
}

// handle runs the handler of every request but Fetch. A nil response
// with a nil error is an acks=0 produce: nothing is sent back.
func (cc *conn) handle(h header, req kmsg.Request) (kmsg.Response, error) {
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.SASLHandshakeRequest:
		resp = cc.handleSASLHandshake(r)
	case *kmsg.SASLAuthenticateRequest:
		resp = cc.handleSASLAuthenticate(r)
	case *kmsg.ProduceRequest:
		pr, err := cc.handleProduce(r)
		if pr == nil {
			return nil, err
		}
		resp = pr
	case *kmsg.ListOffsetsRequest:
		resp = cc.handleListOffsets(r)
	case *kmsg.MetadataRequest:
		resp = cc.handleMetadata(r)
	case *kmsg.FindCoordinatorRequest:
		resp = cc.handleFindCoordinator(r)
	case *kmsg.ApiVersionsRequest:
		resp = apiVersionsResponse(r.Version, len(cc.b.c.cfg.SASLUsers) > 0)
	case *kmsg.CreateTopicsRequest:
		resp = cc.handleCreateTopics(r)
	case *kmsg.DeleteTopicsRequest:
		resp = cc.handleDeleteTopics(r)
	case *kmsg.DeleteRecordsRequest:
		resp = cc.handleDeleteRecords(r)
	case *kmsg.OffsetForLeaderEpochRequest:
		resp = cc.handleOffsetForLeaderEpoch(r)
	case *kmsg.InitProducerIDRequest:
		resp = cc.handleInitProducerID(r)
	case *kmsg.DescribeConfigsRequest:
		resp = cc.handleDescribeConfigs(r)
	case *kmsg.AlterConfigsRequest:
		resp = cc.handleAlterConfigs(r)
	case *kmsg.CreatePartitionsRequest:
		resp = cc.handleCreatePartitions(r)
	case *kmsg.IncrementalAlterConfigsRequest:
		resp = cc.handleIncrementalAlterConfigs(r)
	case *kmsg.DescribeClusterRequest:
		resp = cc.handleDescribeCluster(r)
	case *kmsg.AddPartitionsToTxnRequest, *kmsg.AddOffsetsToTxnRequest, *kmsg.EndTxnRequest,
		*kmsg.DescribeTransactionsRequest, *kmsg.ListTransactionsRequest, *kmsg.TxnOffsetCommitRequest:
		tr, err := cc.dispatchTxn(h, req)
		if err != nil {
			return nil, fmt.Errorf("brokerd: %s: %w", kmsg.NameForKey(h.key), err)
		}
		resp = tr
	case *kmsg.DescribeACLsRequest:
		resp = cc.handleDescribeACLs(r)
	case *kmsg.CreateACLsRequest:
		resp = cc.handleCreateACLs(r)
	case *kmsg.DeleteACLsRequest:
		resp = cc.handleDeleteACLs(r)
	case *kmsg.DescribeClientQuotasRequest:
		resp = cc.handleDescribeClientQuotas(r)
	case *kmsg.AlterClientQuotasRequest:
		resp = cc.handleAlterClientQuotas(r)
	default:
		if _, ok := group.Keys()[h.key]; !ok {
			return nil, fmt.Errorf("%w: key %d", ErrUnsupported, h.key)
		}
		ctx := group.WithClient(cc.ctx, group.ClientInfo{ClientID: deref(h.clientID), ClientHost: cc.remoteHost()})
		gr, err := cc.handleGroupAuthorized(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("brokerd: %s: %w", kmsg.NameForKey(h.key), err)
		}
		resp = gr
	}
	return resp, nil
}

// dispatchTxn routes the transaction keys (one handler file each).
func (cc *conn) dispatchTxn(h header, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.AddPartitionsToTxnRequest:
		return cc.handleAddPartitionsToTxn(r)
	case *kmsg.AddOffsetsToTxnRequest:
		return cc.handleAddOffsetsToTxn(r)
	case *kmsg.EndTxnRequest:
		return cc.handleEndTxn(r)
	case *kmsg.TxnOffsetCommitRequest:
		return cc.handleTxnOffsetCommit(h, r)
	case *kmsg.DescribeTransactionsRequest:
		return cc.handleDescribeTransactions(r)
	case *kmsg.ListTransactionsRequest:
		return cc.handleListTransactions(r)
	}
	return nil, ErrUnsupported
}

// led returns the partition when this connection's broker leads it, or
// the error code a partition request gets otherwise:
// UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER.
func (cc *conn) led(topic string, index int32) (*partition, int16) {
	p, _ := cc.b.c.lookup(topic, index)
	switch {
	case p == nil:
		return nil, kerr.UnknownTopicOrPartition.Code
	case p.leader != cc.b.id:
		return nil, kerr.NotLeaderForPartition.Code
	}
	return p, 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (cc *conn) remoteHost() string {
	host, _, err := net.SplitHostPort(cc.nc.RemoteAddr().String())
	if err != nil {
		return cc.nc.RemoteAddr().String()
	}
	return "/" + host
}
