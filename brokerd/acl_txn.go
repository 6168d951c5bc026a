package brokerd

// Authorization of the transaction requests (package txn knows nothing of
// ACLs). Each handler asks once, before the coordinator sees the request;
// a refused request is answered here in full, as Kafka answers it:
//
//	FindCoordinator for a transaction        DESCRIBE on the transactional id
//	InitProducerId with a transactional id   WRITE on the transactional id
//	InitProducerId without one               IDEMPOTENT_WRITE on the cluster,
//	                                         or WRITE on some topic (KIP-679)
//	Produce with a transactional id          WRITE on the transactional id
//	                                         (and WRITE on each topic)
//	AddPartitionsToTxn                       WRITE on the transactional id,
//	                                         WRITE on each topic
//	AddOffsetsToTxn                          WRITE on the transactional id,
//	                                         READ on the group
//	EndTxn                                   WRITE on the transactional id
//	TxnOffsetCommit                          WRITE on the transactional id,
//	                                         READ on the group and each topic
//	DescribeTransactions                     DESCRIBE on each transactional id
//	ListTransactions                         only the ids with DESCRIBE
//
// AddPartitionsToTxn adds all of its partitions or none: when one topic
// is refused, its partitions get TOPIC_AUTHORIZATION_FAILED and the others
// OPERATION_NOT_ATTEMPTED. TxnOffsetCommit commits the topics it may and
// answers TOPIC_AUTHORIZATION_FAILED for the rest.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnCoordinatorKey is FindCoordinator's key type of a transactional id
// (0 is a group).
const txnCoordinatorKey int8 = 1

// refuseCoordinator answers FindCoordinator's check: DESCRIBE on the
// group (key type 0) or on the transactional id (key type 1).
func (cc *conn) refuseCoordinator(keyType int8, key string) int16 {
	switch {
	case keyType == txnCoordinatorKey && !cc.allowedTxnID(key, aclOpDescribe):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case keyType != txnCoordinatorKey && !cc.allowedGroup(key, aclOpDescribe):
		return kerr.GroupAuthorizationFailed.Code
	}
	return 0
}

func (cc *conn) allowedTxnID(id string, op kmsg.ACLOperation) bool {
	return cc.allowed(kmsg.ACLResourceTypeTransactionalId, id, op)
}

// refuseTxn answers a transaction request the principal may not make, or
// returns nil when the coordinator should serve it. DescribeTransactions
// and ListTransactions are never refused as a whole: see
// describeTxnsAuthorized and filterTxnList.
func (cc *conn) refuseTxn(req kmsg.Request) kmsg.Response {
	if cc.b.c.authz == nil {
		return nil
	}
	idDenied := kerr.TransactionalIDAuthorizationFailed.Code
	switch r := req.(type) {
	case *kmsg.InitProducerIDRequest:
		if r.TransactionalID != nil && *r.TransactionalID != "" && !cc.allowedTxnID(*r.TransactionalID, aclOpWrite) {
			resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
			resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = -1, -1, idDenied
			return resp
		}
	case *kmsg.AddPartitionsToTxnRequest:
		idOK := cc.allowedTxnID(r.TransactionalID, aclOpWrite)
		refused := map[string]bool{}
		for _, t := range r.Topics {
			if !cc.allowedTopic(t.Topic, aclOpWrite) {
				refused[t.Topic] = true
			}
		}
		if idOK && len(refused) == 0 {
			return nil
		}
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		for _, t := range r.Topics {
			code := kerr.OperationNotAttempted.Code
			switch {
			case !idOK:
				code = idDenied
			case refused[t.Topic]:
				code = kerr.TopicAuthorizationFailed.Code
			}
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.AddOffsetsToTxnRequest:
		code := int16(0)
		switch {
		case !cc.allowedTxnID(r.TransactionalID, aclOpWrite):
			code = idDenied
		case !cc.allowedGroup(r.Group, aclOpRead):
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code != 0 {
			resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
			resp.ErrorCode = code
			return resp
		}
	case *kmsg.EndTxnRequest:
		if !cc.allowedTxnID(r.TransactionalID, aclOpWrite) {
			resp := r.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = idDenied
			return resp
		}
	case *kmsg.TxnOffsetCommitRequest:
		code := int16(0)
		switch {
		case !cc.allowedTxnID(r.TransactionalID, aclOpWrite):
			code = idDenied
		case !cc.allowedGroup(r.Group, aclOpRead):
			code = kerr.GroupAuthorizationFailed.Code
		}
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range r.Topics {
			tcode := code
			if tcode == 0 && !cc.allowedTopic(t.Topic, aclOpRead) {
				tcode = kerr.TopicAuthorizationFailed.Code
			}
			if tcode == 0 {
				continue
			}
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, tcode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if code == 0 && len(resp.Topics) == 0 {
			return nil
		}
		return resp
	}
	return nil
}

// txnOffsetCommitAuthorized serves a TxnOffsetCommit that refuseTxn
// answered as refused: refused in full stays so; otherwise the allowed
// topics are committed through the handler and the refused ones answered
// beside them.
func (cc *conn) txnOffsetCommitAuthorized(h header, req *kmsg.TxnOffsetCommitRequest, refused kmsg.Response) (kmsg.Response, error) {
	no := refused.(*kmsg.TxnOffsetCommitResponse)
	if len(no.Topics) == len(req.Topics) || !cc.allowedTxnID(req.TransactionalID, aclOpWrite) || !cc.allowedGroup(req.Group, aclOpRead) {
		return no, nil
	}
	skip := map[string]bool{}
	for _, t := range no.Topics {
		skip[t.Topic] = true
	}
	sub := *req
	sub.Topics = nil
	for _, t := range req.Topics {
		if !skip[t.Topic] {
			sub.Topics = append(sub.Topics, t)
		}
	}
	got, err := cc.handleTxnOffsetCommit(h, &sub)
	if err != nil {
		return nil, err
	}
	resp := got.(*kmsg.TxnOffsetCommitResponse)
	resp.Topics = append(resp.Topics, no.Topics...)
	return resp, nil
}

// describeTxnsAuthorized answers the ids the principal may not describe
// with TRANSACTIONAL_ID_AUTHORIZATION_FAILED and asks the coordinator
// about the rest.
func (cc *conn) describeTxnsAuthorized(req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	if cc.b.c.authz == nil {
		return cc.b.c.txn.Handle(cc.ctx, req)
	}
	var allowed, refused []string
	for _, id := range req.TransactionalIDs {
		if cc.allowedTxnID(id, aclOpDescribe) {
			allowed = append(allowed, id)
		} else {
			refused = append(refused, id)
		}
	}
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	if len(allowed) > 0 {
		sub := *req
		sub.TransactionalIDs = allowed
		got, err := cc.b.c.txn.Handle(cc.ctx, &sub)
		if err != nil {
			return nil, err
		}
		resp = got.(*kmsg.DescribeTransactionsResponse)
	}
	for _, id := range refused {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

// filterTxnList keeps the transactional ids the principal may describe.
func (cc *conn) filterTxnList(resp kmsg.Response, err error) (kmsg.Response, error) {
	if err != nil || cc.b.c.authz == nil {
		return resp, err
	}
	lr := resp.(*kmsg.ListTransactionsResponse)
	kept := lr.TransactionStates[:0]
	for _, ts := range lr.TransactionStates {
		if cc.allowedTxnID(ts.TransactionalID, aclOpDescribe) {
			kept = append(kept, ts)
		}
	}
	lr.TransactionStates = kept
	return lr, nil
}
