package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/strait.service with systemd's own verifier
// (skipped where systemd-analyze is missing, unless STRAIT_REQUIRE_SYSTEMD
// is set), with the binary path pointed at a freshly built strait.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("STRAIT_REQUIRE_SYSTEMD") != "" {
			t.Fatalf("systemd-analyze is required (STRAIT_REQUIRE_SYSTEMD set) but not found: %v", err)
		}
		t.Skip("systemd-analyze not installed (apt-get install -y systemd)")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binBuild(t)
	unit, err := os.ReadFile("../deploy/strait.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=simple", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "strait.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/strait", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdTemplateUnit checks deploy/strait@.service, the fleet's
// template unit, as instance 1.
func TestSystemdTemplateUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binBuild(t)
	unit, err := os.ReadFile("../deploy/strait@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--id %H-%i", "--http 127.0.0.1:707%i", "Restart=on-failure"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "strait@1.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/strait", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
