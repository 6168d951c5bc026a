package mirror

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"strait/pipelines"
)

// TestGroupSync: a group's committed source offsets show up on the
// destination, translated, within two sync intervals.
func TestGroupSync(t *testing.T) {
	src, dst := clusterPair(t)
	createTopic(t, client(t, src.Addrs()), "gs", 1, nil)
	produceData(t, producer(t, src.Addrs(), kgo.ZstdCompression()), "gs", 1, 100, kgo.ZstdCompression())
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "gs")
	cfg.Pipelines[0].Sync.Groups = []string{"billing-.*"}
	cfg.Pipelines[0].Sync.Interval = pipelines.Duration(500 * time.Millisecond)
	e, stop := runEngine(t, cfg, Options{})
	defer stop()
	waitFor(t, 30*time.Second, "catch up", func() bool { return caughtUp(e, 1) })
	sadm := kadm.NewClient(client(t, src.Addrs()))
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "gs", Partition: 0, At: 60, LeaderEpoch: -1})
	if _, err := sadm.CommitOffsets(context.Background(), "billing-1", commit); err != nil {
		t.Fatal(err)
	}
	if _, err := sadm.CommitOffsets(context.Background(), "other", commit); err != nil {
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
	src, dst := clusterPair(t)
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
		return s.State == StateAutoPaused && strings.Contains(s.PausedReason, "too large")
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
	src, dst := clusterPair(t)
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

// TestActiveActive: two pipelines mirror the same topic name both ways;
// nothing echoes back (batch mode: the engine's own producer ids; record
// mode: the provenance header).
func TestActiveActive(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			east, west := clusterPair(t)
			createTopic(t, client(t, east.Addrs()), "aa", 1, nil)
			createTopic(t, client(t, west.Addrs()), "aa", 1, nil)
			cfg := config(t, east.Addrs(), west.Addrs(), mode, "aa")
			back := *cfg.Pipelines[0]
			back.Name, back.Source, back.Destination = "west-to-east", "west", "east"
			cfg.Pipelines = append(cfg.Pipelines, &back)
			e, stop := runEngine(t, cfg, Options{})
			defer stop()
			produceData(t, producer(t, east.Addrs(), kgo.ZstdCompression()), "aa", 1, 50, kgo.ZstdCompression())
			produceData(t, producer(t, west.Addrs(), kgo.Lz4Compression()), "aa", 1, 30, kgo.Lz4Compression())
			waitFor(t, 30*time.Second, "both directions caught up", func() bool {
				return caughtUp(e, 2) && endOffsets(t, east.Addrs(), "aa")[0] >= 80 && endOffsets(t, west.Addrs(), "aa")[0] >= 80
			})
			// Everything each side wrote was seen by the other pipeline
			// (caught up); an echo would have grown a side past 80.
			if ne, nw := endOffsets(t, east.Addrs(), "aa")[0], endOffsets(t, west.Addrs(), "aa")[0]; ne != 80 || nw != 80 {
				t.Fatalf("east %d, west %d records: want 80 each", ne, nw)
			}
		})
	}
}

// TestMetrics: the documented instruments are recorded with pipeline,
// topic and partition labels.
func TestMetrics(t *testing.T) {
	src, dst := clusterPair(t)
	createTopic(t, client(t, src.Addrs()), "m", 1, nil)
	produceData(t, producer(t, src.Addrs(), kgo.ZstdCompression()), "m", 1, 30, kgo.ZstdCompression())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e, stop := runEngine(t, config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "m"), Options{Meter: mp.Meter("strait/mirror")})
	waitFor(t, 30*time.Second, "catch up", func() bool { return caughtUp(e, 1) })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	stop()
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			seen[m.Name] = true
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "strait.mirror.records" {
				var total int64
				for _, dp := range s.DataPoints {
					if v, ok := dp.Attributes.Value("topic"); !ok || v.AsString() != "m" {
						t.Fatalf("records without topic label: %v", dp.Attributes)
					}
					total += dp.Value
				}
				if total != 30 {
					t.Fatalf("records metric %d, want 30", total)
				}
			}
		}
	}
	for _, name := range []string{"strait.mirror.records", "strait.mirror.bytes", "strait.mirror.lag", "strait.mirror.time_lag", "strait.mirror.paused"} {
		if !seen[name] {
			t.Errorf("metric %s not recorded (have %v)", name, seen)
		}
	}
}

