package mirror

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
	"strait/pipelines"
)

// Each mode's writer on its own: a task between two brokerd clusters,
// chunks fetched as the fetcher does, the writer called as the driver does,
// faults injected into the destination's produce answers.

// TestWriterCopies: records arrive in order with their keys, values
// (tombstones too), headers and timestamps; the offset map translates
// each source offset; the budget gets every byte back.
func TestWriterCopies(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			produceData(t, producer(t, fx.src.Addrs(), kgo.ZstdCompression()), writerTopic, 1, 300, kgo.ZstdCompression())
			fx.copyTo(t, 300)
			if p := fx.pos(); p != (checkpoint.Position{Source: 300, Dest: 300}) {
				t.Fatalf("position %+v, want 300/300", p)
			}
			src, dst := readAll(t, fx.src.Addrs(), writerTopic, 0), readAll(t, fx.dst.Addrs(), writerTopic, 0)
			if err := sameRecords(src, dst); err != nil {
				t.Fatal(err)
			}
			for _, r := range dst {
				_, stamped := originCluster(r.Headers)
				if stamped != (mode == pipelines.ModeRecord) {
					t.Fatalf("offset %d: provenance header present %v in %s mode", r.Offset, stamped, mode)
				}
			}
			fx.tk.mu.Lock()
			d, ok := fx.tk.omap.Translate(150, fx.tk.mu.pos)
			fx.tk.mu.Unlock()
			if !ok || d != 150 {
				t.Fatalf("offset map: 150 -> %d %v", d, ok)
			}
			waitFor(t, 10*time.Second, "budget returned", func() bool { return fx.budgetUsed() == 0 })
		})
	}
}

// TestWriterRetriesLandedWrite: the destination took a write but its
// answer says it timed out; the writer sends it again and the destination
// keeps one copy.
func TestWriterRetriesLandedWrite(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			produceData(t, producer(t, fx.src.Addrs(), kgo.NoCompression()), writerTopic, 1, 100, kgo.NoCompression())
			fx.faults.failNext(kerr.RequestTimedOut.Code, 1)
			fx.copyTo(t, 100)
			if n := fx.faults.failures(); n != 1 {
				t.Fatalf("%d produce answers rewritten, want 1", n)
			}
			if err := sameRecords(readAll(t, fx.src.Addrs(), writerTopic, 0), readAll(t, fx.dst.Addrs(), writerTopic, 0)); err != nil {
				t.Fatal(err)
			}
			if p := fx.pos(); p.Dest != 100 {
				t.Fatalf("position %+v, want dest 100", p)
			}
		})
	}
}

// TestWriterRecoversFailedWrite: the destination took a write but answers
// with an error the writer cannot retry (batch mode: its producer session
// is gone; record mode: the producer fails the records). The writer
// recovers, the task reconciles, finds the write landed, and goes on
// without writing it again.
func TestWriterRecoversFailedWrite(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			pr := producer(t, fx.src.Addrs(), kgo.Lz4Compression())
			produceData(t, pr, writerTopic, 1, 50, kgo.Lz4Compression())
			fx.copyTo(t, 50)
			_, _, gen := fx.p.producer()
			code := kerr.InvalidRecord.Code
			if mode == pipelines.ModeBatch {
				code = kerr.OutOfOrderSequenceNumber.Code
			}
			fx.faults.failNext(code, 1)
			produceData(t, pr, writerTopic, 1, 50, kgo.Lz4Compression())
			// The failed write is reported, not passed.
			waitFor(t, 30*time.Second, "the write failure", func() bool {
				if fx.tk.w.failed() != nil {
					return true
				}
				if c := fx.fetch(t); c != nil {
					_ = fx.tk.w.write(context.Background(), c)
				}
				return false
			})
			if p := fx.pos(); p.Source >= 100 {
				t.Fatalf("position %+v passed a failed write", p)
			}
			if c := fx.fetch(t); c != nil {
				t.Fatal("the task fetched while its writer had failed")
			}
			fx.copyTo(t, 100)
			if fx.tk.w.failed() != nil {
				t.Fatalf("writer still failed after reconciling: %v", fx.tk.w.failed())
			}
			if err := sameRecords(readAll(t, fx.src.Addrs(), writerTopic, 0), readAll(t, fx.dst.Addrs(), writerTopic, 0)); err != nil {
				t.Fatal(err)
			}
			if _, _, g := fx.p.producer(); mode == pipelines.ModeBatch && g != gen+1 {
				t.Fatalf("producer session generation %d after the loss, want %d", g, gen+1)
			}
		})
	}
}

// TestWriterCheckpointsAfterAck: a write the destination has taken but not
// yet acknowledged moves neither the task's position nor the checkpoint;
// the acknowledgement moves both.
func TestWriterCheckpointsAfterAck(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			produceData(t, producer(t, fx.src.Addrs(), kgo.NoCompression()), writerTopic, 1, 40, kgo.NoCompression())
			if p := fx.saved(t); p.Source != 0 {
				t.Fatalf("checkpoint before any write: %+v", p)
			}
			held, release := fx.faults.holdNext()
			var c *chunk
			waitFor(t, 10*time.Second, "a chunk", func() bool { c = fx.fetch(t); return c != nil })
			done := make(chan error, 1)
			go func() { done <- fx.tk.w.write(context.Background(), c) }()
			select {
			case <-held:
			case <-time.After(30 * time.Second):
				t.Fatal("no produce answer to hold")
			}
			landed := endOffsets(t, fx.dst.Addrs(), writerTopic)[0]
			if landed == 0 {
				t.Fatal("held write did not land on the destination")
			}
			if p := fx.pos(); p.Source != 0 {
				t.Fatalf("position %+v moved before the acknowledgement", p)
			}
			if p := fx.saved(t); p.Source != 0 || p.Dest != 0 {
				t.Fatalf("checkpoint %+v moved before the acknowledgement", p)
			}
			release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			fx.copyTo(t, 40)
			if p := fx.saved(t); p != (checkpoint.Position{Source: 40, Dest: 40}) {
				t.Fatalf("checkpoint %+v after the acknowledgement, want 40/40", p)
			}
		})
	}
}

