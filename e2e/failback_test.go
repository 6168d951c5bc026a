package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFailoverFailbackBinary drives a whole round trip through the real
// binary against two `strait broker` processes: the mirror daemon copies
// east to west; `strait failover --planned` moves a group that keeps
// consuming until the failover waits for it (then it is redeployed on
// west and reads every record exactly once); east acknowledges a tail the
// mirror never copied while west takes writes of its own; `strait
// failback --dry-run` changes nothing; `strait failback` copies the tail
// once; the reverse pipeline in `strait mirror` brings east up to date.
// Both clusters end with every record exactly once.
func TestFailoverFailbackBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers and the binary")
	}
	bin := binBuild(t)
	dir := t.TempDir()
	east := binBroker(t, bin, filepath.Join(dir, "east"))
	west := binBroker(t, bin, filepath.Join(dir, "west"))
	const topic, group = "orders", "orders-app"
	pipelineYAML := func(fwdPaused, withReverse bool) string {
		y := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: kafka, interval: 200ms}
pipelines:
  - name: ew
    source: east
    destination: west
    topics: {include: [%q]}
    refresh: 500ms
    loop_protection: true
    paused: %v
`, east, west, topic, fwdPaused)
		if withReverse {
			y += fmt.Sprintf(`  - name: we
    source: west
    destination: east
    topics: {include: [%q]}
    refresh: 500ms
    loop_protection: true
