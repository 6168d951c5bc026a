package brokerd_test

// Conformance with kcat (librdkafka): metadata, a 100,000-message round
// trip with keys and headers, and a two-member consumer group that splits
// partitions and resumes from its committed offsets after a restart.

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"strait/brokerd"
)

func TestConformanceKcatMetadata(t *testing.T) {
	kcat := kcatPath(t)
	c := confStart(t, t.TempDir(), 3)
	out, err := exec.Command(kcat, "-b", strings.Join(c.Addrs(), ","), "-L", "-m", "30").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " 3 brokers:") {
		t.Fatalf("kcat -L does not list 3 brokers:\n%s", out)
	}
	for i, a := range c.Addrs() {
		if !strings.Contains(string(out), fmt.Sprintf("broker %d at %s", i, a)) {
			t.Errorf("kcat -L misses broker %d at %s:\n%s", i, a, out)
		}
	}
}

func TestConformanceKcatRoundTrip(t *testing.T) {
	kcat := kcatPath(t)
	c := confStart(t, t.TempDir(), 3)
	brokers := strings.Join(c.Addrs(), ",")
	const topic, n = "kcat-roundtrip", 100_000
	confCreateTopic(t, c.Addrs(), topic, 3)

	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "key-%d\tvalue-%d\n", i, i)
	}
	prod := exec.Command(kcat, "-b", brokers, "-P", "-t", topic, "-K", "\t", "-H", "origin=kcat", "-H", "run=1")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	cons := exec.Command(kcat, "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%k\t%s\t%h\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	seen := make([]bool, n)
	count := 0
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("bad line %q", line)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(f[0], "key-"))
		if err != nil || i < 0 || i >= n || f[1] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("key/value mismatch in %q", line)
		}
		if f[2] != "origin=kcat,run=1" {
			t.Fatalf("headers %q, want origin=kcat,run=1", f[2])
		}
		if seen[i] {
			t.Fatalf("message %d read twice", i)
		}
		seen[i] = true
		count++
	}
	if count != n {
		t.Fatalf("read %d messages, want %d", count, n)
	}
}

// kcatMember is one `kcat -G` process; it records which partitions it read
// and how many messages.
type kcatMember struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	msgs map[string]bool   // "partition/offset"
	vals map[string]string // "partition/offset" -> message
	part map[int]int       // partition -> messages read
	dups int
}

func startKcatMember(t *testing.T, kcat, brokers, group, topic string, extra ...string) *kcatMember {
	t.Helper()
	args := append([]string{"-b", brokers, "-G", group, "-q", "-u", "-f", "%p %o %s\n",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=200",
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"}, extra...)
	args = append(args, topic)
	m := &kcatMember{cmd: exec.Command(kcat, args...), done: make(chan struct{}), msgs: map[string]bool{}, vals: map[string]string{}, part: map[int]int{}}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			p, _ := strconv.Atoi(f[0])
			m.mu.Lock()
			key := f[0] + "/" + f[1]
			if m.msgs[key] {
				m.dups++
			}
			m.msgs[key] = true
			m.vals[key] = f[2]
			m.part[p]++
			m.mu.Unlock()
		}
		m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() { m.cmd.Process.Kill(); <-m.done })
	return m
}

func (m *kcatMember) snapshot() (msgs map[string]bool, parts map[int]int, dups int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs = make(map[string]bool, len(m.msgs))
	for k := range m.msgs {
		msgs[k] = true
	}
	parts = make(map[int]int, len(m.part))
	for k, v := range m.part {
		parts[k] = v
	}
	return msgs, parts, m.dups
}

func (m *kcatMember) values() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.vals))
	for k, v := range m.vals {
		out[k] = v
	}
	return out
}

// stop ends kcat the way a user does (SIGINT): it commits and leaves.
func (m *kcatMember) stop(t *testing.T) {
	t.Helper()
	m.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatal("kcat did not exit within 30s of SIGINT")
	}
}

func kcatProduce(t *testing.T, kcat, brokers, topic string, from, n int) {
	t.Helper()
	var in strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&in, "k%d:m%d\n", i, i)
	}
	// Keyed, so librdkafka's hash partitioner spreads them over every
	// partition (unkeyed messages stick to one partition per batch).
	prod := exec.Command(kcat, "-b", brokers, "-P", "-t", topic, "-K", ":")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
}

