package brokerd

// DescribeTransactions (key 65), version 0.
//
// Per transactional id: state (kmsg.TransactionState names), timeout,
// start time of the open transaction (-1 when none), producer id and epoch
// and the partitions of the open transaction. An unknown id gets
// TRANSACTIONAL_ID_NOT_FOUND; with the authorizer on, one
// without DESCRIBE gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

import "github.com/twmb/franz-go/pkg/kmsg"

func (cc *conn) handleDescribeTransactions(req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	return cc.describeTxnsAuthorized(req)
}
