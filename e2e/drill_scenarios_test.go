package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"strait/drill"
)

// TestDrillMirrorCrashBinary runs `strait drill --scenario mirror-crash`
// on the built binary: the drill starts its own executable as the
// `strait mirror` it kills, as it does for a user.
func TestDrillMirrorCrashBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a drill")
	}
	bin := binBuild(t)
	report := filepath.Join(t.TempDir(), "drill.json")
	cmd := exec.Command(bin, "drill", "--scenario", "mirror-crash", "--json", report)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "drill passed") {
		t.Fatalf("drill output:\n%s", out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Scenarios []drill.Result `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 1 {
		t.Fatalf("report: %s", b)
	}
	s := r.Scenarios[0]
	if s.Scenario != "mirror-crash" || !s.Passed || s.Lost != 0 || s.Duplicated != 0 || s.Reordered != 0 || s.RTOMS <= 0 {
		t.Fatalf("report: %s", b)
	}
}
