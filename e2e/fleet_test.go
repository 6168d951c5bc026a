package e2e_test

// The fleet test: several `strait mirror` processes with one configuration
// share 60 source partitions through a workers group on the destination
// cluster, while a steady keyed stream flows. One is killed with kill -9,
// a fourth joins, another is stopped with SIGSTOP for twice the session
// timeout and continued; at the end every destination partition equals its
// source record for record. Batch mode runs by default; STRAIT_LONG=1 adds
// record mode.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/daemon"
	"strait/mirror"
)

const (
	fleetTopic      = "fleet"
	fleetPartitions = 60
	fleetSession    = 3 * time.Second
)

// fleetDaemon is one `strait mirror` process of the fleet.
type fleetDaemon struct {
	name string
	cmd  *exec.Cmd
	logs *lockedBuf
	api  *daemon.Client
	done chan struct{}
}

func fleetStart(t *testing.T, bin, cfg, name string) *fleetDaemon {
	t.Helper()
	cmd := exec.Command(bin, "mirror", "--config", cfg, "--http", "127.0.0.1:0", "--log-format", "json",
		"--watch-interval", "0", "--id", name, "--shutdown-timeout", "20s")
	d := &fleetDaemon{name: name, cmd: cmd, logs: &lockedBuf{}, done: make(chan struct{})}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon %s log tail:\n%s", name, tail(d.logs.String(), 40))
		}
	})
	d.api = daemon.NewClient(binAdminAddr(t, d.logs, name+"'s admin API address"), "")
	return d
}

func tail(s string, n int) string {
	ls := strings.Split(s, "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// status is the daemon's view of the pipeline: partition -> source offset
// and the task's record count.
func (d *fleetDaemon) status() (mirror.PipelineStatus, error) {
	var p mirror.PipelineStatus
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := d.api.Do(ctx, http.MethodGet, "/v1/pipelines/fleet", &p)
	return p, err
}

// fleetOwners maps each partition to the daemon that runs it; a partition
// two daemons run is an error.
func fleetOwners(ds []*fleetDaemon) (map[int32]string, map[int32]mirror.PartitionStatus, error) {
	own := map[int32]string{}
	st := map[int32]mirror.PartitionStatus{}
	for _, d := range ds {
		p, err := d.status()
		if err != nil {
			return nil, nil, err
		}
		for _, s := range p.Partitions {
			if o, ok := own[s.Partition]; ok {
				return nil, nil, fmt.Errorf("partition %d run by %s and %s", s.Partition, o, d.name)
			}
			if s.Owner != d.name {
				return nil, nil, fmt.Errorf("partition %d of %s shows owner %q", s.Partition, d.name, s.Owner)
			}
			own[s.Partition], st[s.Partition] = d.name, s
		}
	}
	return own, st, nil
}

func TestFleetBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	modes := []string{"batch"}
	if os.Getenv("STRAIT_LONG") != "" {
		modes = append(modes, "record")
	}
	bin := binBuild(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { fleetRun(t, bin, mode) })
	}
}

func fleetRun(t *testing.T, bin, mode string) {
	// The fleet runs 3 s sessions, under Kafka's 6 s default minimum.
	east, west := binBroker(t, bin, t.TempDir(), "--group-min-session-timeout", "1s"), binBroker(t, bin, t.TempDir(), "--group-min-session-timeout", "1s")
	cfg := filepath.Join(t.TempDir(), "fleet.yaml")
	body := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: kafka, interval: 500ms}
pipelines:
  - name: fleet
    source: east
    destination: west
    topics: {include: [%q]}
    mode: %s
    refresh: 500ms
workers:
  group: e2e-fleet
  cluster: west
  session_timeout: 3s
  rebalance_timeout: 10s
  heartbeat_interval: 500ms
