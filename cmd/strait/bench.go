package main

// strait bench hands its arguments to the strait-bench binary (package
// strait/internal/bench), which holds the benchmark harness: a null broker,
// a bare Kafka client and franz-go's kfake as a baseline. Keeping them in a
// binary of their own keeps them out of strait; strait bench stays the way
// to run them, with the same targets, flags and output.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// benchBinary is the harness's binary name.
const benchBinary = "strait-bench"

// runBench runs strait-bench with args (the target and its flags) and exits
// with its exit code; strait-bench prints its own usage and errors.
func runBench(args []string) error {
	path, cleanup, err := findBench()
	if err != nil {
		return err
	}
	defer cleanup()
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C reaches both processes (one process group); strait waits for
	// the harness to stop and clean up, and passes on a SIGTERM.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				_ = cmd.Process.Signal(s)
			}
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if code := ee.ExitCode(); code > 0 {
					return cmdExit(code)
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		}
	}
}

// findBench finds strait-bench: next to the running strait, then on
// $PATH, then, in strait's source tree (`go run ./cmd/strait bench ...`),
// built from it into a temporary folder that cleanup removes.
func findBench() (path string, cleanup func(), err error) {
	nothing := func() {}
	if exe, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(exe), benchBinary)
		if st, err := os.Stat(sibling); err == nil && !st.IsDir() {
			return sibling, nothing, nil
		}
	}
	if p, err := exec.LookPath(benchBinary); err == nil {
		return p, nothing, nil
	}
	hint := fmt.Sprintf("the benchmarks are the %s binary: build it next to strait (go build -o DIR ./cmd/strait-bench), put it on $PATH, or run strait bench from strait's source tree", benchBinary)
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil || strings.TrimSpace(string(mod)) != "strait" {
		return "", nothing, errors.New(hint)
	}
	dir, err := os.MkdirTemp("", "strait-bench-bin-")
	if err != nil {
		return "", nothing, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, benchBinary)
	build := exec.Command("go", "build", "-o", path, "strait/cmd/strait-bench")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nothing, fmt.Errorf("build %s: %w (%s)", benchBinary, err, hint)
	}
	return path, cleanup, nil
}
