package brokerd

// ListTransactions (key 66), versions 0–1.
//
// Lists transactional ids with their producer id and state, filtered by
// state names and producer ids, and from v1 by duration (only transactions
// open for longer). Unknown state filters are echoed back. With the authorizer on, only the ids the principal may DESCRIBE
// are listed.
//
// Not supported: v2's transactional id pattern (not advertised).

import "github.com/twmb/franz-go/pkg/kmsg"

func (cc *conn) handleListTransactions(req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	return cc.filterTxnList(cc.b.c.txn.Handle(cc.ctx, req))
}
