package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/mirror"
	"strait/mirror/audit"
	"strait/pipelines"
)

// TestAudit mirrors two topics between brokerd clusters in each mode, checks
// that the audit finds them identical, then makes one difference of each
// kind on the destination and checks that the audit names each one with
// its offsets and exits 1.
func TestAudit(t *testing.T) {
	for _, mode := range []string{"batch", "record"} {
		t.Run(mode, func(t *testing.T) { auditScenario(t, mode) })
	}
}

func auditScenario(t *testing.T, mode string) {
	ctx := context.Background()
	srcAddrs, dstAddrs := testClusters(t, "brokerd")
	src, err := kgo.NewClient(kgo.SeedBrokers(srcAddrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := kgo.NewClient(kgo.SeedBrokers(dstAddrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	const n = 200
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var rs []*kgo.Record
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"orders", 0}, {"orders", 1}, {"other", 0}} {
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: tp.topic, Partition: tp.part, Key: fmt.Appendf(nil, "k%d", i%13),
				Value:     fmt.Appendf(nil, "%s-%d-%d", tp.topic, tp.part, i),
				Headers:   []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
				Timestamp: base.Add(time.Duration(i) * time.Second)}
			if i%10 == 9 {
				r.Value = nil // tombstones are records too
			}
			rs = append(rs, r)
		}
	}
	if err := src.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 100ms}
pipelines:
  - name: east-to-west
    source: east
    destination: west
    topics: {include: ["orders", "other"]}
    mode: %s
`, srcAddrs[0], dstAddrs[0], filepath.Join(dir, "ckpt"), mode)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := mirror.New(cfg, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	poll(t, "the mirror to catch up", func() error {
		for _, p := range eng.Status() {
			if len(p.Partitions) != 3 {
				return fmt.Errorf("%d partitions", len(p.Partitions))
			}
			for _, s := range p.Partitions {
				if s.SourceOffset != n {
					return fmt.Errorf("%s/%d at %d", s.Topic, s.Partition, s.SourceOffset)
				}
			}
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	run := func() (*audit.Report, error) {
		var out, errb bytes.Buffer
		err := auditCmd(ctx, []string{"--config", cfgPath, "--pipeline", "east-to-west", "--json"}, &out, &errb, time.Now())
		var rep audit.Report
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("audit output %q (stderr %q, err %v): %v", out.String(), errb.String(), err, jerr)
		}
		return &rep, err
	}
	rep, err := run()
	if err != nil {
		t.Fatalf("audit of a clean mirror: %v (%+v)", err, rep)
	}
	if rep.Total.Compared != 3*n || rep.Total.Confirmed != 3*n || rep.Completeness != 1 || !rep.Clean() {
		t.Fatalf("clean mirror: %+v", rep.Total)
	}
	// One pass over each log: about twice the bytes of one side.
	if rep.BytesRead <= 0 {
		t.Fatalf("bytes read %d", rep.BytesRead)
	}

	// Extra: a stranger appends to orders/0. Missing: the head of
	// orders/1 is deleted. Altered: other/0 is re-created and refilled
	// with one value changed.
	if err := dst.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("stranger")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(dst)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 5})
	if dr, err := adm.DeleteRecords(ctx, del); err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	if _, err := adm.DeleteTopics(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	poll(t, "other to be re-created", func() error {
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, "other")
		if err == nil {
			err = resp.Err
		}
		return err
	})
	var refill []*kgo.Record
	for _, r := range rs {
		if r.Topic == "other" {
			c := *r
			c.Headers = append([]kgo.RecordHeader(nil), r.Headers...)
			if strings.HasSuffix(string(r.Value), "-7") {
				c.Value = []byte("rewritten")
			}
			refill = append(refill, &c)
		}
	}
	if err := dst.ProduceSync(ctx, refill...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rep, err = run()
	if exitCode(err) != 1 {
		t.Fatalf("audit with differences: exit %d (%v), want 1", exitCode(err), err)
	}
	want := map[string]audit.Counts{
		"orders/0": {Compared: n, Confirmed: n, Extra: 1},
		"orders/1": {Compared: n, Confirmed: n - 5, Missing: 5},
		"other/0":  {Compared: n, Confirmed: n - 1, Altered: 1},
	}
	wantFirst := map[string]audit.Diff{
		"orders/0": {Kind: audit.Extra, SourceOffset: -1, DestOffset: n},
		"orders/1": {Kind: audit.Missing, SourceOffset: 0, DestOffset: 0},
		"other/0":  {Kind: audit.Altered, SourceOffset: 7, DestOffset: 7},
	}
	for _, p := range rep.Partitions {
		k := fmt.Sprintf("%s/%d", p.Topic, p.Partition)
		if p.Counts != want[k] {
			t.Errorf("%s: %+v, want %+v", k, p.Counts, want[k])
		}
		if len(p.Diffs) == 0 || p.Diffs[0] != wantFirst[k] {
			t.Errorf("%s: diffs %+v, want first %+v", k, p.Diffs, wantFirst[k])
		}
	}
	if len(rep.Partitions) != 3 {
		t.Fatalf("%d partitions in the report", len(rep.Partitions))
	}
	// The table names the kinds too.
	var out bytes.Buffer
	if err := auditCmd(ctx, []string{"--config", cfgPath, "--pipeline", "east-to-west", "--topics", "orders"}, &out, &out, time.Now()); exitCode(err) != 1 {
		t.Fatalf("table form: %v\n%s", err, out.String())
	}
	for _, s := range []string{"extra", "missing", "source -  dest 200", "DIFFERENCES FOUND"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table output lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "other") {
		t.Errorf("--topics orders still audited other:\n%s", out.String())
	}
}

func TestAuditUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"--pipeline", "p"},
		{"--config", "x.yaml"},
		{"--config", "x.yaml", "--pipeline", "p", "--since", "yesterday"},
		{"--config", "x.yaml", "--pipeline", "p", "--topics", "("},
		{"--config", "x.yaml", "--pipeline", "p", "--show", "-1"},
	} {
		var out bytes.Buffer
		if err := auditCmd(ctx, args, &out, &out, time.Now()); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if got, err := parseSince("1h", now); err != nil || !got.Equal(now.Add(-time.Hour)) {
		t.Errorf("parseSince(1h) = %v, %v", got, err)
	}
	if got, err := parseSince("2025-01-01T00:00:00Z", now); err != nil || got.Year() != 2025 || got.Day() != 1 {
		t.Errorf("parseSince(RFC 3339) = %v, %v", got, err)
	}
}
