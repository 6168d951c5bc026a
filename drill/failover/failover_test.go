package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/checkpoint"
	"strait/pipelines"
)

const topic = "orders"

type pair struct {
	east, west *brokerd.Cluster
	cfg        *pipelines.Config
}

func startPair(t *testing.T, ckpt string) *pair {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	east, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "east"), Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = east.Close() })
	west, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "west"), Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = west.Close() })
	if ckpt == "" {
		ckpt = "{store: kafka, interval: 200ms}"
	}
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: %s
pipelines:
  - name: ew
    source: east
    destination: west
    topics: {include: [%q]}
    refresh: 500ms
`, east.Addrs()[0], west.Addrs()[0], ckpt, topic)
	path := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{east: east, west: west, cfg: cfg}
}

func client(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// seed creates the topic with 2 partitions on east and produces n records.
func seed(t *testing.T, p *pair, n int) {
	t.Helper()
	ctx := context.Background()
	cl := client(t, p.east.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// commit commits offsets for group on east as a plain admin commit.
func commit(t *testing.T, p *pair, group string, at map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for part, o := range at {
		os.Add(kadm.Offset{Topic: topic, Partition: part, At: o, LeaderEpoch: -1})
	}
	resp, err := kadm.NewClient(client(t, p.east.Addrs())).CommitOffsets(context.Background(), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot is every group's state and commits, and every topic's ends, on
// one cluster: what a dry run must leave as it was.
func snapshot(t *testing.T, addrs []string) string {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(client(t, addrs))
	var b strings.Builder
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Sorted() {
		d, _ := adm.DescribeGroups(ctx, g.Group)
		offs, _ := adm.FetchOffsets(ctx, g.Group)
		fmt.Fprintf(&b, "group %s %s %d members\n", g.Group, d[g.Group].State, len(d[g.Group].Members))
		for _, o := range offs.Sorted() {
			fmt.Fprintf(&b, "  %s/%d=%d\n", o.Topic, o.Partition, o.At)
		}
	}
	topics, _ := adm.ListTopics(ctx)
	ends, _ := adm.ListEndOffsets(ctx, topics.Names()...)
	var lines []string
	ends.Each(func(o kadm.ListedOffset) {
		lines = append(lines, fmt.Sprintf("end %s/%d=%d", o.Topic, o.Partition, o.Offset))
	})
	sort.Strings(lines)
	return b.String() + strings.Join(lines, "\n")
}

// TestPlannedFailover: the pipeline drains, a static member that never
// left is removed, the group's commits move exactly; a second run changes
// nothing; a dry run before touched nothing on either cluster.
func TestPlannedFailover(t *testing.T) {
	p := startPair(t, "")
	seed(t, p, 200)
	ctx := context.Background()
	commit(t, p, "plain", map[int32]int64{0: 40, 1: 60})

	// A static member joins, commits and "crashes" (Close does not leave a
	// group for a static member): the group stays Stable on east.
	static := client(t, p.east.Addrs(), kgo.ConsumerGroup("static"), kgo.ConsumeTopics(topic),
		kgo.InstanceID("app-1"), kgo.SessionTimeout(2*time.Minute), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 30 {
		fs := static.PollRecords(ctx, 30-got)
		recs := fs.Records()
		got += len(recs)
		if err := static.CommitRecords(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	staticAt, err := kadm.NewClient(client(t, p.east.Addrs())).FetchOffsets(ctx, "static")
	if err != nil {
		t.Fatal(err)
	}
	static.Close()

	// Dry run before anything was mirrored: nothing changes anywhere.
	eastBefore, westBefore := snapshot(t, p.east.Addrs()), snapshot(t, p.west.Addrs())
	rep, err := Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", Planned: true, DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !rep.DryRun || len(rep.Groups) != 2 {
		t.Fatalf("dry run report %+v", rep)
	}
	if a, b := snapshot(t, p.east.Addrs()), snapshot(t, p.west.Addrs()); a != eastBefore || b != westBefore {
		t.Fatalf("dry run changed the clusters:\n%s\n---\n%s\n=== west before\n%s\n--- after\n%s", eastBefore, a, westBefore, b)
	}

	w, err := StartEngine(ctx, p.cfg, "ew", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(ctx)
	rep, err = Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", Planned: true, Writer: w, GroupTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("failover: %v (%+v)", err, rep)
	}
	if !rep.Identity.Recorded || rep.Identity.Source != p.east.ClusterID() || rep.Identity.Dest != p.west.ClusterID() {
		t.Errorf("identity %+v", rep.Identity)
	}
	for _, part := range rep.Partitions {
		if part.RPORecords != 0 || part.Mirrored != 100 || part.DestEnd != 100 {
			t.Errorf("partition %+v", part)
		}
	}
	want := map[string]map[int32]int64{"plain": {0: 40, 1: 60}, "static": {}}
	staticAt.Each(func(o kadm.OffsetResponse) { want["static"][o.Partition] = o.At })
	westAdm := kadm.NewClient(client(t, p.west.Addrs()))
	for _, g := range rep.Groups {
		if g.Group == "static" && !reflect.DeepEqual(g.Removed, []string{"app-1"}) {
			t.Errorf("static members removed: %v", g.Removed)
		}
		offs, err := westAdm.FetchOffsets(ctx, g.Group)
		if err != nil {
			t.Fatal(err)
		}
		have := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { have[o.Partition] = o.At })
		if !reflect.DeepEqual(have, want[g.Group]) {
			t.Errorf("group %s on west: %v, want %v", g.Group, have, want[g.Group])
		}
		for _, o := range g.Offsets {
			if o.Action != "committed" || o.Redeliveries != 0 {
				t.Errorf("group %s offset %+v", g.Group, o)
			}
		}
	}

	// Again: idempotent.
	rep, err = Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", Planned: true})
	if err != nil {
		t.Fatalf("second failover: %v", err)
	}
	for _, g := range rep.Groups {
		for _, o := range g.Offsets {
			if o.Action != "unchanged" {
				t.Errorf("second run: group %s offset %+v", g.Group, o)
			}
		}
	}
}

// TestUnplannedFailover: east is gone; the groups keep what the mirror's
// sync committed and the report says the source is unreachable.
func TestUnplannedFailoverSourceGone(t *testing.T) {
	p := startPair(t, "")
	p.cfg.Pipelines[0].Sync.Groups = []string{".*"}
	seed(t, p, 100)
	commit(t, p, "g", map[int32]int64{0: 10, 1: 20})
	ctx := context.Background()
	w, err := StartEngine(ctx, p.cfg, "ew", nil)
	if err != nil {
		t.Fatal(err)
	}
	westAdm := kadm.NewClient(client(t, p.west.Addrs()))
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, _ := westAdm.FetchOffsets(ctx, "g")
		if o, ok := offs.Lookup(topic, 1); ok && o.At == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("group sync did not commit g on west")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p.east.Close()
	rep, err := Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", SourceTimeout: time.Second})
	if err != nil {
		t.Fatalf("%v (%+v)", err, rep)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].From != "destination sync" || len(rep.Groups[0].Offsets) != 2 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	for _, part := range rep.Partitions {
		if part.SourceEnd != -1 || part.RPORecords != -1 || part.RPOMS < 0 || part.Mirrored != 50 {
			t.Errorf("partition %+v", part)
		}
	}
}

// TestIdentityRefused: checkpoints recorded for other clusters are refused
// unless forced.
func TestIdentityRefused(t *testing.T) {
	p := startPair(t, fmt.Sprintf("{store: file, dir: %q}", t.TempDir()))
	seed(t, p, 10)
	ctx := context.Background()
	st, err := checkpoint.Open(ctx, p.cfg.Checkpoints, client(t, p.west.Addrs()))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.SaveClusters(ctx, st, "ew", checkpoint.Clusters{Source: "someone-else", Dest: p.west.ClusterID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", Planned: true}); !errors.Is(err, ErrIdentity) {
		t.Fatalf("err = %v, want ErrIdentity", err)
	}
	if _, err := Failover(ctx, Options{Config: p.cfg, Pipeline: "ew", Planned: true, Force: true, DryRun: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if _, err := Failover(ctx, Options{Config: p.cfg, Pipeline: "nope"}); !errors.Is(err, ErrInput) {
		t.Fatalf("unknown pipeline: %v", err)
	}
}