func TestConformanceKcatGroupSplitsAndResumes(t *testing.T) {
	kcat := kcatPath(t)
	dir := t.TempDir()
	c := confStart(t, dir, 3)
	brokers := strings.Join(c.Addrs(), ",")
	const topic, group, first, second = "kcat-group", "kcat-group-members", 4000, 1000
	confCreateTopic(t, c.Addrs(), topic, 6)
	kcatProduce(t, kcat, brokers, topic, 0, first)

	a := startKcatMember(t, kcat, brokers, group, topic)
	b := startKcatMember(t, kcat, brokers, group, topic)
	confWait(t, 2*time.Minute, "two kcat members to share all messages", func() error {
		ma, pa, _ := a.snapshot()
		mb, pb, _ := b.snapshot()
		all := map[string]bool{}
		for k := range ma {
			all[k] = true
		}
		for k := range mb {
			all[k] = true
		}
		if len(all) != first {
			return fmt.Errorf("read %d distinct of %d (a %v, b %v)", len(all), first, pa, pb)
		}
		return nil
	})
	// Both members must be in one Stable generation with their own
	// partitions before new messages can reach each of them.
	adm := kadm.NewClient(confClient(t, c.Addrs()))
	confWait(t, time.Minute, "a Stable group of two members with three partitions each", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		g := described[group]
		if g.State != "Stable" || len(g.Members) != 2 {
			return fmt.Errorf("state %s with %d members", g.State, len(g.Members))
		}
		for _, m := range g.Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 3 {
				return fmt.Errorf("member %s assigned %+v", m.MemberID, ca)
			}
		}
		return nil
	})
	before := map[*kcatMember]int{}
	for _, m := range []*kcatMember{a, b} {
		msgs, _, _ := m.snapshot()
		before[m] = len(msgs)
	}
	kcatProduce(t, kcat, brokers, topic, first, 600)
	confWait(t, time.Minute, "the 600 new messages to be split", func() error {
		na, _, _ := a.snapshot()
		nb, _, _ := b.snapshot()
		ga, gb := len(na)-before[a], len(nb)-before[b]
		if ga+gb < 600 {
			return fmt.Errorf("a got %d, b got %d of 600", ga, gb)
		}
		if ga == 0 || gb == 0 {
			return fmt.Errorf("one member got nothing: a %d, b %d", ga, gb)
		}
		return nil
	})
	_, pa, _ := a.snapshot()
	_, pb, _ := b.snapshot()
	a.stop(t)
	b.stop(t)

	// Restart the broker too: committed offsets come back from the journal.
	c.Close()
	c2 := confStart(t, dir, 3)
	brokers = strings.Join(c2.Addrs(), ",")
	kcatProduce(t, kcat, brokers, topic, first+600, second)

	r := startKcatMember(t, kcat, brokers, group, topic)
	confWait(t, 2*time.Minute, "the restarted member to read the new messages", func() error {
		msgs, _, _ := r.snapshot()
		if len(msgs) < second {
			return fmt.Errorf("read %d of %d", len(msgs), second)
		}
		return nil
	})
	msgs, _, dups := r.snapshot()
	if len(msgs) != second || dups != 0 {
		t.Fatalf("after restart read %d messages (%d repeats), want exactly the %d new ones; before restart a read partitions %v, b %v",
			len(msgs), dups, second, pa, pb)
	}
	for k, v := range r.values() {
		if i, _ := strconv.Atoi(strings.TrimPrefix(v, "m")); i < first+600 {
			t.Fatalf("after restart re-read %s (message %q) committed before the restart", k, v)
		}
	}
}

// kcat (librdkafka) logs in with SASL PLAIN and SCRAM-SHA-256, produces
// and reads back; a wrong password is refused.
func TestConformanceKcatSASL(t *testing.T) {
	kcat := kcatPath(t)
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 2, AutoCreateTopics: true,
		SASLUsers: map[string]string{"mirror": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	brokers := strings.Join(c.Addrs(), ",")
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256"} {
		t.Run(mech, func(t *testing.T) {
			auth := func(pass string) []string {
				return []string{"-b", brokers, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
					"-X", "sasl.username=mirror", "-X", "sasl.password=" + pass}
			}
			topic := "kcat-sasl-" + strings.ToLower(mech[:5])
			prod := exec.Command(kcat, append(auth("s3cret"), "-P", "-t", topic)...)
			prod.Stdin = strings.NewReader("one\ntwo\nthree\n")
			if out, err := prod.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P with SASL %s: %v\n%s", mech, err, out)
			}
			out, err := exec.Command(kcat, append(auth("s3cret"), "-C", "-t", topic, "-o", "beginning", "-e", "-q")...).Output()
			if err != nil {
				t.Fatalf("kcat -C with SASL %s: %v", mech, err)
			}
			got := strings.Fields(string(out))
			sort.Strings(got)
			if strings.Join(got, ",") != "one,three,two" {
				t.Fatalf("kcat read %q", got)
			}
			bad := exec.Command(kcat, append(auth("nope"), "-L", "-m", "5")...)
			if out, err := bad.CombinedOutput(); err == nil {
				t.Fatalf("kcat -L with a wrong password succeeded:\n%s", out)
			}
		})
	}
}
