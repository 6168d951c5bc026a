package brokerd_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// TestConformanceKcatACLs: with the authorizer on, kcat (librdkafka) can
// neither read nor write a topic whose ACLs leave it out, and reads one it
// may read. kcat connects without SASL (librdkafka's PLAIN needs
// SaslHandshake v0), so it is User:ANONYMOUS; allow.everyone.if.no.acl.found
// lets the test's own admin client (also anonymous) set things up, as a
// cluster that is adopting ACLs topic by topic would.
func TestConformanceKcatACLs(t *testing.T) {
	kcat := kcatPath(t)
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1,
		Authorizer: true, AllowEveryoneIfNoACL: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	admin := confClient(t, c.Addrs())
	adm := kadm.NewClient(admin)
	for _, topic := range []string{"orders", "public"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(topic + "-record")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// From now on only alice may read orders.
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || res[0].Err != nil {
		t.Fatalf("create acl: %v %v", res, err)
	}
	run := func(stdin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", c.Addrs()[0]}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("", "-C", "-t", "public", "-o", "beginning", "-e", "-q")
	if err != nil || !strings.Contains(out, "public-record") {
		t.Fatalf("kcat -C public: %v\n%s", err, out)
	}
	out, err = run("", "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
	if err == nil || strings.Contains(out, "orders-record") || !strings.Contains(strings.ToLower(out), "authorization failed") {
		t.Fatalf("kcat -C orders: %v\n%s", err, out)
	}
	out, err = run("x\n", "-P", "-t", "orders")
	if err == nil || !strings.Contains(strings.ToLower(out), "authorization failed") {
		t.Fatalf("kcat -P orders: %v\n%s", err, out)
	}
}
