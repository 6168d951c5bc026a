package e2e_test

// The crash test: kill -9 the `strait mirror` process again and again while
// records flow, then check that every destination partition equals its
// source partition record for record — no loss, no duplicate, order kept —
// in both modes and with both checkpoint stores.
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
	bin := binBuild(t)
	for _, mode := range []string{"batch", "record"} {
		for _, store := range []string{"kafka", "file"} {
			t.Run(mode+"/"+store, func(t *testing.T) {
				crashRun(t, bin, mode, store, n, chunks)
			})
		}
	}
}

func crashRun(t *testing.T, bin, mode, store string, n, chunks int) {
	ctx := context.Background()
	dir := t.TempDir()
	east := binBroker(t, bin, filepath.Join(dir, "east"), "--partitions", fmt.Sprint(crashPartitions))
	west := binBroker(t, bin, filepath.Join(dir, "west"), "--partitions", fmt.Sprint(crashPartitions))
	src := crashClient(t, east,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(20_000))
	srcAdm := kadm.NewClient(src)
	dstAdm := kadm.NewClient(crashClient(t, west))
	// The destination topic is prepared too, as in a DR site: the test is
	// about crashes, not about the first start's topic discovery.
	for _, adm := range []*kadm.Client{srcAdm, dstAdm} {
		if resp, err := adm.CreateTopic(ctx, crashPartitions, 1, nil, crashTopic); err != nil || resp.Err != nil {
			t.Fatalf("create topic: %v %v", err, resp.Err)
		}
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
				r := &kgo.Record{
					Topic:     crashTopic,
					Partition: int32(i % crashPartitions),
					Key:       fmt.Appendf(nil, "key-%d", i%1000),
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
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for k := 0; k < crashKills; k++ {
		_, before := crashEnds(ctx, dstAdm)
		mark := ckptMark()
		m := crashStartMirror(t, bin, cfg, logf)
		// Kill k lands at a random point of the k-th slice of the flow, so
		// the kills spread over all n records whatever the speed, and
		// always after some progress of this run.
		target := max(int64(float64(n)*(float64(k)+rng.Float64())/float64(crashKills+1)), before+1)
		afterSave := rng.Intn(2) == 0
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
				if _, srcTotal := crashEnds(ctx, srcAdm); now >= srcTotal {
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

	// A last run catches up; then stop it cleanly.
	m := crashStartMirror(t, bin, cfg, logf)
	srcEnds, srcTotal := crashEnds(ctx, srcAdm)
	if srcTotal != int64(n) {
		t.Fatalf("source holds %d records, produced %d", srcTotal, n)
	}
	binWait(t, 10*time.Minute, "the mirror to catch up", func() error {
		if m.exited() {
			t.Fatalf("mirror exited by itself")
		}
		per, total := crashEnds(ctx, dstAdm)
		for p, e := range srcEnds {
			if per[p] < e {
				return fmt.Errorf("destination %d of %d records (partition %d at %d of %d)", total, srcTotal, p, per[p], e)
			}
		}
		return nil
	})
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done

	// Record by record.
	for p := int32(0); p < crashPartitions; p++ {
		want := crashConsume(t, east, p)
		got := crashConsume(t, west, p)
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
