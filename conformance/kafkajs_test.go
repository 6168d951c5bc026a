package conformance

// kafkajs against strait broker: kafkajs/roundtrip.js produces, consumes
// with a group, commits and checks the committed offsets; it exits non-zero
// on any mismatch. The test installs the pinned kafkajs (npm ci) when
// node_modules is missing.

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestKafkaJSRoundTrip(t *testing.T) {
	node, npm := nodeTools(t)
	dir, err := filepath.Abs("kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		install := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		install.Dir = dir
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	b := startBroker(t)
	cmd := exec.Command(node, "roundtrip.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SEEDS="+b.seeds(), "KAFKAJS_NO_PARTITIONER_WARNING=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node roundtrip.js: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// nodeTools finds node and npm. Without them the test skips, unless
// STRAIT_REQUIRE_NODE=1 (set by .ci/run) makes that a failure.
func nodeTools(t *testing.T) (node, npm string) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode == nil && errNpm == nil {
		return node, npm
	}
	if os.Getenv("STRAIT_REQUIRE_NODE") == "1" {
		t.Fatalf("STRAIT_REQUIRE_NODE=1 but node or npm is missing: %v %v", errNode, errNpm)
	}
	t.Skip("node and npm are needed for the kafkajs test (STRAIT_REQUIRE_NODE=1 makes this a failure)")
	return "", ""
}
