package brokerd

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnACLFixture is a SASL cluster with the authorizer on where alice may
// run transactions under the "alice-" ids on topic orders and group
// alice-g, and bob only under "bob-" ids, with no topic at all.
type txnACLFixture struct {
	c            *Cluster
	admin        *kadm.Client
	alice, bob   *kgo.Client
	aliceB, bobB *kgo.Broker // direct to one broker: no coordinator lookup in the way
}

func newTxnACLFixture(t *testing.T) *txnACLFixture {
	t.Helper()
	ctx := context.Background()
	c := aclCluster(t, t.TempDir(), "")
	f := &txnACLFixture{c: c, admin: kadm.NewClient(userClient(t, c, "admin"))}
	for _, topic := range []string{"orders", "secret"} {
		if _, err := f.admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	lit, pre := kadm.ACLPatternLiteral, kadm.ACLPatternPrefixed
	createACL(t, f.admin, kadm.NewACLs().Allow("User:alice").AllowHosts().TransactionalIDs("alice-").Operations(kadm.OpWrite).ResourcePatternType(pre))
	createACL(t, f.admin, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpAll).ResourcePatternType(lit))
	createACL(t, f.admin, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("alice-g").Operations(kadm.OpRead).ResourcePatternType(lit))
	createACL(t, f.admin, kadm.NewACLs().Allow("User:bob").AllowHosts().TransactionalIDs("bob-").Operations(kadm.OpWrite).ResourcePatternType(pre))
	// secret and the group bob-g have bindings, none for alice.
	createACL(t, f.admin, kadm.NewACLs().Allow("User:admin").AllowHosts().Topics("secret").Groups("bob-g").Operations(kadm.OpAll).ResourcePatternType(lit))
	f.alice, f.bob = userClient(t, c, "alice"), userClient(t, c, "bob")
	md, err := kadm.NewClient(f.alice).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(f.bob).BrokerMetadata(ctx); err != nil {
		t.Fatal(err)
	}
	id := int(md.Brokers[0].NodeID)
	f.aliceB, f.bobB = f.alice.Broker(id), f.bob.Broker(id)
	return f
}

// initTxn gets a producer id and epoch for a transactional id.
func initTxn(t *testing.T, b *kgo.Broker, id string) (*kmsg.InitProducerIDResponse, error) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(context.Background(), b)
	if err != nil {
		return nil, err
	}
	return resp, kerr.ErrorForCode(resp.ErrorCode)
}

func addPartitions(b *kgo.Broker, id string, pid int64, epoch int16, topics ...string) (map[string]int16, error) {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	for _, tp := range topics {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tp, []int32{0}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(context.Background(), b)
	if err != nil {
		return nil, err
	}
	codes := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes[rt.Topic] = rp.ErrorCode
		}
	}
	return codes, nil
}