// TestWriterStranger: a record another producer wrote into the destination
// partition is found when the task reconciles after a failed write; the
// task fails with the reason and writes nothing more.
func TestWriterStranger(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			pr := producer(t, fx.src.Addrs(), kgo.NoCompression())
			produceData(t, pr, writerTopic, 1, 20, kgo.NoCompression())
			fx.copyTo(t, 20)
			stranger := client(t, fx.dst.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := stranger.ProduceSync(context.Background(), &kgo.Record{Topic: writerTopic, Value: []byte("not from the source")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			code := kerr.InvalidRecord.Code
			if mode == pipelines.ModeBatch {
				code = kerr.OutOfOrderSequenceNumber.Code
			}
			fx.faults.failNext(code, 1)
			produceData(t, pr, writerTopic, 1, 20, kgo.NoCompression())
			waitFor(t, 30*time.Second, "failed state", func() bool {
				fx.step(t)
				s := fx.tk.status(time.Now())
				return s.State == StateFailed
			})
			s := fx.tk.status(time.Now())
			if !strings.Contains(s.PausedReason, "another producer") || s.LastError == "" {
				t.Fatalf("status after the stranger: %+v", s)
			}
			end := endOffsets(t, fx.dst.Addrs(), writerTopic)[0]
			for i := 0; i < 3; i++ {
				if c := fx.fetch(t); c != nil {
					t.Fatal("a failed task fetched")
				}
			}
			if n := endOffsets(t, fx.dst.Addrs(), writerTopic)[0]; n != end {
				t.Fatalf("destination grew from %d to %d after the failure", end, n)
			}
			if p := fx.pos(); p.Source != 20 {
				t.Fatalf("position %+v, want the last acknowledged 20", p)
			}
		})
	}
}

// TestWriterSkipsControlAndAborted: a chunk holding a committed and an
// aborted transaction with their markers around plain batches; only the
// plain and committed records reach the destination, as plain records, and
// the position passes the whole chunk.
func TestWriterSkipsControlAndAborted(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			fx := newWriterFixture(t, mode)
			ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			var data []byte
			data = append(data, testBatch(0, -1, 0, ts, "a0", "a1", "a2")...)
			data = append(data, testBatch(3, 100, batchTransactional, ts, "x3", "x4")...) // aborted
			data = append(data, testBatch(5, 200, batchTransactional, ts, "c5", "c6")...) // committed
			data = append(data, controlBatch(7, 100, false, ts)...)
			data = append(data, controlBatch(8, 200, true, ts)...)
			data = append(data, testBatch(9, -1, 0, ts, "p9", "p10")...)
			aborted := []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 100, FirstOffset: 3}}
			c := &chunk{data: data, aborted: aborted, hw: 11, end: 11, size: int64(len(data))}
			fx.p.budget.add(c.size)
			if err := fx.tk.w.write(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "the chunk passed", func() bool { return fx.pos().Source == 11 })
			if p := fx.pos(); p.Dest != 7 {
				t.Fatalf("position %+v, want dest 7", p)
			}
			got := readAll(t, fx.dst.Addrs(), writerTopic, 0)
			want := []string{"a0", "a1", "a2", "c5", "c6", "p9", "p10"}
			if len(got) != len(want) {
				t.Fatalf("%d records on the destination, want %d", len(got), len(want))
			}
			for i, r := range got {
				if string(r.Value) != want[i] || string(r.Key) != "k"+want[i] {
					t.Fatalf("record %d: %q=%q, want %q", i, r.Key, r.Value, want[i])
				}
				if r.Attrs.IsTransactional() || r.Attrs.IsControl() {
					t.Fatalf("record %d arrived transactional or control", i)
				}
				if len(r.Headers) == 0 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != want[i] {
					t.Fatalf("record %d headers %v", i, r.Headers)
				}
			}
			if !got[0].Timestamp.Equal(ts) || !got[2].Timestamp.Equal(ts.Add(2*time.Millisecond)) {
				t.Fatalf("timestamps %v %v, want %v and 2ms later", got[0].Timestamp, got[2].Timestamp, ts)
			}
			fx.tk.mu.Lock()
			d, ok := fx.tk.omap.Translate(9, fx.tk.mu.pos)
			fx.tk.mu.Unlock()
			if !ok || d != 5 {
				t.Fatalf("offset map: 9 -> %d %v, want 5", d, ok)
			}
			waitFor(t, 10*time.Second, "budget returned", func() bool { return fx.budgetUsed() == 0 })
		})
	}
}

// TestStateText: states are the same words in JSON as in the admin API.
func TestStateText(t *testing.T) {
	b, err := json.Marshal(PartitionStatus{State: StateAutoPaused})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"state":"auto-paused"`) {
		t.Fatalf("JSON %s", b)
	}
	if StateGap.String() != "gap" {
		t.Fatalf("String %q", StateGap.String())
	}
}
