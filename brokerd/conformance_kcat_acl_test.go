package brokerd_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"strait/brokerd"
)

// TestConformanceKcatACLs: with SASL and the authorizer on, kcat
// (librdkafka) logs in as a real user, with PLAIN and with SCRAM-SHA-256:
// alice produces to and consumes her topic; bob, authenticated but with no
// ACL on it, is refused both. No allow.everyone.if.no.acl.found: every
// grant is an ACL.
func TestConformanceKcatACLs(t *testing.T) {
	kcat := kcatPath(t)
	users := map[string]string{"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1,
		SASLUsers: users, Authorizer: true, SuperUsers: []string{"User:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	admin := confClient(t, c.Addrs(), kgo.SASL(plain.Auth{User: "admin", Pass: users["admin"]}.AsMechanism()))
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("admin-record")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").
		Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create acl: %v", r.Err)
		}
	}

	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256"} {
		t.Run(mech, func(t *testing.T) {
			run := func(user, stdin string, args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				base := []string{"-b", c.Addrs()[0],
					"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
					"-X", "sasl.username=" + user, "-X", "sasl.password=" + users[user]}
				cmd := exec.CommandContext(ctx, kcat, append(base, args...)...)
				cmd.Stdin = strings.NewReader(stdin)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			aliceValue := "alice-" + mech
			if out, err := run("alice", aliceValue+"\n", "-P", "-t", "orders"); err != nil {
				t.Fatalf("alice kcat -P orders: %v\n%s", err, out)
			}
			out, err := run("alice", "", "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
			if err != nil || !strings.Contains(out, "admin-record") || !strings.Contains(out, aliceValue) {
				t.Fatalf("alice kcat -C orders: %v\n%s", err, out)
			}

			out, err = run("bob", "", "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
			if err == nil || strings.Contains(out, "admin-record") || !strings.Contains(strings.ToLower(out), "authorization failed") {
				t.Fatalf("bob kcat -C orders: %v\n%s", err, out)
			}
			out, err = run("bob", "bob-"+mech+"\n", "-P", "-t", "orders")
			if err == nil || !strings.Contains(strings.ToLower(out), "authorization failed") {
				t.Fatalf("bob kcat -P orders: %v\n%s", err, out)
			}
			// A wrong password is an authentication failure, not an
			// anonymous session.
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcat, "-b", c.Addrs()[0], "-X", "security.protocol=SASL_PLAINTEXT",
				"-X", "sasl.mechanisms="+mech, "-X", "sasl.username=alice", "-X", "sasl.password=wrong", "-L", "-m", "5")
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(strings.ToLower(string(out)), "authentication") {
				t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
			}
		})
	}

	// Nothing of bob's reached the topic.
	recs := consumeAll(t, admin, "orders")
	if len(recs) != 3 {
		t.Fatalf("orders holds %d records, want admin's and alice's two: %q", len(recs), recs)
	}
	for _, v := range recs {
		if strings.HasPrefix(v, "bob-") {
			t.Fatalf("bob's record %q reached orders", v)
		}
	}
}

// consumeAll reads topic from the start up to its current end.
func consumeAll(t *testing.T, cl *kgo.Client, topic string) []string {
	t.Helper()
	ctx := context.Background()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cl.AddConsumeTopics(topic)
	var got []string
	confWait(t, 30*time.Second, "records of "+topic, func() error {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if int64(len(got)) < want {
			return fmt.Errorf("have %d of %d", len(got), want)
		}
		return nil
	})
	return got
}
