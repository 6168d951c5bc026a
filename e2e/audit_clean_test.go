package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
	"strait/mirror"
	"strait/mirror/audit"
	"strait/pipelines"
)

// The clean-mirror audit's source: a plain, a compacted and a
// transactional topic, two partitions each.
const (
	cleanPlain   = "aud.plain"
	cleanCompact = "aud.compact"
	cleanTxn     = "aud.txn"
	cleanParts   = 2
)

// TestAuditCleanMirror is issue 16's first acceptance line: a source with
// a plain topic, a compacted topic whose log has holes, and a
// transactional topic with committed and aborted transactions, mirrored
// in batch and in record mode until caught up; the on-demand audit (in
// process, and the binary's `strait audit --json`) finds every record, no difference, and reads
// each log once: the bytes it fetched from each side are within 1.2× of
// the record batches the partitions hold. 30,000 records; STRAIT_LONG=1
// runs 1,000,000.
func TestAuditCleanMirror(t *testing.T) {
	n := 30_000
	segment := 64 << 10
	if os.Getenv("STRAIT_LONG") != "" {
		n, segment = 1_000_000, 1<<20
	}
	ctx := context.Background()
	started := time.Now()
	east, eastDir := cleanCluster(t)
	west, westDir := cleanCluster(t)

	src := cleanClient(t, east.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000),
		kgo.ProducerBatchMaxBytes(16<<10), // well under the compacted topic's segments
		// Uncompressed, so the compacted topic always fills several
		// segments: compressed, how well the batching of a given run
		// compresses decided whether any segment rolled, and the active
		// segment is never cleaned.
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(src)
	nPlain, nCompact := n*4/10, n*3/10
	nTxn := n - nPlain - nCompact
	for topic, cfgs := range map[string]map[string]*string{
		cleanPlain: nil,
		cleanTxn:   nil,
		cleanCompact: {
			"cleanup.policy":            kadm.StringPtr("compact"),
			"segment.bytes":             kadm.StringPtr(fmt.Sprint(segment)),
			"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		},
	} {
		if resp, err := adm.CreateTopic(ctx, cleanParts, 1, cfgs, topic); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, resp.Err)
		}
	}

	// Plain and compacted: keyed records with headers; on the compacted
	// topic each key is written 20 times.
	produce := func(r *kgo.Record) {
		src.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce to %s: %v", r.Topic, err)
			}
		})
	}
	pad := strings.Repeat("v", 64)
	for i := 0; i < nPlain; i++ {
		produce(&kgo.Record{Topic: cleanPlain, Partition: int32(i % cleanParts), Key: fmt.Appendf(nil, "p%d", i),
			Value: fmt.Appendf(nil, "plain %d %s", i, pad), Headers: []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}})
	}
	keys := max(nCompact/20, cleanParts)
	for i := 0; i < nCompact; i++ {
		produce(&kgo.Record{Topic: cleanCompact, Partition: int32(i % cleanParts), Key: fmt.Appendf(nil, "c%d", i%keys),
			Value: fmt.Appendf(nil, "compact %d %s", i, pad), Headers: []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}})
	}
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	compactLog := cleanLogBytes(t, eastDir, cleanCompact)

	// Transactional: transactions of 500 records over both partitions,
	// every third one aborted.
	txp := cleanClient(t, east.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID("audit-clean"), kgo.ProducerLinger(5*time.Millisecond))
	const txnSize = 500
	committed := 0
	for at, txn := 0, 0; at < nTxn; txn++ {
		if err := txp.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		size := min(txnSize, nTxn-at)
		for i := at; i < at+size; i++ {
			txp.Produce(ctx, &kgo.Record{Topic: cleanTxn, Partition: int32(i % cleanParts), Key: fmt.Appendf(nil, "t%d", i),
				Value: fmt.Appendf(nil, "txn %d %s", i, pad)}, func(r *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce to %s: %v", r.Topic, err)
				}
			})
		}
		at += size
		if err := txp.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		commit := txn%3 != 2
		if commit {
			committed += size
		}
		if err := txp.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	produced := time.Since(started)

	// Compaction has run once the compacted topic's segments shrank well
	// below what was written, and stopped once they stay put.
	last, stable := compactLog, 0
	cleanWait(t, 3*time.Minute, "compaction of "+cleanCompact, func() error {
		now := cleanLogBytes(t, eastDir, cleanCompact)
		if now == last {
			stable++
		} else {
			last, stable = now, 0
		}
		if now*10 > compactLog*6 || stable < 10 {
			return fmt.Errorf("%d of %d bytes left, unchanged for %d polls", now, compactLog, stable)
		}
		return nil
	})
	compacted := time.Since(started)
	ends, err := adm.ListEndOffsets(ctx, cleanPlain, cleanCompact, cleanTxn)
	if err != nil {
		t.Fatal(err)
	}

	cfgDir := t.TempDir()
	pipeline := func(mode string) string {
		return fmt.Sprintf(`  - name: %[1]s
    source: east
    destination: west
    mode: %[1]s
    rename: "%[1]s.{topic}"
    topics: {include: ["aud\\..*"]}
    sync: {topic_configs: false}
    audit: {disabled: true}
    refresh: 500ms
`, mode)
	}
	yaml := fmt.Sprintf("clusters:\n  east: {bootstrap: [%q]}\n  west: {bootstrap: [%q]}\ncheckpoints: {store: file, dir: %q, interval: 200ms}\npipelines:\n",
		east.Addrs()[0], west.Addrs()[0], t.TempDir()) + pipeline("batch") + pipeline("record")
	if err := os.WriteFile(filepath.Join(cfgDir, "strait.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.Load(cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := mirror.New(cfg, mirror.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	cleanWait(t, 10*time.Minute, "both pipelines to catch up", func() error {
		n := 0
		for _, ps := range e.Status() {
			for _, p := range ps.Partitions {
				end, _ := ends.Lookup(p.Topic, p.Partition)
				if p.State != mirror.StateRunning || p.SourceOffset < end.Offset {
					return fmt.Errorf("%s %s/%d: %s at %d of %d %s", ps.Name, p.Topic, p.Partition, p.State, p.SourceOffset, end.Offset, p.LastError)
				}
				n++
			}
		}
		if n != 2*3*cleanParts {
			return fmt.Errorf("%d partitions mirrored", n)
		}
		return nil
	})
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the engine did not stop")
	}
	mirrored := time.Since(started)
	t.Logf("%d records produced (%d plain, %d compacted over %d keys, %d transactional of which %d committed) in %s; compacted by %s; mirrored in both modes by %s",
		n, nPlain, nCompact, keys, nTxn, committed, produced.Round(time.Millisecond), compacted.Round(time.Millisecond), mirrored.Round(time.Millisecond))

	bin := ""
	if !testing.Short() {
		bin = binBuild(t)
	}
	for _, mode := range []string{"batch", "record"} {
		rep, err := audit.Audit(ctx, cfg, cfg.Pipeline(mode), audit.Options{})
		if err != nil {
			t.Fatalf("%s: audit: %v", mode, err)
		}
		if bin != "" {
			cleanBinaryAgrees(t, bin, cfgDir, mode, rep)
		}
		tot := rep.Total
		if !rep.Clean() || rep.Completeness != 1 || tot.Confirmed != tot.Compared || tot.Pending != 0 || len(rep.Partitions) != 3*cleanParts {
			t.Fatalf("%s: audit of a clean mirror: %.6f complete, %+v over %d partitions", mode, rep.Completeness, tot, len(rep.Partitions))
		}
		var srcLog, dstLog int64
		byTopic := map[string]int64{}
		for _, p := range rep.Partitions {
			if p.Note != "" || p.Differences() != 0 {
				t.Fatalf("%s %s/%d: %+v %s", mode, p.Topic, p.Partition, p.Counts, p.Note)
			}
			byTopic[p.Topic] += p.Compared
			// Holes: the compacted topic's overwritten keys and the
			// transactional topic's markers and aborted records are
			// offsets with nothing to compare.
			if span := p.SourceTo - p.SourceFrom; p.Topic != cleanPlain && p.Compared >= span {
				t.Fatalf("%s %s/%d: %d records compared over offsets %d-%d: no holes", mode, p.Topic, p.Partition, p.Compared, p.SourceFrom, p.SourceTo)
			}
			sl := cleanPartBytes(t, eastDir, p.Topic, p.Partition)
			dl := cleanPartBytes(t, westDir, p.DestTopic, p.Partition)
			srcLog += sl
			dstLog += dl
			cleanOnePass(t, fmt.Sprintf("%s %s/%d source", mode, p.Topic, p.Partition), p.SourceBytesRead, sl)
			cleanOnePass(t, fmt.Sprintf("%s %s/%d destination", mode, p.Topic, p.Partition), p.DestBytesRead, dl)
		}
		if byTopic[cleanPlain] != int64(nPlain) || byTopic[cleanTxn] != int64(committed) ||
			byTopic[cleanCompact] < int64(keys) || byTopic[cleanCompact] >= int64(nCompact) {
			t.Fatalf("%s: records compared per topic %v; want %d plain, %d committed, %d..%d compacted", mode, byTopic, nPlain, committed, keys, nCompact-1)
		}
		cleanOnePass(t, mode+" source", rep.SourceBytesRead, srcLog)
		cleanOnePass(t, mode+" destination", rep.DestBytesRead, dstLog)
		if rep.BytesRead != rep.SourceBytesRead+rep.DestBytesRead {
			t.Fatalf("%s: bytes read %d, source %d + destination %d", mode, rep.BytesRead, rep.SourceBytesRead, rep.DestBytesRead)
		}
		t.Logf("%s: %d records confirmed, 100%% complete, 0 missing/extra/altered in %s; read source %d B (logs %d B, %.3f×), destination %d B (logs %d B, %.3f×)",
			mode, tot.Confirmed, rep.Elapsed.Round(time.Millisecond), rep.SourceBytesRead, srcLog, float64(rep.SourceBytesRead)/float64(srcLog),
			rep.DestBytesRead, dstLog, float64(rep.DestBytesRead)/float64(dstLog))
	}
}