// TestStranger: a record written to a destination partition by someone
// else while the mirror was down fails that partition loudly; the engine
// writes nothing more there.
func TestStranger(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			createTopic(t, client(t, src.Addrs()), "s", 1, nil)
			cfg := config(t, src.Addrs(), dst.Addrs(), mode, "s")
			pr := producer(t, src.Addrs(), kgo.NoCompression())
			produceData(t, pr, "s", 1, 20, kgo.NoCompression())
			e, stop := runEngine(t, cfg, Options{})
			waitFor(t, 30*time.Second, "catch up", func() bool { return caughtUp(e, 1) })
			stop()
			stranger := client(t, dst.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := stranger.ProduceSync(context.Background(), &kgo.Record{Topic: "s", Value: []byte("not from the source")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			produceData(t, pr, "s", 1, 20, kgo.NoCompression())
			e, stop = runEngine(t, cfg, Options{})
			defer stop()
			waitFor(t, 30*time.Second, "failed state", func() bool {
				s, _ := partStatus(e, "s", 0)
				return s.State == StateFailed && strings.Contains(s.PausedReason, "another producer")
			})
			if n := endOffsets(t, dst.Addrs(), "s")[0]; n != 21 {
				t.Fatalf("destination has %d records, want 21 (nothing written after the stranger)", n)
			}
		})
	}
}

// TestActiveActiveRestart: with loop protection on, local producers write
// the destination partitions too. Records written locally while the mirror
// was down sit after its checkpoint on the destination; a restart must take
// them for the local writes they are, not for a stranger, and carry on
// without an echo or a duplicate in either direction.
func TestActiveActiveRestart(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			east, west := clusterPair(t)
			createTopic(t, client(t, east.Addrs()), "aa", 1, nil)
			createTopic(t, client(t, west.Addrs()), "aa", 1, nil)
			cfg := config(t, east.Addrs(), west.Addrs(), mode, "aa")
			cfg.Pipelines[0].LoopProtection = true
			back := *cfg.Pipelines[0]
			back.Name, back.Source, back.Destination = "west-to-east", "west", "east"
			cfg.Pipelines = append(cfg.Pipelines, &back)
			both := func(n int64) func() bool {
				return func() bool {
					return endOffsets(t, east.Addrs(), "aa")[0] >= n && endOffsets(t, west.Addrs(), "aa")[0] >= n
				}
			}

			e, stop := runEngine(t, cfg, Options{})
			produceData(t, producer(t, east.Addrs(), kgo.ZstdCompression()), "aa", 1, 50, kgo.ZstdCompression())
			produceData(t, producer(t, west.Addrs(), kgo.Lz4Compression()), "aa", 1, 30, kgo.Lz4Compression())
			waitFor(t, 30*time.Second, "both directions caught up", func() bool { return caughtUp(e, 2) && both(80)() })
			stop()

			// Local writes on both sides while the mirror is down.
			produceData(t, producer(t, east.Addrs(), kgo.NoCompression()), "aa", 1, 20, kgo.NoCompression())
			produceData(t, producer(t, west.Addrs(), kgo.NoCompression()), "aa", 1, 10, kgo.NoCompression())

			e, stop = runEngine(t, cfg, Options{})
			defer stop()
			waitFor(t, 30*time.Second, "both directions caught up after restart", func() bool { return caughtUp(e, 2) && both(110)() })
			for _, ps := range e.Status() {
				for _, p := range ps.Partitions {
					if p.State != StateRunning || p.LastError != "" {
						t.Fatalf("%s %s[%d]: state %s, error %q", ps.Name, p.Topic, p.Partition, p.State, p.LastError)
					}
				}
			}
			if ne, nw := endOffsets(t, east.Addrs(), "aa")[0], endOffsets(t, west.Addrs(), "aa")[0]; ne != 110 || nw != 110 {
				t.Fatalf("east %d, west %d records: want 110 each", ne, nw)
			}
		})
	}
}
