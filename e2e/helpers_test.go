package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// lockedBuf collects a process's output while tests read it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// binProc starts argv (with env added to the test's environment when
// non-nil) and returns it with its standard error and a channel that
// carries the first line of its standard output; the rest of the output is
// drained. The test's cleanup stops it with SIGTERM and kills it if it has
// not exited after stop.
func binProc(t *testing.T, argv, env []string, stop time.Duration) (*exec.Cmd, *lockedBuf, <-chan string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stop):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return cmd, stderr, line
}

// binReady waits for the first line of a process started by binProc, fails
// the test unless it begins with prefix, and returns the rest of it.
func binReady(t *testing.T, name string, line <-chan string, stderr *lockedBuf, prefix string) string {
	t.Helper()
	select {
	case l := <-line:
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			t.Fatalf("%s printed %q, want a line starting %q", name, l, prefix)
		}
		return rest
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not get ready: %s", name, stderr.String())
	}
	return ""
}

// binBroker starts `strait broker --dir dir` with one broker (plus extra
// flags) and returns its address once it printed its ready line; the test's
// cleanup stops it with SIGTERM.
func binBroker(t *testing.T, bin, dir string, extra ...string) string {
	t.Helper()
	argv := append([]string{bin, "broker", "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", "1"}, extra...)
	_, stderr, line := binProc(t, argv, nil, 30*time.Second)
	return strings.Split(binReady(t, "broker", line, stderr, "ready "), ",")[0]
}

// binMirror starts `strait` with args (a mirror daemon logging JSON to its
// standard error) and returns it, its log and a channel that carries its
// exit; the test's cleanup kills it.
func binMirror(t *testing.T, bin string, args ...string) (*exec.Cmd, *lockedBuf, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logs := &lockedBuf{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	return cmd, logs, exited
}

// binAdminAddr waits for a daemon's JSON log to announce its admin API and
// returns the address; what names it in a timeout.
func binAdminAddr(t *testing.T, logs *lockedBuf, what string) string {
	t.Helper()
	var addr string
	binWait(t, 30*time.Second, what, func() error {
		for _, l := range strings.Split(logs.String(), "\n") {
			var e struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "admin API listening" {
				addr = e.Addr
				return nil
			}
		}
		return errors.New("not yet")
	})
	return addr
}
