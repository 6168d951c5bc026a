package brokerd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestACLBindingsLimit: with MaxACLBindings 5, a CreateAcls whose new
// bindings would take the count over 5 stores none of them and answers
// POLICY_VIOLATION for each; bindings already held still create (nothing
// new), deleting one makes room again, and the count survives a restart.
func TestACLBindingsLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Brokers: 1, SASLUsers: aclUsers, Authorizer: true, SuperUsers: []string{"User:admin"},
		Limits: Limits{MaxACLBindings: 5}}
	c := startCluster(t, cfg)
	ctx := context.Background()
	admin := kadm.NewClient(userClient(t, c, "admin"))
	topics := func(names ...string) *kadm.ACLBuilder {
		return kadm.NewACLs().Allow("User:alice").AllowHosts().Topics(names...).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	}
	createACL(t, admin, topics("t0", "t1", "t2", "t3", "t4"))
	if n := len(c.ACLs()); n != 5 {
		t.Fatalf("%d bindings after creating 5, want 5", n)
	}

	// Two more: both refused, none stored.
	res, err := admin.CreateACLs(ctx, topics("t5", "t6"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	for _, r := range res {
		if !errors.Is(r.Err, kerr.PolicyViolation) {
			t.Errorf("create %s over the limit: err %v (%s), want POLICY_VIOLATION", r.Name, r.Err, r.ErrMessage)
		}
	}
	if n := len(c.ACLs()); n != 5 {
		t.Fatalf("%d bindings after a refused create, want 5", n)
	}

	// A new one alongside ones already held: all refused together.
	res, err = admin.CreateACLs(ctx, topics("t0", "t7"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, kerr.PolicyViolation) {
			t.Errorf("create %s with a new binding over the limit: err %v, want POLICY_VIOLATION", r.Name, r.Err)
		}
	}

	// Bindings already held add nothing, so they are accepted at the limit.
	createACL(t, admin, topics("t0", "t4"))
	if n := len(c.ACLs()); n != 5 {
		t.Fatalf("%d bindings after re-creating held ones, want 5", n)
	}

	// Deleting one makes room for one.
	if _, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("t0").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
		t.Fatal(err)
	}
	createACL(t, admin, topics("t5"))
	got := map[string]bool{}
	for _, b := range c.ACLs() {
		got[b.ResourceName] = true
	}
	if want := "map[t1:true t2:true t3:true t4:true t5:true]"; fmt.Sprint(got) != want {
		t.Fatalf("bindings %v, want %s", got, want)
	}

	// Restarted, the limit still holds.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startCluster(t, cfg)
	admin = kadm.NewClient(userClient(t, c, "admin"))
	res, err = admin.CreateACLs(ctx, topics("t6"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !errors.Is(res[0].Err, kerr.PolicyViolation) {
		t.Fatalf("create over the limit after restart: %+v, want POLICY_VIOLATION", res)
	}
	if n := len(c.ACLs()); n != 5 {
		t.Fatalf("%d bindings after restart, want 5", n)
	}
}