`, east, west, fleetTopic, mode)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := crashClient(t, east, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if _, err := kadm.NewClient(src).CreateTopic(ctx, fleetPartitions, -1, nil, fleetTopic); err != nil {
		t.Fatal(err)
	}

	// A steady keyed stream: one record per partition every 40 ms.
	sctx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			for p := int32(0); p < fleetPartitions; p++ {
				src.Produce(sctx, &kgo.Record{Topic: fleetTopic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i%31)),
					Value: []byte(fmt.Sprintf("%d/%d", p, i))}, nil)
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stopStream(); <-streamDone }()

	a, b, c := fleetStart(t, bin, cfg, "a"), fleetStart(t, bin, cfg, "b"), fleetStart(t, bin, cfg, "c")
	shared := func(own map[int32]string, ds ...*fleetDaemon) error {
		{
			if len(own) != fleetPartitions {
				return fmt.Errorf("%d of %d partitions owned", len(own), fleetPartitions)
			}
			count := map[string]int{}
			for _, d := range own {
				count[d]++
			}
			for _, d := range ds {
				if count[d.name] == 0 {
					return fmt.Errorf("%s owns nothing (%v)", d.name, count)
				}
			}
			return nil
		}
	}
	settled := func(ds ...*fleetDaemon) func() error {
		return func() error {
			own, _, err := fleetOwners(ds)
			if err != nil {
				return err
			}
			return shared(own, ds...)
		}
	}
	binWait(t, 60*time.Second, "three daemons sharing every partition", settled(a, b, c))

	// kill -9: c's partitions are owned again within the session timeout + 5s.
	_, before, _ := fleetOwners([]*fleetDaemon{c})
	_ = c.cmd.Process.Kill()
	<-c.done
	killed := time.Now()
	binWait(t, fleetSession+5*time.Second, "c's partitions owned again", settled(a, b))
	t.Logf("kill -9: %d partitions owned again after %v", len(before), time.Since(killed).Round(10*time.Millisecond))

	// A fourth joins: partitions that stay keep their task and advance.
	first, start, err := fleetOwners([]*fleetDaemon{a, b})
	if err != nil {
		t.Fatal(err)
	}
	d := fleetStart(t, bin, cfg, "d")
	joined := time.Now()
	last := start
	moved := map[int32]bool{}
	binWait(t, 60*time.Second, "d owning partitions", func() error {
		own, st, err := fleetOwners([]*fleetDaemon{a, b, d})
		if err != nil {
			return err
		}
		for p, s := range st {
			if own[p] != first[p] || moved[p] {
				moved[p] = true
				continue
			}
			if l, ok := last[p]; ok && s.RecordsTotal < l.RecordsTotal {
				// A new task: revoked and given back between two
				// samples, so it moved (twice).
				moved[p] = true
				continue
			}
			last[p] = s
		}
		return shared(own, a, b, d)
	})
	t.Logf("a fourth daemon: settled after %v, %d partitions moved", time.Since(joined).Round(10*time.Millisecond), len(moved))
	if len(moved) == 0 || len(moved) == fleetPartitions {
		t.Errorf("%d partitions moved to the fourth daemon, want some but not all", len(moved))
	}
	time.Sleep(time.Second)
	_, after, err := fleetOwners([]*fleetDaemon{a, b, d})
	if err != nil {
		t.Fatal(err)
	}
	for p, s := range start {
		if moved[p] {
			continue
		}
		if after[p].SourceOffset <= s.SourceOffset {
			t.Errorf("partition %d stayed on %s but did not advance (%d)", p, first[p], s.SourceOffset)
		}
	}

	// A zombie: b stopped for twice the session timeout, then continued.
	_ = b.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(2 * fleetSession)
	_ = b.cmd.Process.Signal(syscall.SIGCONT)
	binWait(t, 30*time.Second, "b logging its fence", func() error {
		if l := b.logs.String(); strings.Contains(l, "fenced") && strings.Contains(l, "rejoining") {
			return nil
		}
		return errors.New("no fence and rejoin in b's log")
	})
	binWait(t, 60*time.Second, "b back in the fleet", settled(a, b, d))

	// The end: every destination partition equals its source.
	stopStream()
	<-streamDone
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(src)
	ends, err := adm.ListEndOffsets(ctx, fleetTopic)
	if err != nil {
		t.Fatal(err)
	}
	binWait(t, 60*time.Second, "the fleet caught up", func() error {
		_, st, err := fleetOwners([]*fleetDaemon{a, b, d})
		if err != nil {
			return err
		}
		var behind int64
		ends.Each(func(o kadm.ListedOffset) { behind += o.Offset - st[o.Partition].SourceOffset })
		if behind != 0 {
			return fmt.Errorf("%d records behind", behind)
		}
		return nil
	})
	for _, x := range []*fleetDaemon{a, b, d} {
		_ = x.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, x := range []*fleetDaemon{a, b, d} {
		<-x.done
	}
	for p := int32(0); p < fleetPartitions; p++ {
		s, dst := fleetConsume(t, east, p), fleetConsume(t, west, p)
		if len(s) != len(dst) {
			t.Fatalf("partition %d: %d records on the source, %d on the destination", p, len(s), len(dst))
		}
		for i := range s {
			if !bytes.Equal(s[i].Key, dst[i].Key) || !bytes.Equal(s[i].Value, dst[i].Value) {
				t.Fatalf("partition %d record %d: %q=%q on the source, %q=%q on the destination", p, i, s[i].Key, s[i].Value, dst[i].Key, dst[i].Value)
			}
		}
	}
}

// fleetConsume reads a partition of the fleet topic to its end offset.
func fleetConsume(t *testing.T, addr string, p int32) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	cl := crashClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{fleetTopic: {p: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, fleetTopic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(fleetTopic, p)
	var out []*kgo.Record
	for next := int64(0); next < o.Offset; {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if idle {
			t.Fatalf("reading %s partition %d: stuck at %d of %d", addr, p, next, o.Offset)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < o.Offset {
				out = append(out, r)
			}
			next = r.Offset + 1
		})
	}
	return out
}
