package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// straitBinary builds the strait binary once per test run.
func straitBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strait-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "strait")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startBroker runs `strait broker` and returns its addresses once it prints
// its ready line.
func startBroker(t *testing.T, bin string, brokers int) []string {
	t.Helper()
	cmd := exec.Command(bin, "broker", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", fmt.Sprint(brokers))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- line
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			t.Fatal("strait broker exited before it was ready")
		}
		return strings.Split(line, ",")
	case <-time.After(30 * time.Second):
		t.Fatal("strait broker did not print its ready line")
	}
	return nil
}

func createTopics(t *testing.T, addrs []string, topics map[string]int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, n := range topics {
		resp, err := kadm.NewClient(cl).CreateTopic(ctx, n, 1, nil, name)
		if err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
	}
}

// TestPlanBinary runs `strait plan` against two `strait broker` clusters,
// as a user would, and checks topics, names and partition counts.
func TestPlanBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := straitBinary(t)
	east := startBroker(t, bin, 3)
	west := startBroker(t, bin, 1)
	createTopics(t, east, map[string]int32{"orders.eu": 3, "orders.us": 6, "payments": 2, "internal-only": 1})
	createTopics(t, west, map[string]int32{"east.orders.eu": 3, "east.payments": 1})

	cfg := filepath.Join(t.TempDir(), "strait.yaml")
	if err := os.WriteFile(cfg, []byte(`clusters:
  east: {bootstrap: ["${EAST}"]}
  west: {bootstrap: ["${WEST}"]}
pipelines:
  - name: east-to-west
    source: east
    destination: west
    topics: {include: ["orders\\..*", "payments"]}
    rename: "east.{topic}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "EAST="+strings.Join(east, ","), "WEST="+west[0])
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}

	out, errOut, code := run("plan", cfg)
	if code != 0 {
		t.Fatalf("plan exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"pipeline east-to-west (east -> west, batch mode)",
		"orders.eu     3           east.orders.eu     exists, 3 partitions",
		"orders.us     6           east.orders.us     will be created with 6 partitions",
		"payments      2           east.payments      exists, 1 partition: MISMATCH (sync.partitions will add 1 partition)",
		"3 topics, 11 partitions: 1 exist, 1 to create, 1 partition mismatch",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "internal-only") {
		t.Errorf("plan lists a topic the pipeline does not match:\n%s", out)
	}

	out, _, code = run("plan", "--json", cfg)
	if code != 0 || !strings.Contains(out, `"destination": "east.orders.us"`) || !strings.Contains(out, `"state": "create"`) {
		t.Errorf("plan --json exit %d:\n%s", code, out)
	}

	// A cluster that is gone is reported, with exit 1 and no crash.
	cmd := exec.Command(bin, "plan", "--timeout", "2s", cfg)
	cmd.Env = append(os.Environ(), "EAST="+strings.Join(east, ","), "WEST=127.0.0.1:1")
	b, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(b), "UNREACHABLE: unable to dial: dial tcp 127.0.0.1:1: connect: connection refused") || !strings.Contains(string(b), "unknown (destination unreachable)") {
		t.Errorf("unreachable west: %v\n%s", err, b)
	}

	out, errOut, code = run("validate", cfg)
	if code != 0 || out != "ok: 1 pipeline, 2 clusters in 1 file\n" || errOut != "" {
		t.Errorf("validate: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code = run("validate", "/no/such/file.yaml"); code != 1 || !strings.Contains(errOut, "/no/such/file.yaml: cannot read") {
		t.Errorf("validate missing file: exit %d %q", code, errOut)
	}
	if _, _, code = run("validate"); code != 2 {
		t.Errorf("validate without a path: exit %d, want 2", code)
	}
}
