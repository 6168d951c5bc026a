package brokerd

// EndTxn (key 26), versions 0–3.
//
// Commits or aborts the producer's transaction: the coordinator journals
// the decision to __transaction_state, writes a commit or abort control
// batch to every partition of the transaction (and commits or discards
// the group offsets), journals the completion, then answers. A retried
// EndTxn of a completed transaction is answered as the first was.
//
// Errors: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (v2+;
// INVALID_PRODUCER_EPOCH before), INVALID_TXN_STATE (no open transaction,
// or the opposite decision already taken).
//
// Not supported: v4+ (KIP-890 part 2).
// With the authorizer on, the ACLs of acl_txn.go are checked first.

import "github.com/twmb/franz-go/pkg/kmsg"

func (cc *conn) handleEndTxn(req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	if refused := cc.refuseTxn(req); refused != nil {
		return refused, nil
	}
	return cc.b.c.txn.Handle(cc.ctx, req)
}
