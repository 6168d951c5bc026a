package brokerd_test

// Helpers for the conformance tests: clusters started in process or as the
// real `strait broker` binary, real clients (kcat, franz-go), a polling
// helper, and a connection wrapper that cuts a produce response.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// confStart starts an in-process cluster of n brokers in dir.
func confStart(t testing.TB, dir string, n int) *brokerd.Cluster {
	t.Helper()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: n, Partitions: 3})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// confWait polls cond until it returns nil or timeout passes.
func confWait(t testing.TB, timeout time.Duration, what string, cond func() error) {
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
		time.Sleep(25 * time.Millisecond)
	}
}

func confClient(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func confCreateTopic(t testing.TB, addrs []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(confClient(t, addrs))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// kcatPath finds kcat; without it the test skips, unless
// STRAIT_REQUIRE_KCAT is set (CI installs kcat and sets it), then it fails.
func kcatPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("STRAIT_REQUIRE_KCAT") != "" {
			t.Fatalf("kcat is required (STRAIT_REQUIRE_KCAT set) but not found: %v", err)
		}
		t.Skip("kcat not installed (apt-get install -y kcat); skipping kcat conformance test")
	}
	return p
}

// straitBinary builds cmd/strait into the test's temporary folder (the
// build cache makes repeated builds cheap).
func straitBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strait")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/strait").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// brokerProc is a running `strait broker` process.
type brokerProc struct {
	cmd   *exec.Cmd
	addrs []string
	done  chan struct{}
}

// startBinary runs `strait broker` on dir and waits for its ready line.
func startBinary(t testing.TB, dir string, brokers int) *brokerProc {
	t.Helper()
	cmd := exec.Command(straitBinary(t), "broker", "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", fmt.Sprint(brokers))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") {
				ready <- strings.TrimPrefix(line, "ready ")
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case line := <-ready:
		p.addrs = strings.Split(line, ",")
	case <-p.done:
		t.Fatalf("strait broker exited before ready: %s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("strait broker not ready after 60s: %s", stderr.String())
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *brokerProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// cutConn wraps a client connection to a broker. When the client sends a
// Produce request while cuts remain, the request goes through, the broker's
// whole response is read off the socket (so the broker has written the
// batch) and the connection is closed before the client sees any of it:
// the client must retry a produce that did succeed.
type cutConn struct {
	net.Conn
	cuts *cutBudget
	// cut is set when the response to the request just written is to be
	// dropped. Tests use one produce request in flight per broker, so
	// the next response on this connection is that request's.
	cut atomic.Bool
}

// cutBudget counts how many produce responses are still to be cut across
// every connection of one client.
type cutBudget struct {
	mu   sync.Mutex
	left int
	done int
}

func (b *cutBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left == 0 {
		return false
	}
	b.left--
	return true
}

func (b *cutBudget) finish() {
	b.mu.Lock()
	b.done++
	b.mu.Unlock()
}

func (b *cutBudget) cutCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

var errCut = errors.New("conformance: connection cut after produce")

func (c *cutConn) Write(p []byte) (int, error) {
	// kgo writes one whole request per Write: size, key, version, ...
	if len(p) >= 6 && int16(binary.BigEndian.Uint16(p[4:6])) == 0 && c.cuts.take() {
		c.cut.Store(true)
	}
	return c.Conn.Write(p)
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.cut.Load() {
		var size [4]byte
		if _, err := io.ReadFull(c.Conn, size[:]); err == nil {
			io.CopyN(io.Discard, c.Conn, int64(binary.BigEndian.Uint32(size[:])))
		}
		c.Conn.Close()
		c.cut.Store(false)
		c.cuts.finish()
		return 0, errCut
	}
	return c.Conn.Read(p)
}

// cuttingDialer returns a kgo.Dialer option whose connections cut the
// responses of the next n produce requests.
func cuttingDialer(n int) (kgo.Opt, *cutBudget) {
	b := &cutBudget{left: n}
	var d net.Dialer
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return &cutConn{Conn: c, cuts: b}, nil
	}), b
}

// pollValues polls cons in the background, recording every record value
// (a decimal integer). seenAll(n) is a confWait condition for n distinct
// values; stop ends the polling and waits for it.
func pollValues(cons *kgo.Client) (seenAll func(n int) func() error, stop func()) {
	var mu sync.Mutex
	seen := map[int]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				i, _ := strconv.Atoi(string(r.Value))
				seen[i] = true
			})
			mu.Unlock()
		}
	}()
	seenAll = func(want int) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) < want {
				return fmt.Errorf("seen %d of %d", len(seen), want)
			}
			return nil
		}
	}
	return seenAll, func() { cancel(); <-polled }
}

// readThenCommit polls cons until it has read n records, then commits
// them.
func readThenCommit(t testing.TB, ctx context.Context, cons *kgo.Client, n int) {
	t.Helper()
	for read := 0; read < n; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d: %v", read, n, ctx.Err())
		}
		read += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}
