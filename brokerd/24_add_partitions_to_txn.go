package brokerd

// AddPartitionsToTxn (key 24), versions 0–3.
//
// Adds partitions to the producer's transaction in the transaction
// coordinator (brokerd/txn), which starts the transaction's clock on the
// first add. Every broker reaches the same in-process coordinator.
//
// Errors: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (v2+;
// INVALID_PRODUCER_EPOCH before), CONCURRENT_TRANSACTIONS while the
// previous transaction's markers are still being written,
// UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist (the
// others then get OPERATION_NOT_ATTEMPTED).
//
// Not supported: v4+ (the broker-to-broker batch form of KIP-890).
// With the authorizer on, the ACLs of acl_txn.go are checked first.

import "github.com/twmb/franz-go/pkg/kmsg"

func (cc *conn) handleAddPartitionsToTxn(req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	if refused := cc.refuseTxn(req); refused != nil {
		return refused, nil
	}
	return cc.b.c.txn.Handle(cc.ctx, req)
}