// cleanBinaryAgrees runs `strait audit --json` on the same pipeline: exit
// 0, and the counts and bytes read per side the in-process audit found.
func cleanBinaryAgrees(t *testing.T, bin, cfgDir, mode string, want *audit.Report) {
	t.Helper()
	cmd := exec.Command(bin, "audit", "--config", cfgDir, "--pipeline", mode, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: strait audit: %v\n%s", mode, err, stderr.String())
	}
	var got audit.Report
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: strait audit --json: %v\n%s", mode, err, out)
	}
	if got.Total != want.Total || got.SourceBytesRead != want.SourceBytesRead || got.DestBytesRead != want.DestBytesRead {
		t.Fatalf("%s: strait audit found %+v reading %d+%d bytes; in process %+v reading %d+%d", mode,
			got.Total, got.SourceBytesRead, got.DestBytesRead, want.Total, want.SourceBytesRead, want.DestBytesRead)
	}
}

// cleanOnePass fails unless read is one pass over a log of size bytes:
// all of it, at most 1.2 times.
func cleanOnePass(t *testing.T, what string, read, size int64) {
	t.Helper()
	if size <= 0 || read*10 < size*9 || read*10 > size*12 {
		t.Fatalf("%s: read %d bytes of a %d-byte log: not one pass", what, read, size)
	}
}

func cleanCluster(t *testing.T) (*brokerd.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 1, MaintainInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, dir
}

func cleanClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// cleanPartBytes is the size of a partition's segments on disk: the record
// batches it holds.
func cleanPartBytes(t *testing.T, dir, topic string, part int32) int64 {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "broker-*", fmt.Sprintf("%s-%d", topic, part), "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s/%d in %s: %v (%d found)", topic, part, dir, err, len(segs))
	}
	var n int64
	for _, s := range segs {
		fi, err := os.Stat(s)
		if err != nil {
			continue // removed by compaction or retention since the glob
		}
		n += fi.Size()
	}
	return n
}

func cleanLogBytes(t *testing.T, dir, topic string) int64 {
	var n int64
	for p := int32(0); p < cleanParts; p++ {
		n += cleanPartBytes(t, dir, topic, p)
	}
	return n
}

// cleanWait polls cond every 100 ms until it holds or timeout passes.
func cleanWait(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
