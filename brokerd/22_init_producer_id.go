package brokerd

// InitProducerId (key 22), versions 0–4.
//
// With a transactional id the request goes to the transaction coordinator
// (brokerd/txn): it allocates the id's producer id on first use and bumps
// its epoch on every later call, fencing the previous producer and
// aborting a transaction it left open; KIP-360 retries and bumps as
// described there. The transaction timeout must be within
// Config.TxnMaxTimeout (INVALID_TRANSACTION_TIMEOUT otherwise).
//
// For idempotent producers (no transactional id):
// Without a producer id (or with -1) it allocates a new one with epoch 0.
// Ids come from a counter persisted in the cluster metadata in blocks, so
// an id is never handed out twice, even after a crash. With an existing id
// and epoch (v3+; KIP-360) it answers the same id with the epoch bumped, so
// the producer's sequence numbers restart; at the maximum epoch a fresh id
// is allocated instead. The per-partition sequence state itself lives in
// plog.
//
// With the authorizer on: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), or without one IDEMPOTENT_WRITE
// on the cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED);
// see acl_txn.go.

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleInitProducerID(req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		if refused := cc.refuseTxn(req); refused != nil {
			return refused.(*kmsg.InitProducerIDResponse)
		}
		tr, err := c.txn.Handle(cc.ctx, req)
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		return tr.(*kmsg.InitProducerIDResponse)
	}
	if !cc.authorizeCluster(aclOpIdempotentWrite) && !cc.mayWriteSomeTopic() {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	if req.Version >= 3 && req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp
	}
	id, err := c.allocProducerID()
	if err != nil {
		c.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
