package pipelines

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// startBrokerd starts an embedded strait cluster with the given topics
// (name -> partitions).
func startBrokerd(t *testing.T, brokers int, topics map[string]int32) []string {
	t.Helper()
	ctx := context.Background()
	c, err := brokerd.Start(ctx, brokerd.Config{Dir: t.TempDir(), Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for name, n := range topics {
		resp, err := adm.CreateTopic(ctx, n, 1, nil, name)
		if err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
	}
	return c.Addrs()
}

// TestPlanBrokerd runs the plan against two embedded brokerd clusters, as
// `strait plan` sees two `strait broker` clusters.
func TestPlanBrokerd(t *testing.T) {
	east := startBrokerd(t, 3, map[string]int32{"orders.eu": 3, "orders.us": 6, "payments": 2, "audit": 1})
	west := startBrokerd(t, 2, map[string]int32{"orders.eu": 3, "payments": 1})
	cfg, err := Load(writeConfig(t, `
clusters:
  east: {bootstrap: ["`+strings.Join(east, ",")+`"]}
  west: {bootstrap: ["`+west[0]+`"]}
pipelines:
  - name: east-to-west
    source: east
    destination: west
    topics: {include: ["orders\\..*", "payments"]}
  - name: audit
    source: east
    destination: west
    topics: {include: ["audit"]}
    rename: "{source}.{topic}"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Plan(context.Background(), cfg, 5*time.Second)
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("plan not OK:\n%s", out.String())
	}
	want := []TopicPlan{
		{Source: "orders.eu", Partitions: 3, Destination: "orders.eu", State: DestExists, DestPartitions: 3},
		{Source: "orders.us", Partitions: 6, Destination: "orders.us", State: DestCreate},
		{Source: "payments", Partitions: 2, Destination: "payments", State: DestMismatch, DestPartitions: 1, Note: "sync.partitions will add 1 partition"},
	}
	got := r.Pipelines[0].Topics
	if len(got) != len(want) {
		t.Fatalf("topics:\n%s", out.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("topic %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if a := r.Pipelines[1].Topics; len(a) != 1 || a[0].Destination != "east.audit" || a[0].State != DestCreate {
		t.Errorf("audit: %+v", a)
	}
	if !strings.Contains(out.String(), "orders.us     6           orders.us          will be created with 6 partitions") {
		t.Errorf("text:\n%s", out.String())
	}
}
