package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// TestContinuousAudit mirrors a topic with every span audited, checks the
// audit confirms every record, then has a stranger write into the
// destination and checks that the audit reports it as extra and that
// completeness falls below 1.
func TestContinuousAudit(t *testing.T) {
	for _, mode := range []pipelines.Mode{pipelines.ModeBatch, pipelines.ModeRecord} {
		t.Run(string(mode), func(t *testing.T) {
			src, dst := clusterPair(t)
			scl, dcl := client(t, src.Addrs()), client(t, dst.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			createTopic(t, scl, "orders", 2, nil)
			produceData(t, producer(t, src.Addrs(), kgo.NoCompression()), "orders", 2, 300, kgo.NoCompression())
			cfg := config(t, src.Addrs(), dst.Addrs(), mode, "orders")
			cfg.Pipelines[0].Audit = pipelines.Audit{Bucket: pipelines.Duration(150 * time.Millisecond), Sample: 1}
			e, _ := runEngine(t, cfg, Options{})
			waitFor(t, 60*time.Second, "every record audited", func() bool {
				st, err := e.Audit("east-to-west")
				return err == nil && st.Totals.Compared == 600 && st.Totals.Confirmed == 600
			})
			st, _ := e.Audit("east-to-west")
			if st.Completeness != 1 || st.Totals.Differences() != 0 || !st.Enabled || len(st.Partitions) != 2 {
				t.Fatalf("clean mirror: %+v", st)
			}
			if st.RPO.Records != 0 {
				t.Fatalf("caught up, yet RPO %+v", st.RPO)
			}

			// A stranger appends to partition 0 of the destination; the
			// mirror's next records land after it.
			if err := dcl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("stranger")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p := producer(t, src.Addrs(), kgo.NoCompression())
			for i := 0; i < 20; i++ {
				if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Partition: 0, Value: fmt.Appendf(nil, "after-%d", i)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 60*time.Second, "the stranger's record reported", func() bool {
				st, err := e.Audit("east-to-west")
				return err == nil && st.Totals.Extra == 1
			})
			st, _ = e.Audit("east-to-west")
			if st.Completeness >= 1 {
				t.Fatalf("completeness %v after a difference", st.Completeness)
			}
			var found bool
			for _, pa := range st.Partitions {
				if pa.Partition == 0 && len(pa.LastDiffs) > 0 && pa.LastDiffs[0].DestOffset == 300 {
					found = true
				}
			}
			if !found {
				t.Fatalf("the extra record at destination offset 300 is not named: %+v", st.Partitions)
			}
			if st.Totals.Missing != 0 || st.Totals.Altered != 0 {
				t.Fatalf("a stranger's record is extra only: %+v", st.Totals)
			}
		})
	}
}

func TestAuditUnknownPipeline(t *testing.T) {
	src, dst := clusterPair(t)
	e, _ := runEngine(t, config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "orders"), Options{})
	if _, err := e.Audit("nope"); err == nil {
		t.Fatal("no error for an unknown pipeline")
	}
}
