package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/drill"
)

// TestDemoBinary runs `strait demo --duration 10s` on the built binary
// from the repository root, as a new user would.
func TestDemoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	bin := binBuild(t)
	cmd := exec.Command(bin, "demo", "--duration", "10s", "--brokers", "1", "--rate", "1000")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"pipelines/examples/demo.yaml", "backlog", "Failover", "RPO", "RTO", "lost        0", "duplicates  0", "demo finished"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`each in (\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("demo output does not name its folder:\n%s", out)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("demo left its folder %s behind (%v)", m[1], err)
	}
}

// TestDrillBinary runs an embedded drill in each mode and checks its JSON
// report.
func TestDrillBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a drill")
	}
	bin := binBuild(t)
	for _, mode := range []string{"batch", "record"} {
		t.Run(mode, func(t *testing.T) {
			report := filepath.Join(t.TempDir(), "drill.json")
			cmd := exec.Command(bin, "drill", "--duration", "10s", "--rate", "500", "--mode", mode, "--json", report)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("drill: %v\n%s", err, out)
			}
			b, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				OK bool `json:"ok"`
				drill.Report
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if !r.OK || r.Lost != 0 || r.Duplicates != 0 || r.MirrorDuplicates != 0 || r.Corrupt != 0 || !r.TranslationExact {
				t.Fatalf("drill report: %s", b)
			}
			if r.Acked == 0 || r.Mirrored == 0 || r.ConsumedSource == 0 || len(r.Partitions) != 4 {
				t.Fatalf("drill did too little: %s", b)
			}
			if r.Mirrored+r.RPORecords < r.Acked {
				t.Fatalf("acked records neither mirrored nor counted in RPO: %s", b)
			}
		})
	}
}

// TestDrillConfigBinary drills a configured pipeline's clusters (two
// `strait broker` processes standing in for real ones) and checks that the
// drill cleaned up after itself.
func TestDrillConfigBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a drill")
	}
	bin := binBuild(t)
	east, west := binBroker(t, bin, t.TempDir()), binBroker(t, bin, t.TempDir())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "strait.yaml")
	body := fmt.Sprintf("clusters:\n  east: {bootstrap: [%q]}\n  west: {bootstrap: [%q]}\npipelines:\n  - name: prod\n    source: east\n    destination: west\n    topics: {include: [\"orders\\\\..*\"]}\n    rename: \"east.{topic}\"\n", east, west)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "drill.json")
	cmd := exec.Command(bin, "drill", "--config", cfg, "--pipeline", "prod", "--duration", "8s", "--rate", "300", "--partitions", "2", "--json", report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK    bool   `json:"ok"`
		Kind  string `json:"kind"`
		Topic string `json:"topic"`
		drill.Report
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Kind != "config" || r.Lost != 0 || r.Duplicates != 0 || !r.TranslationExact || r.Acked == 0 {
		t.Fatalf("drill report: %s", b)
	}
	if len(r.Partitions) == 0 || r.Partitions[0].DestTopic != "east."+r.Topic {
		t.Fatalf("the drill ignored the pipeline's rename: %s", b)
	}
	// Nothing of the drill is left on either cluster.
	for _, addr := range []string{east, west} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		topics, err := adm.ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range topics.Names() {
			if strings.Contains(n, "strait-drill") {
				t.Errorf("%s still has topic %s", addr, n)
			}
		}
		groups, err := adm.ListGroups(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups() {
			if strings.Contains(g, "strait-drill") {
				t.Errorf("%s still has group %s", addr, g)
			}
		}
		cl.Close()
	}
}
