package e2e_test

import (
	"bufio"
	"bytes"
	"io"
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

// binBroker starts `strait broker --dir dir` with one broker (plus extra
// flags) and returns its address once it printed its ready line; the test's
// cleanup stops it with SIGTERM.
func binBroker(t *testing.T, bin, dir string, extra ...string) string {
	t.Helper()
	args := append([]string{"broker", "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", "1"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
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
	select {
	case l := <-line:
		addrs, ok := strings.CutPrefix(l, "ready ")
		if !ok {
			t.Fatalf("broker printed %q, want a ready line", l)
		}
		return strings.Split(addrs, ",")[0]
	case <-time.After(60 * time.Second):
		t.Fatalf("broker did not get ready: %s", stderr.String())
	}
	return ""
}