// TestTxnACLsClients: franz-go's transactional producer as alice commits
// under her id; as bob, under alice's id, it is refused; a read_committed
// consumer sees only alice's record.
func TestTxnACLsClients(t *testing.T) {
	f := newTxnACLFixture(t)
	ctx := context.Background()

	alice := userClient(t, f.c, "alice", kgo.TransactionalID("alice-tx"), kgo.DefaultProduceTopic("orders"))
	if err := alice.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("from-alice")}).FirstErr(); err != nil {
		t.Fatalf("alice transactional produce: %v", err)
	}
	if err := alice.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("alice commit: %v", err)
	}

	bob := userClient(t, f.c, "bob", kgo.TransactionalID("alice-tx"), kgo.DefaultProduceTopic("orders"))
	// franz-go initializes the producer id at the start of a transaction
	// or at the first produce, depending on timing.
	err := bob.BeginTransaction()
	if err == nil {
		err = bob.ProduceSync(ctx, &kgo.Record{Value: []byte("from-bob")}).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("bob producing under alice's transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}

	// Under his own id bob still may not write alice's topic.
	bobOwn := userClient(t, f.c, "bob", kgo.TransactionalID("bob-tx"), kgo.DefaultProduceTopic("orders"))
	if err := bobOwn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	err = bobOwn.ProduceSync(ctx, &kgo.Record{Value: []byte("from-bob")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob producing to orders under his id: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	cons := userClient(t, f.c, "alice", kgo.ConsumeTopics("orders"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	waitFor(t, 10*time.Second, "alice's committed record", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		return len(got) > 0
	})
	if !slices.Equal(got, []string{"from-alice"}) {
		t.Fatalf("read_committed on orders: %q, want only alice's record", got)
	}
}

// TestTxnACLsRequests checks every transaction request against Kafka's
// rules, request by request, straight to a broker.
func TestTxnACLsRequests(t *testing.T) {
	f := newTxnACLFixture(t)
	ctx := context.Background()

	// InitProducerId with a transactional id: WRITE on it.
	if _, err := initTxn(t, f.bobB, "alice-tx"); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("bob InitProducerId(alice-tx): %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
	ip, err := initTxn(t, f.aliceB, "alice-tx")
	if err != nil {
		t.Fatalf("alice InitProducerId(alice-tx): %v", err)
	}
	pid, epoch := ip.ProducerID, ip.ProducerEpoch
	if _, err := initTxn(t, f.bobB, "bob-tx"); err != nil {
		t.Fatalf("bob InitProducerId(bob-tx): %v", err)
	}

	// FindCoordinator for a transactional id: DESCRIBE on it.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey, fc.CoordinatorKeys = txnCoordinatorKey, "alice-tx", []string{"alice-tx"}
	for _, tc := range []struct {
		b    *kgo.Broker
		want int16
	}{{f.aliceB, 0}, {f.bobB, kerr.TransactionalIDAuthorizationFailed.Code}} {
		resp, err := fc.RequestWith(ctx, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		code := resp.ErrorCode
		if len(resp.Coordinators) == 1 { // v4+
			code = resp.Coordinators[0].ErrorCode
		}
		if code != tc.want {
			t.Fatalf("FindCoordinator(alice-tx): error %d, want %d", code, tc.want)
		}
	}

	// AddPartitionsToTxn: all or nothing; a topic without WRITE refuses
	// the request.
	codes, err := addPartitions(f.aliceB, "alice-tx", pid, epoch, "orders", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if codes["secret"] != kerr.TopicAuthorizationFailed.Code || codes["orders"] != kerr.OperationNotAttempted.Code {
		t.Fatalf("alice add orders+secret: %v, want secret TOPIC_AUTHORIZATION_FAILED, orders OPERATION_NOT_ATTEMPTED", codes)
	}
	if codes, err = addPartitions(f.bobB, "alice-tx", pid, epoch, "orders"); err != nil || codes["orders"] != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob add to alice-tx: %v %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", codes, err)
	}
	if codes, err = addPartitions(f.aliceB, "alice-tx", pid, epoch, "orders"); err != nil || codes["orders"] != 0 {
		t.Fatalf("alice add orders: %v %v", codes, err)
	}

	// AddOffsetsToTxn: WRITE on the id, READ on the group.
	addOffsets := func(b *kgo.Broker, id, group string) int16 {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := addOffsets(f.aliceB, "alice-tx", "bob-g"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice AddOffsetsToTxn(bob-g): %d, want GROUP_AUTHORIZATION_FAILED", code)
	}
	if code := addOffsets(f.bobB, "alice-tx", "alice-g"); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob AddOffsetsToTxn(alice-tx): %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", code)
	}
	if code := addOffsets(f.aliceB, "alice-tx", "alice-g"); code != 0 {
		t.Fatalf("alice AddOffsetsToTxn(alice-g): %d", code)
	}

	// TxnOffsetCommit: the topics alice may read are committed, secret
	// is refused beside them; bob is refused in full.
	txnCommit := func(b *kgo.Broker, group string, topics ...string) map[string]int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = "alice-tx", pid, epoch, group
		for _, tp := range topics {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = tp
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Offset = 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int16{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rt.Topic] = rp.ErrorCode
			}
		}
		return out
	}
	if got := txnCommit(f.bobB, "alice-g", "orders"); got["orders"] != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob TxnOffsetCommit: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", got)
	}
	if got := txnCommit(f.aliceB, "bob-g", "orders"); got["orders"] != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice TxnOffsetCommit to bob-g: %v, want GROUP_AUTHORIZATION_FAILED", got)
	}
	if got := txnCommit(f.aliceB, "alice-g", "orders", "secret"); len(got) != 2 || got["orders"] != 0 || got["secret"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice TxnOffsetCommit orders+secret: %v, want orders 0, secret TOPIC_AUTHORIZATION_FAILED", got)
	}

	// DescribeTransactions: per id; ListTransactions: only described ids.
	describe := func(b *kgo.Broker) map[string]kmsg.DescribeTransactionsResponseTransactionState {
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = []string{"alice-tx", "bob-tx"}
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]kmsg.DescribeTransactionsResponseTransactionState{}
		for _, st := range resp.TransactionStates {
			out[st.TransactionalID] = st
		}
		return out
	}
	if d := describe(f.bobB); d["alice-tx"].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || d["bob-tx"].ErrorCode != 0 {
		t.Fatalf("bob describes alice-tx %d, bob-tx %d; want TRANSACTIONAL_ID_AUTHORIZATION_FAILED and 0", d["alice-tx"].ErrorCode, d["bob-tx"].ErrorCode)
	}
	if d := describe(f.aliceB); d["alice-tx"].ErrorCode != 0 || d["alice-tx"].State != kmsg.TransactionStateOngoing.String() {
		t.Fatalf("alice describes alice-tx: error %d, state %q", d["alice-tx"].ErrorCode, d["alice-tx"].State)
	}
	list := func(b *kgo.Broker) []string {
		resp, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ts := range resp.TransactionStates {
			ids = append(ids, ts.TransactionalID)
		}
		return ids
	}
	if ids := list(f.bobB); !slices.Equal(ids, []string{"bob-tx"}) {
		t.Fatalf("bob lists %v, want only bob-tx", ids)
	}
	if ids := list(f.aliceB); !slices.Equal(ids, []string{"alice-tx"}) {
		t.Fatalf("alice lists %v, want only alice-tx", ids)
	}

	// EndTxn: bob cannot end alice's transaction; alice commits it, and
	// the group offset committed in it becomes visible.
	endTxn := func(b *kgo.Broker) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "alice-tx", pid, epoch, true
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := endTxn(f.bobB); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob EndTxn(alice-tx): %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", code)
	}
	if d := describe(f.aliceB); d["alice-tx"].State != kmsg.TransactionStateOngoing.String() {
		t.Fatalf("after bob's EndTxn alice-tx is %q, want Ongoing", d["alice-tx"].State)
	}
	if code := endTxn(f.aliceB); code != 0 {
		t.Fatalf("alice EndTxn: %d", code)
	}
	offs, err := f.admin.FetchOffsets(ctx, "alice-g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("orders", 0); !ok || o.At != 1 {
		t.Fatalf("alice-g offset on orders after commit: %+v %v, want 1", o, ok)
	}
	if _, ok := offs.Lookup("secret", 0); ok {
		t.Fatal("alice-g has an offset on secret, which alice may not read")
	}
}

// TestTxnACLsIdempotent: an idempotent producer id needs IDEMPOTENT_WRITE on
// the cluster or WRITE on some topic (Kafka ≥ 2.8).
func TestTxnACLsIdempotent(t *testing.T) {
	f := newTxnACLFixture(t)
	ctx := context.Background()
	idempotent := func(b *kgo.Broker) int16 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := idempotent(f.aliceB); code != 0 {
		t.Fatalf("alice (WRITE on orders) idempotent InitProducerId: %d", code)
	}
	if code := idempotent(f.bobB); code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("bob (no topic WRITE) idempotent InitProducerId: %d, want CLUSTER_AUTHORIZATION_FAILED", code)
	}
	createACL(t, f.admin, kadm.NewACLs().Allow("User:bob").AllowHosts().Clusters().Operations(kadm.OpIdempotentWrite))
	if code := idempotent(f.bobB); code != 0 {
		t.Fatalf("bob with IDEMPOTENT_WRITE on the cluster: %d", code)
	}
}
