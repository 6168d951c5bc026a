package mirror

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd"
	"strait/pipelines"
)

// aclClusters are two clusters with the authorizer on; the mirror and the
// test connect without SASL, as User:ANONYMOUS, a super user.
func aclClusters(t *testing.T) (src, dst *brokerd.Cluster) {
	t.Helper()
	start := func() *brokerd.Cluster {
		c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1,
			Authorizer: true, SuperUsers: []string{"User:ANONYMOUS"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return start(), start()
}

func hasACL(c *brokerd.Cluster, b brokerd.ACLBinding) bool {
	for _, a := range c.ACLs() {
		if a == b {
			return true
		}
	}
	return false
}

func TestSyncACLs(t *testing.T) {
	src, dst := aclClusters(t)
	ctx := context.Background()
	scl := client(t, src.Addrs())
	sadm := kadm.NewClient(scl)
	dadm := kadm.NewClient(client(t, dst.Addrs()))
	createTopic(t, scl, "orders", 1, nil)
	createTopic(t, scl, "other", 1, nil)
	create := func(adm *kadm.Client, b *kadm.ACLBuilder) {
		t.Helper()
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	lit, pre := kadm.ACLPatternLiteral, kadm.ACLPatternPrefixed
	aliceRead := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpRead).ResourcePatternType(lit)
	create(sadm, aliceRead)
	create(sadm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpWrite).ResourcePatternType(lit))
	create(sadm, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("orders").Operations(kadm.OpAll).ResourcePatternType(lit))
	create(sadm, kadm.NewACLs().Deny("User:eve").DenyHosts().Topics("ord").Operations(kadm.OpRead).ResourcePatternType(pre))
	create(sadm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("other").Operations(kadm.OpRead).ResourcePatternType(lit))
	create(sadm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("billing-1").Operations(kadm.OpRead).ResourcePatternType(lit))
	// One binding the destination's operators made themselves.
	create(dadm, kadm.NewACLs().Allow("User:ops").AllowHosts().Topics("east.orders").Operations(kadm.OpDescribe).ResourcePatternType(lit))

	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "orders")
	p := cfg.Pipelines[0]
	p.Rename = "east.{topic}"
	p.Sync.ACLs = true
	p.Sync.Groups = []string{"billing-.*"}
	p.Sync.Interval = pipelines.Duration(200 * time.Millisecond)
	e, _ := runEngine(t, cfg, Options{})

	topic, group := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	read, describe := kmsg.ACLOperationRead, kmsg.ACLOperationDescribe
	lit3, pre4 := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	want := []brokerd.ACLBinding{
		{ResourceType: topic, ResourceName: "east.orders", PatternType: lit3, Principal: "User:alice", Host: "*", Operation: read, Permission: allow},
		{ResourceType: topic, ResourceName: "east.orders", PatternType: lit3, Principal: "User:bob", Host: "*", Operation: read, Permission: allow}, // ALL narrowed
		{ResourceType: topic, ResourceName: "east.ord", PatternType: pre4, Principal: "User:eve", Host: "*", Operation: read, Permission: deny},
		{ResourceType: group, ResourceName: "billing-1", PatternType: lit3, Principal: "User:alice", Host: "*", Operation: read, Permission: allow},
		{ResourceType: topic, ResourceName: "east.orders", PatternType: lit3, Principal: "User:ops", Host: "*", Operation: describe, Permission: allow},
	}
	waitFor(t, 20*time.Second, "acls copied", func() bool {
		for _, b := range want {
			if !hasACL(dst, b) {
				return false
			}
		}
		return true
	})
	if n := len(dst.ACLs()); n != len(want) {
		t.Fatalf("destination holds %d bindings, want %d: %v", n, len(want), dst.ACLs())
	}
	st := e.Status()[0].ACLs
	if st == nil || len(st.Skipped) != 1 || !strings.Contains(st.Skipped[0], "ALLOW WRITE") || len(st.Narrowed) != 1 || !strings.Contains(st.Narrowed[0], "User:bob") {
		t.Fatalf("status %+v: want the WRITE binding skipped and bob's ALL narrowed", st)
	}

	// Incremental: a binding removed at the source goes from the
	// destination; the operators' own binding stays.
	if _, err := sadm.DeleteACLs(ctx, aliceRead); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "acl removed", func() bool { return !hasACL(dst, want[0]) })
	if !hasACL(dst, want[4]) {
		t.Fatal("the destination's own binding was deleted")
	}
}

func TestRenamePrefix(t *testing.T) {
	for _, tc := range []struct {
		rename, prefix string
		ok             bool
	}{
		{"{topic}", "", true},
		{"east.{topic}", "east.", true},
		{"{topic}.copy", "", false},
		{"{topic}-{topic}", "", false},
	} {
		p := &pipelines.Pipeline{Rename: tc.rename, Source: "east"}
		got, ok := p.RenamePrefix()
		if got != tc.prefix || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.rename, got, ok, tc.prefix, tc.ok)
		}
	}
}
