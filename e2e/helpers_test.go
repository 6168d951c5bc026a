package e2e_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// binBuild builds the strait binary into the test's temporary folder.
func binBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strait")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/strait").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binWait polls cond until it holds or timeout passes.
func binWait(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
