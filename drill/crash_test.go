package drill

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The crash scenarios in a short form: fewer faults, the same checks.
// STRAIT_LONG=1 runs the sizes `strait drill` runs.

var shortSizes = faultSizes{mirrorKills: 3, partitionRounds: 1, brokerCrashes: 1, settle: time.Second, outage: 2 * time.Second}

func testSizes() faultSizes {
	if os.Getenv("STRAIT_LONG") == "1" {
		return drillSizes
	}
	return shortSizes
}

var buildOnce struct {
	sync.Once
	bin string
	err error
	out []byte
}

// useBinary builds the strait binary once per test run and points Binary
// at it: the crash scenarios run it as child processes.
func useBinary(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strait-drill-bin-*")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "strait")
		buildOnce.out, buildOnce.err = exec.Command("go", "build", "-o", buildOnce.bin, "../cmd/strait").CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	Binary = buildOnce.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.bin != "" {
		os.RemoveAll(filepath.Dir(buildOnce.bin))
	}
	os.Exit(code)
}

func checkFaultResult(t *testing.T, res *Result, err error) {
	t.Helper()
	if err != nil || res == nil || res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 {
		t.Fatalf("%+v: %v", res, err)
	}
	t.Logf("%+v", res)
	if res.RTOMS <= 0 {
		t.Fatalf("no recovery measured: %+v", res)
	}
}

// TestScenarioMirrorCrash: the mirror process killed with SIGKILL several
// times mid-stream; the destination holds every acknowledged record once,
// in order.
func TestScenarioMirrorCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	useBinary(t)
	res, err := mirrorCrash(context.Background(), t.TempDir(), nil, testSizes())
	checkFaultResult(t, res, err)
}

// TestScenarioNetworkPartition: cuts, delays and responses reset midway
// between the mirror and both clusters; the mirror recovers unaided.
func TestScenarioNetworkPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	res, err := networkPartition(context.Background(), t.TempDir(), nil, testSizes())
	checkFaultResult(t, res, err)
}

// TestScenarioBrokerCrash: the source cluster's process, then the
// destination's, killed with SIGKILL and restarted on the same ports and
// folders; both clusters keep what they acknowledged, the destination
// holds it once.
func TestScenarioBrokerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	useBinary(t)
	res, err := brokerCrash(context.Background(), t.TempDir(), nil, testSizes())
	checkFaultResult(t, res, err)
}

// TestScenarioNoBinary: run from a test binary with no strait to start, a
// process scenario fails with a reason instead of starting itself.
func TestScenarioNoBinary(t *testing.T) {
	saved := Binary
	Binary = ""
	defer func() { Binary = saved }()
	res := RunScenario(context.Background(), "mirror-crash", t.TempDir(), nil)
	if res.Passed || res.Error == "" {
		t.Fatalf("%+v", res)
	}
}
