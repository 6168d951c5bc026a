package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// planClusters starts a source cluster (east) and a destination cluster
// (west) with known topics.
func planClusters(t *testing.T) (east, west []string) {
	t.Helper()
	src, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.ClusterID("plan-east"),
		kfake.SeedTopics(3, "demo.a"), kfake.SeedTopics(2, "demo.b"), kfake.SeedTopics(4, "demo.c"),
		kfake.SeedTopics(1, "other"), kfake.SeedTopics(1, "demo.skip"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	dst, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("plan-west"),
		kfake.SeedTopics(3, "demo.a"), kfake.SeedTopics(2, "demo.c"), kfake.SeedTopics(1, "__strait_checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dst.Close)
	return src.ListenAddrs(), dst.ListenAddrs()
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "strait.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr is an address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestPlan(t *testing.T) {
	east, west := planClusters(t)
	t.Setenv("PLAN_EAST", strings.Join(east, ","))
	t.Setenv("PLAN_WEST", west[0])
	cfg, err := Load(writeConfig(t, `
clusters:
  east: {bootstrap: ["${PLAN_EAST}"]}
  west: {bootstrap: ["${PLAN_WEST}"]}
pipelines:
  - name: demo
    source: east
    destination: west
    topics: {include: ["demo\\..*"], exclude: ["demo\\.skip"]}
  - name: other
    source: east
    destination: west
    topics: {include: ["other"]}
    rename: "east.{topic}"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Plan(context.Background(), cfg, 5*time.Second)
	if !r.OK() {
		t.Fatalf("plan not OK: %+v", r)
	}
	for _, c := range r.Clusters {
		if !c.Reachable {
			t.Errorf("cluster %s unreachable: %s", c.Name, c.Error)
		}
	}
	if len(r.Pipelines) != 2 {
		t.Fatalf("pipelines: %+v", r.Pipelines)
	}
	want := []TopicPlan{
		{Source: "demo.a", Partitions: 3, Destination: "demo.a", State: DestExists, DestPartitions: 3},
		{Source: "demo.b", Partitions: 2, Destination: "demo.b", State: DestCreate},
		{Source: "demo.c", Partitions: 4, Destination: "demo.c", State: DestMismatch, DestPartitions: 2, Note: "sync.partitions will add 2 partitions"},
	}
	got := r.Pipelines[0].Topics
	if len(got) != len(want) {
		t.Fatalf("demo topics: %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("topic %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if o := r.Pipelines[1].Topics; len(o) != 1 || o[0].Destination != "east.other" || o[0].State != DestCreate || o[0].Partitions != 1 {
		t.Errorf("other: %+v", o)
	}
	if !strings.Contains(r.Pipelines[0].Checkpoints, "__strait_checkpoints on west exists") {
		t.Errorf("checkpoints: %s", r.Pipelines[0].Checkpoints)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"pipeline demo (east -> west, batch mode)",
		"demo.b        2           demo.b             will be created with 2 partitions",
		"3 topics, 9 partitions: 1 exist, 1 to create, 1 partition mismatch",
	} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("text output lacks %q:\n%s", line, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back PlanReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Pipelines) != 2 || back.Pipelines[0].Topics[2].State != DestMismatch {
		t.Errorf("json: %v\n%s", err, js.String())
	}
}

// TestPlanUnreachable: a cluster nobody listens on is reported as
// unreachable, with the reason, and the rest of the plan still runs.
func TestPlanUnreachable(t *testing.T) {
	east, _ := planClusters(t)
	dead := freeAddr(t)
	cfg, err := Load(writeConfig(t, `
clusters:
  east: {bootstrap: ["`+east[0]+`"]}
  west:
    bootstrap: ["`+dead+`"]
    sasl: {mechanism: PLAIN, username: u, password: plan-s3cret}
pipelines:
  - name: demo
    source: east
    destination: west
    topics: {include: ["demo\\.a"]}
  - name: back
    source: west
    destination: east
    topics: {include: ["x"]}
    rename: "west.{topic}"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Plan(context.Background(), cfg, 2*time.Second)
	if r.OK() {
		t.Fatal("plan with an unreachable cluster is OK")
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"west  " + dead + "  UNREACHABLE: ",
		"connection refused",
		"demo.a        3           demo.a             unknown (destination unreachable)",
		`source cluster "west" unreachable; topics unknown`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	_ = r.WriteJSON(&js)
	if strings.Contains(out+js.String(), "plan-s3cret") {
		t.Errorf("the password leaked into the plan")
	}
}

// TestPlanProblems: collisions and loops that only real topic names reveal
// are reported as problems.
func TestPlanProblems(t *testing.T) {
	east, west := planClusters(t)
	_, err := Load(writeConfig(t, `
clusters:
  east: {bootstrap: ["`+east[0]+`"]}
  west: {bootstrap: ["`+west[0]+`"]}
pipelines:
  - name: up
    source: east
    destination: west
    topics: {include: ["demo\\.[a-b]"]}
  - name: down
    source: west
    destination: east
    topics: {include: ["demo\\.[ac]"]}
`))
	if err == nil {
		// The samples of [a-b] and [ac] are "demo.a" for both, so the
		// loader already sees this loop.
		t.Fatalf("loop not caught at load")
	}
	// With loop protection the configuration loads and the plan is clean.
	cfg, err := Load(writeConfig(t, `
clusters:
  east: {bootstrap: ["`+east[0]+`"]}
  west: {bootstrap: ["`+west[0]+`"]}
pipelines:
  - {name: up, source: east, destination: west, topics: {include: ["demo\\.[a-b]"]}, loop_protection: true}
  - {name: down, source: west, destination: east, topics: {include: ["demo\\.[ac]"]}, loop_protection: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := Plan(context.Background(), cfg, 5*time.Second); !r.OK() || len(r.Pipelines[1].Topics) != 2 {
		t.Fatalf("protected loop: %+v", r)
	}
	// Hand-built: a loop the samples miss, caught on the real topic demo.c.
	cfg.Pipelines[0].LoopProtection = false
	cfg.Pipelines[1].LoopProtection = false
	cfg.Pipelines[0].Topics.Include = []string{"demo\\.(b|c)"}
	cfg.Pipelines[1].Topics.Include = []string{"demo\\.c"}
	for _, p := range cfg.Pipelines {
		if err := p.Compile(); err != nil {
			t.Fatal(err)
		}
	}
	r := Plan(context.Background(), cfg, 5*time.Second)
	if r.OK() || len(r.Problems) == 0 || !strings.Contains(strings.Join(r.Problems, "\n"), `topic "demo.c"`) {
		t.Fatalf("problems: %q", r.Problems)
	}
}
