package e2e_test

// The crash test: kill -9 the `strait mirror` process again and again while
// records flow, then check that every destination partition equals its
// source partition record for record — no loss, no duplicate, order kept —
// in both modes and with both checkpoint stores.
//
// Each combination runs on two sources: a plain one, and one with gaps in
// its offsets — a compacted prefix full of holes and a log start moved up
// by DeleteRecords — where consumer groups committed inside the holes and
// after them must come out translated exactly on the destination after
// the kills. (brokerd has no transactions; aborted data and control
// records are covered by mirror's TestTransactions on a kfake source.)
//
// The kill points come from a seed, logged at the start;
// STRAIT_CRASH_SEED=<seed> runs the same points again. Where a kill lands
// is a count of copied records, so a failing seed repeats its schedule;
// what the mirror was doing at that count still depends on the machine.
//
// Default size: 20,000 records and 10 kills per combination. STRAIT_LONG=1
// runs the acceptance size, 1,000,000 records.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
)

const (
	crashTopic      = "crash"
	crashPartitions = 3
	crashKills      = 10
)

// crashMirror is one `strait mirror` process.
type crashMirror struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func crashStartMirror(t *testing.T, bin, cfg string, log *os.File) *crashMirror {
	t.Helper()
	cmd := exec.Command(bin, "mirror", "--config", cfg, "--http", "", "--watch-interval", "0s")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &crashMirror{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { m.kill() })
	return m
}

func (m *crashMirror) kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

