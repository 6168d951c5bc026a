package mirror

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// TestGroupSync: a group's committed source offsets show up on the
// destination, translated, within two sync intervals.
func TestGroupSync(t *testing.T) {
	src := startCluster(t, t.TempDir(), "", 1)
	defer src.Close()
	dst := startCluster(t, t.TempDir(), "", 1)
	defer dst.Close()
	createTopic(t, client(t, src.Addrs()), "gs", 1, nil)
	produceData(t, producer(t, src.Addrs(), kgo.ZstdCompression()), "gs", 1, 100, kgo.ZstdCompression())
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "gs")
	cfg.Pipelines[0].Sync.Groups = []string{"billing-.*"}
	cfg.Pipelines[0].Sync.Interval = pipelines.Duration(500 * time.Millisecond)
	e, stop := runEngine(t, cfg, Options{})
	defer stop()
	waitFor(t, 30*time.Second, "catch up", func() bool { return caughtUp(e, 1) })
	sadm := kadm.NewClient(client(t, src.Addrs()))
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "gs", Partition: 0, At: 60, LeaderEpoch: -1})
	if _, err := sadm.CommitOffsets(context.Background(), "billing-1", os); err != nil {
		t.Fatal(err)
	}
	if _, err := sadm.CommitOffsets(context.Background(), "other", os); err != nil {
		t.Fatal(err)
	}
	if d, _, ok := e.Translate("east-to-west", tp("gs", 0), 60); !ok || d != "gs" {
		t.Fatalf("translate: %q %v", d, ok)
	}
	dadm := kadm.NewClient(client(t, dst.Addrs()))
	waitFor(t, 30*time.Second, "group offsets on the destination", func() bool {
		got, err := dadm.FetchOffsets(context.Background(), "billing-1")
		if err != nil {
			return false
		}
		o, ok := got.Lookup("gs", 0)
		return ok && o.At == 60
	})
	if got, err := dadm.FetchOffsets(context.Background(), "other"); err == nil {
		if o, ok := got.Lookup("gs", 0); ok && o.At >= 0 {
			t.Fatalf("group not named by sync.groups was synced: %+v", o)
		}
	}
}

// TestTooLarge: a batch the destination refuses as too large auto-pauses
// the partition with the reason; after the destination allows it and an
// operator resumes, the partition catches up.
func TestTooLarge(t *testing.T) {
	src := startCluster(t, t.TempDir(), "", 1)
	defer src.Close()
	dst := startCluster(t, t.TempDir(), "", 1)
	defer dst.Close()
	createTopic(t, client(t, src.Addrs()), "big", 1, nil)
	small := "2000"
	createTopic(t, client(t, dst.Addrs()), "big", 1, map[string]*string{"max.message.bytes": &small})
	pr := client(t, src.Addrs(), kgo.ProducerLinger(0))
	val := make([]byte, 5000)
	rand.Read(val) // incompressible: the batch stays above 2000 bytes
	if err := pr.ProduceSync(context.Background(), &kgo.Record{Topic: "big", Value: val}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "big")
	cfg.Pipelines[0].Sync.TopicConfigs = false
	e, stop := runEngine(t, cfg, Options{AutoPauseRetry: time.Hour})
	defer stop()
	waitFor(t, 30*time.Second, "auto-pause", func() bool {
		s, _ := partStatus(e, "big", 0)
		return s.State == stateAutoPaused && strings.Contains(s.PausedReason, "too large")
	})
	big := "1048588"
	if _, err := kadm.NewClient(client(t, dst.Addrs())).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &big}}, "big"); err != nil {
		t.Fatal(err)
	}
	if err := e.Resume("east-to-west", "big", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "copied after resume", func() bool { return endOffsets(t, dst.Addrs(), "big")[0] == 1 })
}

// TestReload: an unchanged pipeline keeps running untouched, an added one
// starts, a removed one stops.
func TestReload(t *testing.T) {
	src := startCluster(t, t.TempDir(), "", 1)
	defer src.Close()
	dst := startCluster(t, t.TempDir(), "", 1)
	defer dst.Close()
	admin := client(t, src.Addrs())
	createTopic(t, admin, "ra", 1, nil)
	createTopic(t, admin, "rb", 1, nil)
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "ra")
	e, stop := runEngine(t, cfg, Options{})
	defer stop()
	waitFor(t, 30*time.Second, "ra running", func() bool { return caughtUp(e, 1) })
	before := e.run("east-to-west")

	cfg2 := *cfg
	p2 := *cfg.Pipelines[0]
	p2.Name, p2.Topics.Include, p2.Rename = "second", []string{"rb"}, "copy.{topic}"
	cfg2.Pipelines = []*pipelines.Pipeline{cfg.Pipelines[0], &p2}
	if err := e.Reload(&cfg2); err != nil {
		t.Fatal(err)
	}
	if e.run("east-to-west") != before {
		t.Fatal("unchanged pipeline was restarted")
	}
	produceData(t, producer(t, src.Addrs(), kgo.NoCompression()), "rb", 1, 10, kgo.NoCompression())
	waitFor(t, 30*time.Second, "added pipeline copies", func() bool { return endOffsets(t, dst.Addrs(), "copy.rb")[0] == 10 })

	cfg3 := cfg2
	cfg3.Pipelines = []*pipelines.Pipeline{&p2}
	if err := e.Reload(&cfg3); err != nil {
		t.Fatal(err)
	}
	if e.run("east-to-west") != nil || len(e.Status()) != 1 {
		t.Fatal("removed pipeline still runs")
	}
	bad := cfg3
	bad.Pipelines = []*pipelines.Pipeline{{Name: "x", Source: "nowhere", Destination: "west"}}
	if err := e.Reload(&bad); err == nil {
		t.Fatal("reload with an unknown cluster worked")
	}
}
