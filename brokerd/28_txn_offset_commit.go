package brokerd

// TxnOffsetCommit (key 28), versions 0–3.
//
// The transaction coordinator first checks that the producer's open
// transaction holds the group (AddOffsetsToTxn); then the group
// coordinator journals the offsets as pending. They become committed
// offsets only when the transaction commits, and are discarded when it
// aborts. From v3 (KIP-447) a member id and generation, when given, are
// checked like an OffsetCommit's.
//
// Errors: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (v2+;
// INVALID_PRODUCER_EPOCH before), INVALID_TXN_STATE (the group is not in
// the transaction), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, OFFSET_METADATA_TOO_LARGE.
//
// Not supported: v4+ (KIP-890 part 2).
// With the authorizer on, the ACLs of acl_txn.go are checked first.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/group"
	"strait/brokerd/txn"
)

func (cc *conn) handleTxnOffsetCommit(h header, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	if refused := cc.refuseTxn(req); refused != nil {
		return cc.txnOffsetCommitAuthorized(h, req, refused)
	}
	c := cc.b.c
	codes, err := c.txn.Verify(cc.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{{Topic: txn.OffsetsTopic, Partition: 0}})
	if err != nil {
		return nil, err
	}
	if code := codes[0]; code != 0 {
		if code == kerr.ProducerFenced.Code && req.Version < 2 {
			code = kerr.InvalidProducerEpoch.Code
		}
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	ctx := group.WithClient(cc.ctx, group.ClientInfo{ClientID: deref(h.clientID), ClientHost: cc.remoteHost()})
	return c.coord.Handle(ctx, req)
}
