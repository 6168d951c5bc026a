package brokerd

// AddOffsetsToTxn (key 25), versions 0–3.
//
// Adds a consumer group's offsets to the producer's transaction: the
// transaction coordinator lists them as __consumer_offsets partition 0, and
// ending the transaction commits or discards the offsets the producer then
// sends with TxnOffsetCommit.
//
// Errors: as AddPartitionsToTxn.
// With the authorizer on, the ACLs of acl_txn.go are checked first.

import "github.com/twmb/franz-go/pkg/kmsg"

func (cc *conn) handleAddOffsetsToTxn(req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	if refused := cc.refuseTxn(req); refused != nil {
		return refused, nil
	}
	return cc.b.c.txn.Handle(cc.ctx, req)
}
