package conformance

import (
	"bufio"
	"errors"
	"fmt"
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

// straitBin is the strait binary TestMain builds from ../cmd/strait.
var straitBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strait-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	straitBin = filepath.Join(dir, "strait")
	build := exec.Command("go", "build", "-o", straitBin, "./cmd/strait")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "conformance: go build ./cmd/strait: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// broker is one running `strait broker` process.
type broker struct {
	addrs []string
	log   *syncBuffer
}

// seeds is the comma-separated bootstrap list.
func (b *broker) seeds() string { return strings.Join(b.addrs, ",") }

// startBroker runs `strait broker --brokers 3` with default limits plus
// extra flags, waits for its ready line and stops it (SIGTERM) when the
// test ends; the broker's log is printed if the test failed.
func startBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	args := append([]string{"broker", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", "3"}, extra...)
	cmd := exec.Command(straitBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{log: &syncBuffer{}}
	cmd.Stderr = b.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start strait broker: %v", err)
	}
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("strait broker exited: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("strait broker did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("strait broker log:\n%s", b.log.String())
		}
	})
	select {
	case line := <-ready:
		b.addrs = strings.Split(line, ",")
	case err := <-exited:
		t.Fatalf("strait broker exited before ready: %v\n%s", err, b.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("strait broker printed no ready line in 60s\n%s", b.log.String())
	}
	return b
}

// syncBuffer collects the broker's stderr for the failure report.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor polls cond until it returns nil or the deadline passes, then
// fails the test with the last error.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var errMismatch = errors.New("conformance: mismatch")
