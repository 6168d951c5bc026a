package brokerd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

var aclUsers = map[string]string{"admin": "a", "alice": "b", "bob": "c"}

func aclCluster(t *testing.T, dir, listen string) *Cluster {
	return startCluster(t, Config{Dir: dir, Listen: listen, Brokers: 2, SASLUsers: aclUsers, Authorizer: true, SuperUsers: []string{"User:admin"}})
}

func userClient(t *testing.T, c *Cluster, user string, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, c, append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: aclUsers[user]}.AsMechanism()), kgo.RetryTimeout(2 * time.Second)}, opts...)...)
}

func createACL(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create acl %v: %v", r, r.Err)
		}
	}
}

// TestACLsIsolateUsers: with the authorizer on, bob can neither see, read,
// write nor delete alice's topic; alice can; a DENY wins over an ALLOW;
// bindings survive a restart.
func TestACLsIsolateUsers(t *testing.T) {
	dir := t.TempDir()
	c := aclCluster(t, dir, "")
	ctx := context.Background()
	admin := kadm.NewClient(userClient(t, c, "admin"))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	createACL(t, admin, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
	createACL(t, admin, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("alice-").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))

	// alice writes and reads through a group.
	alice := userClient(t, c, "alice", kgo.DefaultProduceTopic("orders"), kgo.ConsumerGroup("alice-g"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice produce: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	fs := alice.PollRecords(pctx, 1)
	cancel()
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 {
		t.Fatalf("alice consume: %d records, %v", fs.NumRecords(), err)
	}
	if err := alice.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("alice commit: %v", err)
	}

	// bob: metadata hides the topic, or refuses it by name.
	bob := userClient(t, c, "bob", kgo.DefaultProduceTopic("orders"))
	bobAdm := kadm.NewClient(bob)
	md, err := bobAdm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["orders"]; ok {
		t.Fatal("bob's metadata lists orders")
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = strp("orders")
	req.Topics = append(req.Topics, rt)
	mresp, err := req.RequestWith(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if code := mresp.Topics[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob's metadata for orders: error %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	// ... cannot write ...
	if err := bob.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// ... cannot read ...
	freq := kmsg.NewPtrFetchRequest()
	freq.MaxWaitMillis, freq.MaxBytes = 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	leader := md.Brokers[0].NodeID
	fresp, err := freq.RequestWith(ctx, bob.Broker(int(leader)))
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob fetch: error %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	if n := len(fresp.Topics[0].Partitions[0].RecordBatches); n != 0 {
		t.Fatalf("bob fetch returned %d record bytes", n)
	}
	// ... cannot read alice's group offsets ...
	if _, err := bobAdm.FetchOffsets(ctx, "alice-g"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("bob offset fetch: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// ... cannot delete it ...
	dr, err := bobAdm.DeleteTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := dr["orders"].Err; !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob delete: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// ... nor manage ACLs.
	if res, err := bobAdm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("orders").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("bob create acl: %v %v, want CLUSTER_AUTHORIZATION_FAILED", res, err)
	}

	// A prefixed DENY of READ wins over alice's literal ALLOW ALL: she
	// can still write, no longer read.
	createACL(t, admin, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("ord").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))
	aliceRaw := userClient(t, c, "alice")
	fresp, err = freq.RequestWith(ctx, aliceRaw.Broker(int(leader)))
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice fetch after deny: error %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("w")}).FirstErr(); err != nil {
		t.Fatalf("alice produce after a read deny: %v", err)
	}

	// Restart: the bindings are still there, and still enforced.
	before := c.ACLs()
	if len(before) != 3 {
		t.Fatalf("%d bindings, want 3: %v", len(before), before)
	}
	addr := c.Addrs()[0]
	alice.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := aclCluster(t, dir, addr)
	described, err := kadm.NewClient(userClient(t, c2, "admin")).DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(described[0].Described); n != 3 || described[0].Err != nil {
		t.Fatalf("after restart: described %d bindings (%v), want 3", n, described[0].Err)
	}
	bob2 := kadm.NewClient(userClient(t, c2, "bob"))
	dr, err = bob2.DeleteTopics(ctx, "orders")
	if err != nil || !errors.Is(dr["orders"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob delete after restart: %v %v", dr, err)
	}

	// DeleteAcls removes what the filter matches.
	admin2 := kadm.NewClient(userClient(t, c2, "admin"))
	del, err := admin2.DeleteACLs(ctx, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("ord").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 1 {
		t.Fatalf("delete acls: %v %v", del, err)
	}
	if n := len(c2.ACLs()); n != 2 {
		t.Fatalf("%d bindings after delete, want 2", n)
	}
}

// TestAuthorizerOff: ACL requests answer SECURITY_DISABLED and nothing is
// checked.
func TestAuthorizerOff(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	adm := kadm.NewClient(newClient(t, c))
	res, err := adm.CreateACLs(context.Background(), kadm.NewACLs().Allow("User:a").AllowHosts().Topics("t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("create acl with the authorizer off: %v %v, want SECURITY_DISABLED", res, err)
	}
}

func TestAuthorizerRules(t *testing.T) {
	a := &authorizer{superUsers: map[string]bool{"User:root": true}}
	lit, pre := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	topic := kmsg.ACLResourceTypeTopic
	a.mu.bindings = []aclBinding{
		{topic, "orders", lit, "User:alice", "*", aclOpRead, allow},
		{topic, "pay", pre, "User:*", "*", aclOpWrite, allow},
		{topic, "pay-secret", lit, "User:carol", "*", kmsg.ACLOperationAll, deny},
		{topic, "*", lit, "User:dave", "10.0.0.1", aclOpDescribe, allow},
	}
	for _, tc := range []struct {
		principal, host, name string
		op                    kmsg.ACLOperation
		want                  bool
	}{
		{"User:alice", "h", "orders", aclOpRead, true},
		{"User:alice", "h", "orders", aclOpDescribe, true}, // READ implies DESCRIBE
		{"User:alice", "h", "orders", aclOpWrite, false},
		{"User:bob", "h", "orders", aclOpRead, false},
		{"User:bob", "h", "payments", aclOpWrite, true},      // prefixed, any user
		{"User:carol", "h", "pay-secret", aclOpWrite, false}, // DENY ALL wins
		{"User:carol", "h", "pay-other", aclOpWrite, true},
		{"User:dave", "10.0.0.1", "anything", aclOpDescribe, true},
		{"User:dave", "10.0.0.2", "anything", aclOpDescribe, false},
		{"User:root", "h", "orders", aclOpDelete, true}, // super user
	} {
		if got := a.allowed(tc.principal, tc.host, topic, tc.name, tc.op); got != tc.want {
			t.Errorf("%s@%s %s %s: %v, want %v", tc.principal, tc.host, tc.op, tc.name, got, tc.want)
		}
	}
	// No binding at all for a resource: allow.everyone.if.no.acl.found.
	if a.allowed("User:x", "h", kmsg.ACLResourceTypeGroup, "g", aclOpRead) {
		t.Error("no-ACL resource allowed by default")
	}
	a.allowIfNo = true
	if !a.allowed("User:x", "h", kmsg.ACLResourceTypeGroup, "g", aclOpRead) {
		t.Error("no-ACL resource refused with AllowEveryoneIfNoACL")
	}
}
