package brokerd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// buildStrait builds the real binary once per test run.
var buildStrait = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strait-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "strait")
	out, err := exec.Command("go", "build", "-o", bin, "strait/cmd/strait").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type brokerProc struct {
	cmd   *exec.Cmd
	addrs []string
	done  chan error
}

// startBroker runs `strait broker` and waits for its ready line.
func startBroker(t *testing.T, wrap []string, args ...string) *brokerProc {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildStrait()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(wrap, bin, "broker"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	// Its own process group, so cleanup also reaches a wrapped child
	// (strace's tracee).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
			} else {
				t.Errorf("unexpected stdout line %q", sc.Text())
			}
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "ready ") {
			t.Fatalf("first line %q, want ready <addrs>", line)
		}
		p.addrs = strings.Split(strings.TrimPrefix(line, "ready "), ",")
	case <-time.After(60 * time.Second):
		t.Fatal("no ready line")
	}
	return p
}

func TestBrokerCommandSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startBroker(t, nil, "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", "3")
	if len(p.addrs) != 3 {
		t.Fatalf("addrs %v", p.addrs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		p.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// Bad usage exits 2.
	bin, _ := buildStrait()
	err = exec.Command(bin, "broker").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("missing --dir: %v", err)
	}
}

// kill -9 during a produce loop loses no acknowledged record, and offsets
// stay contiguous after the restart.
func TestKill9KeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := startBroker(t, nil, "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", "3")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := strconv.Itoa(i)
			cl.Produce(ctx, &kgo.Record{Topic: "k9", Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = true
					mu.Unlock()
				}
			})
		}
	}()
	waitFor(t, 60*time.Second, "acknowledged records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20000
	})
	p.cmd.Process.Kill()
	close(stop)
	wg.Wait()
	<-p.done
	p.done <- nil
	cl.Close()
	mu.Lock()
	want := len(acked)
	mu.Unlock()

	p2 := startBroker(t, nil, "--dir", dir, "--listen", "127.0.0.1:0", "--brokers", "3")
	cons, err := kgo.NewClient(kgo.SeedBrokers(p2.addrs...), kgo.ConsumeTopics("k9"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	next := map[int32]int64{}
	found := 0
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for found < want {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("found %d of %d acknowledged records", found, want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			if seen[string(r.Value)] {
				t.Fatalf("record %s stored twice", r.Value)
			}
			seen[string(r.Value)] = true
			if acked[string(r.Value)] {
				found++
			}
		})
	}
	t.Logf("%d acknowledged records all present after kill -9", want)
	// New writes continue the offsets.
	pr, err := kgo.NewClient(kgo.SeedBrokers(p2.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := pr.ProduceSync(ctx, &kgo.Record{Topic: "k9", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// strace shows fetch data leaving through sendfile(2).
func TestStraceShowsSendfile(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		skipUnlessRequired(t, "STRAIT_REQUIRE_STRACE", "strace not installed (apt-get install -y strace)")
	}
	log := filepath.Join(t.TempDir(), "strace.out")
	p := startBroker(t, []string{strace, "-f", "-yy", "-e", "trace=sendfile", "-o", log}, "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", "1")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("s"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "s", Value: []byte(strings.Repeat("z", 5000))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if fs := cl.PollFetches(cctx); fs.NumRecords() != 1 {
		t.Fatalf("fetched %d records: %v", fs.NumRecords(), fs.Errors())
	}
	// The record's bytes left through a sendfile from a segment file to
	// the client's TCP socket. The /dev/null warm-up also calls sendfile
	// (from a segment, to /dev/null), so a sendfile of any kind proves
	// nothing: -yy names both descriptors, and the line must show a
	// socket, a .log segment and at least the record's 5000 bytes. A
	// line reads like:
	//   sendfile(9<TCP:[127.0.0.1:41000->127.0.0.1:52000]>, 12</tmp/…/00000000000000000000.log>, [0] => [5080], 5080) = 5080
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("strace log:\n%s", last)
		}
	}()
	waitFor(t, 10*time.Second, "a sendfile from a segment to the client socket in the strace log", func() bool {
		b, _ := os.ReadFile(log)
		last = string(b)
		for _, l := range strings.Split(last, "\n") {
			if sendfileToSocket(l) >= 5000 {
				return true
			}
		}
		return false
	})
}

// sendfileToSocket returns the bytes a strace -yy line shows sent by a
// sendfile from a segment file to a TCP socket, or -1.
func sendfileToSocket(l string) int {
	open := strings.Index(l, "sendfile(")
	eq := strings.LastIndex(l, ") = ")
	if open < 0 || eq < open {
		return -1
	}
	args := l[open+len("sendfile(") : eq]
	out, rest, ok := strings.Cut(args, ">, ")
	if !ok || !strings.Contains(out, "<TCP") && !strings.Contains(out, "<TCPv6") {
		return -1
	}
	in, _, ok := strings.Cut(rest, ">, ")
	if !ok || !strings.HasSuffix(in, ".log") {
		return -1
	}
	f := strings.Fields(l[eq+len(") = "):])
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	return n
}
