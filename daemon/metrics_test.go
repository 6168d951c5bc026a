package daemon

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/mirror"
)

// lagSeries matches a per-partition lag series and captures its topic and
// partition labels (the exporter sorts labels by name).
var lagSeries = regexp.MustCompile(`(?m)^strait_mirror_lag\{[^}]*partition="(\d+)",pipeline="one",topic="([^"]+)"`)

// TestMetricsEveryPartition mirrors more partitions than OpenTelemetry's
// default cardinality limit (2,000 series per instrument) and checks that
// /metrics holds one lag series for each of them, no overflow series, and
// the per-topic and per-pipeline aggregates.
func TestMetricsEveryPartition(t *testing.T) {
	f := newFixture(t, "")
	const topics, parts = 3, 700 // 2,100 + one.a's 2
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.east.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("one.wide%d", i)
	}
	rs, err := kadm.NewClient(cl).CreateTopics(context.Background(), parts, -1, nil, names...)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Error(); err != nil {
		t.Fatal(err)
	}
	want := topics*parts + 2
	waitFor(t, 60*time.Second, "every task running", func() bool {
		p, ok := f.pipeline("one")
		if !ok || len(p.Partitions) != want {
			return false
		}
		for _, s := range p.Partitions {
			if s.State != mirror.StateRunning {
				return false
			}
		}
		return true
	})

	code, body := f.get("/metrics", nil)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	if strings.Contains(body, "otel_metric_overflow") {
		t.Errorf("metrics hold an overflow series")
	}
	seen := map[string]int{}
	for _, m := range lagSeries.FindAllStringSubmatch(body, -1) {
		seen[m[2]+"/"+m[1]]++
	}
	if len(seen) != want {
		t.Errorf("%d partitions have a lag series, want %d", len(seen), want)
	}
	for _, n := range names {
		for p := range parts {
			if c := seen[fmt.Sprintf("%s/%d", n, p)]; c != 1 {
				t.Fatalf("%s/%d has %d lag series, want 1", n, p, c)
			}
		}
	}
	for _, n := range names {
		if !strings.Contains(body, fmt.Sprintf(`strait_mirror_topic_lag{pipeline="one",topic=%q}`, n)) {
			t.Errorf("no per-topic lag for %s", n)
		}
	}
	for _, s := range []string{`strait_mirror_pipeline_lag{pipeline="one"} 0`,
		`strait_mirror_pipeline_records_total{pipeline="one"} 100`,
		fmt.Sprintf(`strait_mirror_pipeline_partitions{pipeline="one",state="running"} %d`, want)} {
		if !strings.Contains(body, s) {
			t.Errorf("metrics lack %q", s)
		}
	}
}
