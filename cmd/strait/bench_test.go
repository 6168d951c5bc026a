package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchBinary: strait bench runs the strait-bench next to it, with
// its usage, exit codes and output passed through, and a short bench broker
// run with --split-cpus works end to end (the producer child is
// strait-bench re-executed). Alone in a folder, outside the source tree,
// strait bench says where the harness is.
func TestBenchBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := straitBinary(t)
	out, err := exec.Command("go", "build", "-o", filepath.Join(filepath.Dir(bin), benchBinary), "../strait-bench").CombinedOutput()
	if err != nil {
		t.Fatalf("go build strait-bench: %v\n%s", err, out)
	}
	run := func(dir string, env []string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"bench"}, 2, "", "usage: strait bench <target> [flags]"},
		{[]string{"bench", "-h"}, 0, "usage: strait bench <target> [flags]", ""},
		{[]string{"help", "bench"}, 0, "  producer  ", ""},
		{[]string{"bench", "broker", "-h"}, 0, "-split-cpus", ""},
		{[]string{"help", "bench", "mirror"}, 0, "-latency-time", ""},
		{[]string{"bench", "broker", "--bogus"}, 2, "", "strait bench broker: bad command line: flag provided but not defined: -bogus"},
		{[]string{"bench", "nope"}, 2, "", `strait bench: unknown target "nope"`},
		{[]string{"bench", "producer", "--seeds", "127.0.0.1:1"}, 2, "", "needs --seeds, --topic"},
	} {
		stdout, stderr, code := run("", nil, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.inStdout) || !strings.Contains(stderr, tc.inStderr) ||
			(tc.inStdout == "" && stdout != "") || (tc.inStderr == "" && stderr != "") {
			t.Errorf("%q: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", tc.args, code, tc.code, stdout, tc.inStdout, stderr, tc.inStderr)
		}
	}

	stdout, stderr, code := run("", nil, "bench", "broker", "--records", "2000", "--value-bytes", "100", "--fetch-mb", "2", "--rounds", "1", "--split-cpus", "--dir", t.TempDir())
	if code != 0 {
		t.Fatalf("bench broker: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"producer in its own process", "| produce | ", "| kfake |", "file-to-socket", "fetch 1 MiB, sendfile"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bench broker output lacks %q:\n%s", want, stdout)
		}
	}

	alone := filepath.Join(t.TempDir(), "strait")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = alone
	_, stderr, code = run(t.TempDir(), []string{"PATH=" + t.TempDir()}, "bench", "broker")
	if code != 1 || !strings.Contains(stderr, "go build -o DIR ./cmd/strait-bench") {
		t.Errorf("strait bench without strait-bench: exit %d, stderr %q", code, stderr)
	}
}