`, topic)
		}
		return y
	}
	fwdCfg, backCfg := filepath.Join(dir, "fwd.yaml"), filepath.Join(dir, "back.yaml")
	if err := os.WriteFile(fwdCfg, []byte(pipelineYAML(false, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backCfg, []byte(pipelineYAML(true, true)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eastCl := crashClient(t, east, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	westCl := crashClient(t, west, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(eastCl).CreateTopic(ctx, 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(cl *kgo.Client, prefix string, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "%s%d", prefix, i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(eastCl, "e", 400)

	// The daemon mirrors.
	logf, err := os.Create(filepath.Join(dir, "mirror.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	m := crashStartMirror(t, bin, fwdCfg, logf)
	binWait(t, 60*time.Second, "the mirror to copy east", func() error {
		if e := e2eEnds(t, west, topic); e[0]+e[1] != 400 {
			return fmt.Errorf("west holds %d", e[0]+e[1])
		}
		return nil
	})
	m.kill() // the daemon is stopped: the failover runs the pipeline itself

	// A dry run of the failover changes nothing.
	eb, wb := e2eSnapshot(t, east), e2eSnapshot(t, west)
	out := e2eRun(t, bin, "failover", "--config", fwdCfg, "--pipeline", "ew", "--dry-run")
	if !strings.Contains(out, "dry run") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if ea, wa := e2eSnapshot(t, east), e2eSnapshot(t, west); ea != eb || wa != wb {
		t.Fatalf("failover --dry-run changed the clusters:\n%s\n---\n%s\n===\n%s\n---\n%s", eb, ea, wb, wa)
	}

	// The application consumes on east, slowly; the planned failover
	// starts while it still does, and it is redeployed two seconds into
	// the failover's wait.
	var mu sync.Mutex
	consumed := map[string]int{}
	appCtx, stopApp := context.WithCancel(ctx)
	appDone := make(chan error, 1)
	go func() { appDone <- e2eApp(appCtx, east, group, topic, 100, &mu, consumed) }()
	binWait(t, 30*time.Second, "the application to consume on east", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(consumed) == 0 {
			return fmt.Errorf("nothing consumed yet")
		}
		return nil
	})
	fo := make(chan string, 1)
	go func() {
		cmd := exec.Command(bin, "failover", "--config", fwdCfg, "--pipeline", "ew", "--planned", "--json", "--group-timeout", "60s")
		b, err := cmd.Output()
		if err != nil {
			b = append(b, fmt.Sprintf("\nerror: %v", err)...)
		}
		fo <- string(b)
	}()
	time.Sleep(2 * time.Second) // the group is active during the cutover
	stopApp()
	if err := <-appDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	onEast := len(consumed)
	mu.Unlock()
	if onEast >= 400 {
		t.Fatalf("the application read everything on east before the cutover: the test lost its point")
	}
	var rep struct {
		Groups []struct {
			Group   string `json:"group"`
			Offsets []struct {
				Action       string `json:"action"`
				Redeliveries int64  `json:"redeliveries"`
			} `json:"offsets"`
		} `json:"groups"`
	}
	foOut := <-fo
	if err := json.Unmarshal([]byte(foOut), &rep); err != nil || len(rep.Groups) != 1 || rep.Groups[0].Group != group {
		t.Fatalf("failover: %v\n%s", err, foOut)
	}
	for _, o := range rep.Groups[0].Offsets {
		if o.Action != "committed" || o.Redeliveries != 0 {
			t.Fatalf("failover moved %+v\n%s", o, foOut)
		}
	}
	// The application on west reads the rest, exactly once.
	appCtx, stopApp = context.WithCancel(ctx)
	go func() { appDone <- e2eApp(appCtx, west, group, topic, 0, &mu, consumed) }()
	binWait(t, 60*time.Second, "the application to read everything on west", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(consumed) < 400 {
			return fmt.Errorf("%d consumed", len(consumed))
		}
		return nil
	})
	stopApp()
	if err := <-appDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for v, n := range consumed {
		if n != 1 {
			t.Errorf("%s consumed %d times", v, n)
		}
	}
	mu.Unlock()

	// East acknowledges a tail nobody mirrors; west takes writes.
	produce(eastCl, "tail", 6)
	produce(westCl, "w", 10)

	eb, wb = e2eSnapshot(t, east), e2eSnapshot(t, west)
	out = e2eRun(t, bin, "failback", "--config", backCfg, "--pipeline", "ew", "--dry-run")
	if !strings.Contains(out, "would copy 6 records") {
		t.Fatalf("failback --dry-run printed:\n%s", out)
	}
	if ea, wa := e2eSnapshot(t, east), e2eSnapshot(t, west); ea != eb || wa != wb {
		t.Fatalf("failback --dry-run changed the clusters:\n%s\n---\n%s\n===\n%s\n---\n%s", eb, ea, wb, wa)
	}
	for i, want := range []string{"copied 6 records", "copied 0 records"} {
		out = e2eRun(t, bin, "failback", "--config", backCfg, "--pipeline", "ew")
		if !strings.Contains(out, want) {
			t.Fatalf("failback run %d printed:\n%s", i+1, out)
		}
	}

	// The reverse pipeline brings east up to date.
	crashStartMirror(t, bin, backCfg, logf)
	binWait(t, 60*time.Second, "the reverse pipeline to copy west's writes", func() error {
		if e := e2eEnds(t, east, topic); e[0]+e[1] < 416 {
			return fmt.Errorf("east holds %d", e[0]+e[1])
		}
		return nil
	})
	time.Sleep(time.Second) // an echo would show as more records
	want := map[string]bool{}
	for i := 0; i < 400; i++ {
		want[fmt.Sprintf("e%d", i)] = true
	}
	for i := 0; i < 6; i++ {
		want[fmt.Sprintf("tail%d", i)] = true
	}
	for i := 0; i < 10; i++ {
		want[fmt.Sprintf("w%d", i)] = true
	}
	for name, addr := range map[string]string{"east": east, "west": west} {
		got := map[string]int{}
		for _, v := range e2eValues(t, addr, topic) {
			got[v]++
		}
		for v := range want {
			if got[v] != 1 {
				t.Errorf("%s holds %s %d times", name, v, got[v])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s holds %d distinct records, want %d", name, len(got), len(want))
		}
	}
}

// e2eApp is the application: a group consumer committing every poll
// (slowed by pause per poll), counting each value it read.
func e2eApp(ctx context.Context, addr, group, topic string, pause time.Duration, mu *sync.Mutex, consumed map[string]int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxPartitionBytes(2000))
	if err != nil {
		return err
	}
	defer func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cl.LeaveGroupContext(lctx)
		cancel()
		cl.Close()
	}()
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 10)
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.CommitRecords(cctx, recs...)
		cancel()
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		mu.Lock()
		for _, r := range recs {
			consumed[string(r.Value)]++
		}
		mu.Unlock()
		time.Sleep(pause * time.Millisecond)
	}
	return nil
}

// e2eValues reads every value of a topic from its start to its end.
func e2eValues(t *testing.T, addr, topic string) []string {
	t.Helper()
	ends := e2eEnds(t, addr, topic)
	parts := map[int32]kgo.Offset{}
	left := 0
	for p, e := range ends {
		if e > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	cl := crashClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxWait(200*time.Millisecond))
	var out []string
	deadline := time.Now().Add(60 * time.Second)
	for left > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s on %s did not reach the end", topic, addr)
		}
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			out = append(out, string(r.Value))
			if r.Offset == ends[r.Partition]-1 {
				left--
			}
		})
	}
	return out
}

func e2eEnds(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	cl := crashClient(t, addr)
	l, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	out := map[int32]int64{}
	if err != nil {
		return out
	}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// e2eSnapshot is a cluster's groups, their states and commits, and every
// topic's end offsets.
func e2eSnapshot(t *testing.T, addr string) string {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(crashClient(t, addr))
	var lines []string
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Sorted() {
		d, _ := adm.DescribeGroups(ctx, g.Group)
		offs, _ := adm.FetchOffsets(ctx, g.Group)
		lines = append(lines, fmt.Sprintf("group %s %s %d", g.Group, d[g.Group].State, len(d[g.Group].Members)))
		for _, o := range offs.Sorted() {
			lines = append(lines, fmt.Sprintf("  %s %s/%d=%d", g.Group, o.Topic, o.Partition, o.At))
		}
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ends, _ := adm.ListEndOffsets(ctx, topics.Names()...)
	ends.Each(func(o kadm.ListedOffset) {
		lines = append(lines, fmt.Sprintf("end %s/%d=%d", o.Topic, o.Partition, o.Offset))
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// e2eRun runs the binary and returns its stdout; a failure fails the test.
func e2eRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("strait %v: %v\n%s\n%s", args, err, out, stderr.String())
	}
	return string(out)
}