func (m *crashMirror) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func crashClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// crashEnds sums the end offsets of the topic's partitions (0 when it does
// not exist yet).
func crashEnds(ctx context.Context, adm *kadm.Client) (map[int32]int64, int64) {
	ends, err := adm.ListEndOffsets(ctx, crashTopic)
	per := map[int32]int64{}
	var total int64
	if err != nil {
		return per, 0
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			per[o.Partition] = o.Offset
			total += o.Offset
		}
	})
	return per, total
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	// chunks paces production (one chunk every 50ms), so that the flow
	// lasts longer than the kill loop even when the mirror is fast.
	n, chunks := 20_000, 100
	if os.Getenv("STRAIT_LONG") == "1" {
		n, chunks = 1_000_000, 400
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("STRAIT_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("STRAIT_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (STRAIT_CRASH_SEED=%d repeats the kill points)", seed, seed)
	bin := binBuild(t)
	i := int64(0)
	for _, source := range []string{"plain", "gaps"} {
		for _, mode := range []string{"batch", "record"} {
			for _, store := range []string{"kafka", "file"} {
				i++
				rng := rand.New(rand.NewSource(seed + i))
				t.Run(source+"/"+mode+"/"+store, func(t *testing.T) {
					crashRun(t, bin, rng, source == "gaps", mode, store, n, chunks)
				})
			}
		}
	}
}

// crashGroups are the source consumer groups whose commits must come out
// translated on the destination.
const crashGroupEarly, crashGroupLate = "crash-early", "crash-late"

func crashRun(t *testing.T, bin string, rng *rand.Rand, gaps bool, mode, store string, n, chunks int) {
	ctx := context.Background()
	dir := t.TempDir()
	east := binBroker(t, bin, filepath.Join(dir, "east"), "--partitions", fmt.Sprint(crashPartitions))
	west := binBroker(t, bin, filepath.Join(dir, "west"), "--partitions", fmt.Sprint(crashPartitions))
	src := crashClient(t, east,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(20_000),
		// Batches well under the gapped source's 64 KiB segments, and
		// uncompressed, so the records fill several of them.
		kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	srcAdm := kadm.NewClient(src)
	dstAdm := kadm.NewClient(crashClient(t, west))
	// The destination topic is prepared too, as in a DR site: the test is
	// about crashes, not about the first start's topic discovery. With
	// gaps the source topic is compacted with small segments; the
	// destination is not (topic config sync is off), so it keeps every
	// copy and the comparison stays record for record.
	var srcConfigs map[string]*string
	if gaps {
		srcConfigs = map[string]*string{
			"cleanup.policy":            kadm.StringPtr("compact"),
			"segment.bytes":             kadm.StringPtr("65536"),
			"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		}
	}
	for i, adm := range []*kadm.Client{srcAdm, dstAdm} {
		cfgs := srcConfigs
		if i == 1 {
			cfgs = nil
		}
		if resp, err := adm.CreateTopic(ctx, crashPartitions, 1, cfgs, crashTopic); err != nil || resp.Err != nil {
			t.Fatalf("create topic: %v %v", err, resp.Err)
		}
	}
	var commits map[string]map[int32]int64
	if gaps {
		commits = crashMakeGaps(t, ctx, src, srcAdm, rng, n/4)
	}

	ckpt := "{store: kafka, interval: 200ms}"
	if store == "file" {
		ckpt = fmt.Sprintf("{store: file, dir: %q, interval: 200ms}", filepath.Join(dir, "checkpoints"))
	}
	cfg := filepath.Join(dir, "strait.yaml")
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: %s
pipelines:
  - name: crash
    source: east
    destination: west
    topics: {include: [%q]}
    mode: %s
    sync: {topic_configs: false, groups: ["crash-.*"], interval: 500ms}
`, east, west, ckpt, crashTopic, mode)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "mirror.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("mirror log tail:\n%s", b)
		}
	}()

	// Records flow during the whole kill loop: the producer writes a tenth
	// up front, waits for the mirror's first copies to arrive, then paces
	// the rest in chunks so that production spans the restarts.
	var produced atomic.Int64
	var prodErr atomic.Value
	prodDone := make(chan struct{})
	base := time.Now()
	go func() {
		defer close(prodDone)
		chunk := max(n/chunks, 1)
		tick := time.NewTicker(50 * time.Millisecond)
		flowing := false
		defer tick.Stop()
		for i := 0; i < n; {
			for j := 0; j < chunk && i < n; j, i = j+1, i+1 {
				// Unique keys: compaction of a gapped source never
				// removes a record of the flow, only of the prefix.
				r := &kgo.Record{
					Topic:     crashTopic,
					Partition: int32(i % crashPartitions),
					Key:       fmt.Appendf(nil, "key-%d", i),
					Value:     fmt.Appendf(nil, "record %08d %s", i, strings.Repeat("x", 64)),
					Timestamp: base.Add(time.Duration(i) * time.Microsecond),
					Headers:   []kgo.RecordHeader{{Key: "seq", Value: fmt.Append(nil, i)}},
				}
				src.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						prodErr.Store(err)
					}
				})
			}
			if err := src.Flush(ctx); err != nil {
				prodErr.Store(err)
				return
			}
			produced.Store(int64(i))
			if i < n/10 {
				continue
			}
			for !flowing {
				_, total := crashEnds(ctx, dstAdm)
				if flowing = total > 0; !flowing {
					<-tick.C
				}
			}
			<-tick.C
		}
	}()

	// Kill the mirror at random moments while the records flow.
	// Every other kill also waits until a checkpoint was saved since the
	// start, so that both kinds of moment occur: before the first save of a
	// run and between saves.
	ckptMark := func() string {
		if store == "file" {
			fi, err := os.Stat(filepath.Join(dir, "checkpoints", "crash.ckpt"))
			if err != nil {
				return ""
			}
			return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
		}
		ends, err := dstAdm.ListEndOffsets(ctx, checkpoint.DefaultTopic)
		if err != nil {
			return ""
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return fmt.Sprint(sum)
	}
	// caughtUp reports, once production is over, whether the destination
	// holds the copy of every source record. Without gaps the end offsets
	// say it; with holes in the source they do not match, so the copy of
	// each partition's last source record (the flow's tail is never
	// compacted) says it instead.
	var lastKeys map[int32]string
	caughtUp := func() bool {
		per, total := crashEnds(ctx, dstAdm)
		if !gaps {
			_, srcTotal := crashEnds(ctx, srcAdm)
			return total >= srcTotal
		}
		if lastKeys == nil {
			lastKeys = map[int32]string{}
			for p := int32(0); p < crashPartitions; p++ {
				recs := crashConsume(t, east, p)
				if len(recs) == 0 {
					t.Fatalf("source partition %d is empty", p)
				}
				lastKeys[p] = string(recs[len(recs)-1].Key)
			}
		}
		for p := int32(0); p < crashPartitions; p++ {
			if crashLastKey(t, ctx, west, p, per[p]) != lastKeys[p] {
				return false
			}
		}
		return true
	}
	for k := 0; k < crashKills; k++ {
		_, before := crashEnds(ctx, dstAdm)
		mark := ckptMark()
		m := crashStartMirror(t, bin, cfg, logf)
		// Kill k lands at a random point of the k-th slice of the flow, so
		// the kills spread over all n records whatever the speed, and
		// always after some progress of this run.
		target := max(int64(float64(n)*(float64(k)+rng.Float64())/float64(crashKills+1)), before+1)
		if gaps && k == 0 {
			// The first kill lands among the first copies: in the
			// compacted, DeleteRecords-trimmed prefix.
			target = int64(1 + rng.Intn(3*crashGapKeys))
		}
		afterSave := rng.Intn(2) == 0
		if gaps && k == 0 {
			afterSave = false
		}
		binWait(t, 2*time.Minute, fmt.Sprintf("kill %d: destination to reach %d records from %d (after a save: %v)", k+1, target, before, afterSave), func() error {
			if m.exited() {
				t.Fatalf("mirror exited by itself before kill %d", k+1)
			}
			if afterSave && ckptMark() == mark {
				return errors.New("no checkpoint saved yet")
			}
			_, now := crashEnds(ctx, dstAdm)
			if now >= target {
				return nil
			}
			select {
			case <-prodDone:
				// Production is over; a mirror that caught up is killed
				// all the same.
				if caughtUp() {
					return nil
				}
			default:
			}
			return fmt.Errorf("at %d", now)
		})
		m.kill()
		_, after := crashEnds(ctx, dstAdm)
		t.Logf("kill -9 #%d (after a save: %v): destination at %d records (produced %d)", k+1, afterSave, after, produced.Load())
	}
	<-prodDone
	if err, _ := prodErr.Load().(error); err != nil {
		t.Fatalf("producing: %v", err)
	}
	if gaps {
		// A second group commits after the kills, past the holes.
		late := map[int32]int64{}
		for p := int32(0); p < crashPartitions; p++ {
			late[p] = commits[crashGroupEarly][p] + int64(rng.Intn(n/(2*crashPartitions)))
		}
		crashCommit(t, ctx, srcAdm, crashGroupLate, late)
		commits[crashGroupLate] = late
	}

	// A last run catches up; then stop it cleanly.
	m := crashStartMirror(t, bin, cfg, logf)
	srcEnds, srcTotal := crashEnds(ctx, srcAdm)
	if want := int64(n + crashPrefix(gaps, n)); srcTotal != want {
		t.Fatalf("source ends at %d, produced %d", srcTotal, want)
	}
	binWait(t, 10*time.Minute, "the mirror to catch up", func() error {
		if m.exited() {
			t.Fatalf("mirror exited by itself")
		}
		if !caughtUp() {
			per, total := crashEnds(ctx, dstAdm)
			return fmt.Errorf("destination at %d records %v (source ends %v)", total, per, srcEnds)
		}
		return nil
	})

	// Record by record.
	var srcRecs, dstRecs [crashPartitions][]*kgo.Record
	for p := int32(0); p < crashPartitions; p++ {
		want := crashConsume(t, east, p)
		got := crashConsume(t, west, p)
		srcRecs[p], dstRecs[p] = want, got
		if len(got) != len(want) {
			t.Errorf("partition %d: destination has %d records, source %d", p, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if why := crashDiffer(got[i], want[i]); why != "" {
				t.Fatalf("partition %d record %d (source offset %d, destination offset %d): %s; destination %q, source %q",
					p, i, want[i].Offset, got[i].Offset, why, got[i].Value, want[i].Value)
			}
		}
	}
	if !gaps {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		<-m.done
		return
	}
	// Translated group offsets: a source commit c means "next, the first
	// record at or after c"; on the destination the group must resume at
	// that record's copy (or at the end when none is left).
	for group, at := range commits {
		want := map[int32]int64{}
		for p, c := range at {
			i := sort.Search(len(srcRecs[p]), func(i int) bool { return srcRecs[p][i].Offset >= c })
			if i < len(dstRecs[p]) {
				want[p] = dstRecs[p][i].Offset
			} else {
				per, _ := crashEnds(ctx, dstAdm)
				want[p] = per[p]
			}
		}
		binWait(t, 2*time.Minute, fmt.Sprintf("group %s translated on the destination (source %v, want %v)", group, at, want), func() error {
			got, err := dstAdm.FetchOffsets(ctx, group)
			if err != nil {
				return err
			}
			for p, w := range want {
				o, ok := got.Lookup(crashTopic, p)
				if !ok || o.Err != nil || o.At != w {
					return fmt.Errorf("partition %d at %d (%v), want %d", p, o.At, o.Err, w)
				}
			}
			return nil
		})
		t.Logf("group %s: source commits %v translated to %v on the destination", group, at, want)
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
}

// crashPrefix is how many records crashMakeGaps writes before the flow.
func crashPrefix(gaps bool, n int) int {
	if !gaps {
		return 0
	}
	return n/4 + crashFiller*crashPartitions
}

// crashFiller is how many unique-key records per partition follow the
// keyed prefix: with 512-byte values, enough to seal the prefix's last
// segment (64 KiB), so compaction can reach every keyed record.
const crashFiller = 200

// crashGapKeys is how many keys the compacted prefix uses.
const crashGapKeys = 20

// crashMakeGaps writes a prefix with gaps before the mirror starts:
// prefix records over a few keys per partition (compaction leaves one per
// key), then unique-key filler that seals the prefix's segments; it waits
// until compaction has finished with the prefix, moves each partition's
// log start up with DeleteRecords, and commits a source group at an
// offset inside the holes. It returns the commits.
func crashMakeGaps(t *testing.T, ctx context.Context, src *kgo.Client, adm *kadm.Client, rng *rand.Rand, prefix int) map[string]map[int32]int64 {
	t.Helper()
	produce := func(r *kgo.Record) {
		src.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("producing the prefix: %v", err)
			}
		})
	}
	base := time.Now().Add(-time.Hour)
	for i := 0; i < prefix; i++ {
		produce(&kgo.Record{Topic: crashTopic, Partition: int32(i % crashPartitions),
			Key:       fmt.Appendf(nil, "prefix-%d", rng.Intn(crashGapKeys)),
			Value:     fmt.Appendf(nil, "prefix %08d %s", i, strings.Repeat("p", 64)),
			Timestamp: base.Add(time.Duration(i) * time.Microsecond)})
	}
	for i := 0; i < crashFiller*crashPartitions; i++ {
		produce(&kgo.Record{Topic: crashTopic, Partition: int32(i % crashPartitions),
			Key:       fmt.Appendf(nil, "filler-%d", i),
			Value:     fmt.Appendf(nil, "filler %08d %s", i, strings.Repeat("f", 512)),
			Timestamp: base.Add(time.Duration(prefix+i) * time.Microsecond)})
	}
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Compaction is done with the prefix when each partition holds at
	// most one prefix record per key; from then on no later pass removes
	// anything (every other key is unique).
	perPart := prefix / crashPartitions
	var host string
	if seeds := src.OptValue(kgo.SeedBrokers); seeds != nil {
		host = seeds.([]string)[0]
	}
	binWait(t, 2*time.Minute, "compaction of the prefix", func() error {
		for p := int32(0); p < crashPartitions; p++ {
			n := 0
			for _, r := range crashConsume(t, host, p) {
				if strings.HasPrefix(string(r.Key), "prefix-") {
					n++
				}
			}
			if n > crashGapKeys {
				return fmt.Errorf("partition %d holds %d of %d prefix records", p, n, perPart)
			}
		}
		return nil
	})
	// A log start above 0: DeleteRecords into the holes.
	del := kadm.Offsets{}
	commits := map[int32]int64{}
	for p := int32(0); p < crashPartitions; p++ {
		at := int64(1 + rng.Intn(perPart/2))
		del.Add(kadm.Offset{Topic: crashTopic, Partition: p, At: at})
		// The group's commit lies past the log start, in or near the
		// holes of the compacted prefix.
		commits[p] = at + int64(rng.Intn(perPart/2))
	}
	dr, err := adm.DeleteRecords(ctx, del)
	if err != nil || dr.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, dr.Error())
	}
	crashCommit(t, ctx, adm, crashGroupEarly, commits)
	t.Logf("gaps: prefix compacted; log starts %v; %s committed at %v", del, crashGroupEarly, commits)
	return map[string]map[int32]int64{crashGroupEarly: commits}
}

// crashCommit commits group at the given offsets of the crash topic.
func crashCommit(t *testing.T, ctx context.Context, adm *kadm.Client, group string, at map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, o := range at {
		os.Add(kadm.Offset{Topic: crashTopic, Partition: p, At: o, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

// crashLastKey returns the key of the last record of partition p below
// end on the cluster at addr ("" when there is none).
func crashLastKey(t *testing.T, ctx context.Context, addr string, p int32, end int64) string {
	t.Helper()
	if end == 0 {
		return ""
	}
	cl := crashClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: {p: kgo.NewOffset().At(end - 1)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := cl.PollFetches(pctx)
	key := ""
	fs.EachRecord(func(r *kgo.Record) {
		if r.Offset == end-1 {
			key = string(r.Key)
		}
	})
	return key
}

// crashConsume reads a partition of the crash topic from its start to its
// end offset.
func crashConsume(t *testing.T, addr string, p int32) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	cl := crashClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: {p: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	per, _ := crashEnds(ctx, kadm.NewClient(cl))
	end := per[p]
	var out []*kgo.Record
	next := int64(0)
	for next < end {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if idle {
			t.Fatalf("reading %s partition %d: stuck at %d of %d", addr, p, next, end)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s partition %d: %v", addr, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end {
				out = append(out, r)
			}
			next = r.Offset + 1
		})
	}
	return out
}

// crashDiffer says how a copy differs from its source record ("" if it
// does not); record mode's provenance header is not part of the record.
func crashDiffer(d, s *kgo.Record) string {
	switch {
	case !bytes.Equal(d.Key, s.Key):
		return "key differs"
	case !bytes.Equal(d.Value, s.Value):
		return "value differs"
	case !d.Timestamp.Equal(s.Timestamp):
		return "timestamp differs"
	}
	var hs []kgo.RecordHeader
	for _, h := range d.Headers {
		if h.Key != checkpoint.ProvenanceHeader {
			hs = append(hs, h)
		}
	}
	if len(hs) != len(s.Headers) {
		return "headers differ"
	}
	for i := range hs {
		if hs[i].Key != s.Headers[i].Key || !bytes.Equal(hs[i].Value, s.Headers[i].Value) {
			return "headers differ"
		}
	}
	return ""
}
