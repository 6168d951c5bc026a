package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// copier copies committed records of one source partition to the same
// partition of a destination topic, one acknowledged record at a time, the
// way record mode does, and keeps the offset map. It stands in for the
// engine so these tests exercise checkpoint against real clusters.
type copier struct {
	t                 *testing.T
	srcSeeds          []string
	dst               *kgo.Client // idempotent, acks=all
	topic, destTopic  string
	partition         int32
	m                 *OffsetMap
	pos               Position
	headers           []kgo.RecordHeader // added to a copy without provenance
	stopAfterRecordsN int                // 0: copy to the end
	// skip leaves a source record out, as loop prevention does.
	skip func(*kgo.Record) bool
}

// run copies from c.pos up to the source's last stable offset, or
// stopAfterRecordsN records, and returns the new position.
func (c *copier) run() Position {
	t := c.t
	t.Helper()
	recs := consumeAll(t, c.srcSeeds, c.topic, c.partition, c.pos.Source)
	ctx := context.Background()
	for i, r := range recs {
		if c.stopAfterRecordsN > 0 && i == c.stopAfterRecordsN {
			return c.pos
		}
		if c.skip != nil && c.skip(r) {
			c.pos.Source = r.Offset + 1
			continue
		}
		hs := r.Headers
		if len(withoutProvenance(hs)) == len(hs) {
			hs = append(append([]kgo.RecordHeader(nil), hs...), c.headers...)
		}
		out := &kgo.Record{
			Topic: c.destTopic, Partition: c.partition,
			Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			Headers: hs,
		}
		if err := c.dst.ProduceSync(ctx, out).FirstErr(); err != nil {
			t.Fatalf("copy: %v", err)
		}
		c.m.Add(r.Offset, out.Offset, 1)
		c.pos = Position{Source: r.Offset + 1, Dest: out.Offset + 1}
	}
	// Trailing control records and aborted data are passed over too.
	lso := lastStable(t, c.srcSeeds, c.topic, c.partition)
	if lso > c.pos.Source {
		c.pos.Source = lso
	}
	return c.pos
}

func lastStable(t *testing.T, seeds []string, topic string, partition int32) int64 {
	t.Helper()
	cl := newClient(t, seeds)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, partition)
	return o.Offset
}

// fillSource writes n records to topic[0] of the cluster at seeds with gaps
// of every kind: committed transactions (a marker each), aborted
// transactions (their data and marker hidden from read-committed
// consumers) and, when compact is given, records compacted away (keys
// repeat, then compact runs the cluster's compaction).
func fillSource(t *testing.T, seeds []string, topic string, n int, compact func()) {
	t.Helper()
	ctx := context.Background()
	plain := newClient(t, seeds)
	txn := newClient(t, seeds, kgo.TransactionalID("tx-"+topic))
	for i := 0; i < n; {
		switch i % 10 {
		case 3, 7: // a transaction of 3 records, aborted every other time
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 3; j++ {
				r := rec(topic, 0, i+j)
				if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			commit := kgo.TryCommit
			if (i/10)%2 == 1 {
				commit = kgo.TryAbort
			} else {
				i += 3
			}
			if err := txn.EndTransaction(ctx, commit); err != nil {
				t.Fatal(err)
			}
			if commit == kgo.TryAbort {
				// Aborted records are not part of the sequence; write a
				// plain one so the loop advances.
				produce(t, plain, rec(topic, 0, i))
				i++
			}
		default:
			r := rec(topic, 0, i)
			if compact != nil {
				r.Key = fmt.Appendf(nil, "k%d", i%40)
			}
			produce(t, plain, r)
			i++
		}
	}
	if compact != nil {
		compact()
	}
}

func sameRecord(a, b *kgo.Record) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Timestamp.Equal(b.Timestamp)
}

// TestReconcileAfterCrash: the mirror wrote records after its last
// checkpoint and died; Reconcile resumes exactly after them, so the
// destination ends up equal to the source with no loss and no repeat.
func TestReconcileAfterCrash(t *testing.T) {
	type cluster func(*testing.T) ([]string, *kgo.Client)
	brokerdC := func(t *testing.T) ([]string, *kgo.Client) { c, cl := newBrokerd(t); return c.Addrs(), cl }
	kfakeC := func(t *testing.T) ([]string, *kgo.Client) { c, cl := newKfake(t); return c.ListenAddrs(), cl }
	for _, tc := range []struct {
		name     string
		src, dst cluster
	}{
		// Every source holds transactions: control records and aborted
		// data. brokerd is the clusters strait ships; kfake is a second,
		// independent implementation of the protocol.
		{"brokerd to brokerd", brokerdC, brokerdC},
		{"brokerd to kfake", brokerdC, kfakeC},
		{"kfake to kfake", kfakeC, kfakeC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srcSeeds, src := tc.src(t)
			createTopic(t, src, "orders", 1, nil)
			fillSource(t, srcSeeds, "orders", 120, nil)
			dstSeeds, dst := tc.dst(t)
			createTopic(t, dst, "east.orders", 1, nil)

			cp := &copier{t: t, srcSeeds: srcSeeds, dst: dst, topic: "orders", destTopic: "east.orders",
				m: &OffsetMap{}, headers: []kgo.RecordHeader{{Key: ProvenanceHeader, Value: []byte("east")}}}
			cp.m.Begin(Position{})
			// Copy 40, checkpoint, copy 25 more, crash.
			cp.stopAfterRecordsN = 40
			ckpt := cp.run()
			ckptMap := cp.m.Clone()
			cp.stopAfterRecordsN = 25
			crashed := cp.run()

			m := ckptMap.Clone()
			got, err := Reconcile(ctx, src, dst, TP{"orders", 0}, "east.orders", ckpt, m)
			if err != nil {
				t.Fatal(err)
			}
			if got != crashed {
				t.Fatalf("Reconcile = %+v, want %+v", got, crashed)
			}
			if m.String() != cp.m.String() {
				t.Fatalf("map after reconcile %v, want %v", m, cp.m)
			}
			// Reconciling again from the new position changes nothing.
			if again, err := Reconcile(ctx, src, dst, TP{"orders", 0}, "east.orders", got, m); err != nil || again != got {
				t.Fatalf("second Reconcile = %+v, %v", again, err)
			}
			// Resume and finish: destination equals source record for record.
			cp.m, cp.pos, cp.stopAfterRecordsN = m, got, 0
			cp.run()
			want := consumeAll(t, srcSeeds, "orders", 0, 0)
			have := consumeAll(t, dstSeeds, "east.orders", 0, 0)
			if len(have) != len(want) {
				t.Fatalf("destination has %d records, source %d", len(have), len(want))
			}
			for i := range want {
				if !sameRecord(have[i], want[i]) {
					t.Fatalf("record %d: destination %s, source %s", i, have[i].Value, want[i].Value)
				}
			}
		})
	}
}

func TestReconcileNothingToDo(t *testing.T) {
	ctx := context.Background()
	_, src := newBrokerd(t)
	_, dst := newBrokerd(t)
	createTopic(t, src, "t", 1, nil)
	createTopic(t, dst, "t", 1, nil)
	m := &OffsetMap{}
	pos := Position{0, 0}
	got, err := Reconcile(ctx, src, dst, TP{"t", 0}, "t", pos, m)
	if err != nil || got != pos {
		t.Fatalf("empty destination: %+v %v", got, err)
	}
	if s, ok := m.Start(); !ok || s != 0 {
		t.Fatalf("Reconcile did not begin the map at pos: %v", m)
	}
	// A checkpoint beyond the destination's end: records were lost there.
	if _, err := Reconcile(ctx, src, dst, TP{"t", 0}, "t", Position{5, 5}, m); !errors.Is(err, ErrDestTruncated) {
		t.Fatalf("checkpoint past destination end: %v", err)
	}
}

// TestReconcileStranger: records on the destination that the mirror did
// not copy are reported, never skipped silently.
func TestReconcileStranger(t *testing.T) {
	ctx := context.Background()
	srcC, src := newBrokerd(t)
	dstC, dst := newBrokerd(t)
	createTopic(t, src, "t", 1, nil)
	createTopic(t, dst, "t", 1, nil)
	for i := 0; i < 10; i++ {
		produce(t, src, rec("t", 0, i))
	}
	cp := &copier{t: t, srcSeeds: srcC.Addrs(), dst: dst, topic: "t", destTopic: "t", m: &OffsetMap{}, stopAfterRecordsN: 5}
	ckpt := cp.run()
	tp := TP{"t", 0}

	t.Run("first record differs", func(t *testing.T) {
		stranger := rec("t", 0, 5)
		stranger.Value = []byte("not from the source")
		produce(t, dst, stranger)
		_, err := Reconcile(ctx, src, dst, tp, "t", ckpt, ckpt2map(cp))
		if !errors.Is(err, ErrStranger) || !bytes.Contains([]byte(err.Error()), []byte("offset 5")) {
			t.Fatalf("err = %v, want ErrStranger naming offset 5", err)
		}
	})
	t.Run("destination longer than source", func(t *testing.T) {
		// A faithful copy of all ten source records, then one more than
		// the source has.
		_, dst2 := newBrokerd(t)
		createTopic(t, dst2, "t", 1, nil)
		for _, r := range consumeAll(t, srcC.Addrs(), "t", 0, 0) {
			produce(t, dst2, &kgo.Record{Topic: "t", Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
		}
		produce(t, dst2, rec("t", 0, 10))
		_, err := Reconcile(ctx, src, dst2, tp, "t", Position{5, 5}, &OffsetMap{})
		if !errors.Is(err, ErrStranger) {
			t.Fatalf("err = %v, want ErrStranger", err)
		}
	})
	t.Run("last record differs", func(t *testing.T) {
		_, dst3 := newBrokerd(t)
		createTopic(t, dst3, "t", 1, nil)
		for i, r := range consumeAll(t, srcC.Addrs(), "t", 0, 0) {
			v := r.Value
			if i == 9 {
				v = []byte("changed")
			}
			produce(t, dst3, &kgo.Record{Topic: "t", Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
		}
		_, err := Reconcile(ctx, src, dst3, tp, "t", Position{5, 5}, &OffsetMap{})
		if !errors.Is(err, ErrStranger) {
			t.Fatalf("err = %v, want ErrStranger", err)
		}
	})
	t.Run("a transaction marker", func(t *testing.T) {
		txn := newClient(t, dstC.Addrs(), kgo.TransactionalID("stranger"))
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(t, txn, rec("t", 0, 99))
		if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
		dstEnd := lastStable(t, dstC.Addrs(), "t", 0)
		// Only the abort marker lies after this position.
		_, err := Reconcile(ctx, src, dst, tp, "t", Position{6, dstEnd - 1}, &OffsetMap{})
		if !errors.Is(err, ErrStranger) || !bytes.Contains([]byte(err.Error()), []byte("marker")) {
			t.Fatalf("err = %v, want ErrStranger", err)
		}
	})
}

func ckpt2map(cp *copier) *OffsetMap { return cp.m.Clone() }

// TestFailoverTranslationExact: with a transactional producer's committed
// and aborted data on the source, compacted or not, every committed offset
// translates so that a consumer failing over to the destination reads
// exactly the records it had not read on the source, record by record.
// The compacted source is kfake, whose compaction a test can run on
// demand.
func TestFailoverTranslationExact(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compact), func(t *testing.T) {
			var srcSeeds []string
			var src *kgo.Client
			var compactNow func()
			var cfg map[string]*string
			if compact {
				srcC, cl := newKfake(t)
				srcSeeds, src, compactNow = srcC.ListenAddrs(), cl, srcC.Compact
				p := "compact"
				cfg = map[string]*string{"cleanup.policy": &p}
			} else {
				srcC, cl := newBrokerd(t)
				srcSeeds, src = srcC.Addrs(), cl
			}
			createTopic(t, src, "orders", 1, cfg)
			fillSource(t, srcSeeds, "orders", 150, compactNow)
			_, dstCl := newBrokerd(t)
			dstSeeds := dstCl.OptValues(kgo.SeedBrokers)[0].([]string)
			createTopic(t, dstCl, "orders", 1, nil)

			cp := &copier{t: t, srcSeeds: srcSeeds, dst: dstCl, topic: "orders", destTopic: "orders", m: &OffsetMap{}}
			cp.m.Begin(Position{})
			pos := cp.run()

			srcRecs := consumeAll(t, srcSeeds, "orders", 0, 0)
			dstRecs := consumeAll(t, dstSeeds, "orders", 0, 0)
			if len(srcRecs) != len(dstRecs) {
				t.Fatalf("copied %d of %d records", len(dstRecs), len(srcRecs))
			}
			if gaps := srcRecs[len(srcRecs)-1].Offset + 1 - int64(len(srcRecs)); gaps < 10 {
				t.Fatalf("source has only %d gap offsets; the test needs gaps", gaps)
			}
			t.Logf("source: %d records over %d offsets; map: %d breakpoints", len(srcRecs), pos.Source, cp.m.Len())
			for c := int64(0); c <= pos.Source; c++ {
				d, ok := cp.m.Translate(c, pos)
				if !ok {
					t.Fatalf("offset %d does not translate", c)
				}
				var wantRest, gotRest []*kgo.Record
				for _, r := range srcRecs {
					if r.Offset >= c {
						wantRest = append(wantRest, r)
					}
				}
				for _, r := range dstRecs {
					if r.Offset >= d {
						gotRest = append(gotRest, r)
					}
				}
				if len(gotRest) != len(wantRest) {
					t.Fatalf("commit %d → %d: destination consumer reads %d records, source %d", c, d, len(gotRest), len(wantRest))
				}
				for i := range wantRest {
					if !sameRecord(gotRest[i], wantRest[i]) {
						t.Fatalf("commit %d → %d: record %d is %s, want %s", c, d, i, gotRest[i].Value, wantRest[i].Value)
					}
				}
			}
			// And a real consumer, reading from the translated offset of a
			// mid-log commit on the destination cluster itself.
			c := srcRecs[len(srcRecs)/2].Offset
			d, _ := cp.m.Translate(c, pos)
			got := consumeAll(t, dstSeeds, "orders", 0, d)
			if !sameRecord(got[0], srcRecs[len(srcRecs)/2]) || len(got) != len(srcRecs)-len(srcRecs)/2 {
				t.Fatalf("fail-over at %d → %d reads %d records starting %s", c, d, len(got), got[0].Value)
			}
		})
	}
}

// TestReconcileLoopPrevention: records the mirror leaves out on purpose
// (looped back from the destination cluster) are passed over when
// ReconcileWith is told about them, and a provenance header the source
// record already carried is kept, not compared away.
func TestReconcileLoopPrevention(t *testing.T) {
	ctx := context.Background()
	srcC, src := newBrokerd(t)
	dstC, dst := newBrokerd(t)
	createTopic(t, src, "orders", 1, nil)
	createTopic(t, dst, "orders", 1, nil)
	for i := 0; i < 60; i++ {
		r := rec("orders", 0, i)
		switch i % 4 {
		case 3: // written on west and mirrored here: must not go back
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: ProvenanceHeader, Value: []byte("west/back")})
		case 1: // from a third cluster: copied with its header as it is
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: ProvenanceHeader, Value: []byte("north/in")})
		}
		produce(t, src, r)
	}
	looped := func(r *kgo.Record) bool {
		for _, h := range r.Headers {
			if h.Key == ProvenanceHeader && bytes.HasPrefix(h.Value, []byte("west/")) {
				return true
			}
		}
		return false
	}
	cp := &copier{t: t, srcSeeds: srcC.Addrs(), dst: dst, topic: "orders", destTopic: "orders",
		m: &OffsetMap{}, skip: looped, headers: []kgo.RecordHeader{{Key: ProvenanceHeader, Value: []byte("east/p")}}}
	cp.m.Begin(Position{})
	cp.stopAfterRecordsN = 23 // the next source record, offset 23, is a looped one
	ckpt := cp.run()
	ckptMap := cp.m.Clone()
	cp.stopAfterRecordsN = 20
	crashed := cp.run()
	tp := TP{"orders", 0}

	m := ckptMap.Clone()
	got, err := ReconcileWith(ctx, src, dst, tp, "orders", ckpt, m, ReconcileOptions{Skip: looped})
	if err != nil {
		t.Fatal(err)
	}
	if got != crashed || m.String() != cp.m.String() {
		t.Fatalf("ReconcileWith = %+v %v, want %+v %v", got, m, crashed, cp.m)
	}
	// Without being told, the pairing is off by the skipped record, and
	// that is reported rather than trusted.
	if _, err := Reconcile(ctx, src, dst, tp, "orders", ckpt, ckptMap.Clone()); !errors.Is(err, ErrStranger) {
		t.Fatalf("Reconcile without Skip: %v, want ErrStranger", err)
	}
	// Finish and check the copy: every record but the looped ones.
	cp.m, cp.pos, cp.stopAfterRecordsN = m, got, 0
	cp.run()
	var want []*kgo.Record
	for _, r := range consumeAll(t, srcC.Addrs(), "orders", 0, 0) {
		if !looped(r) {
			want = append(want, r)
		}
	}
	have := consumeAll(t, dstC.Addrs(), "orders", 0, 0)
	if len(have) != len(want) {
		t.Fatalf("destination has %d records, want %d", len(have), len(want))
	}
	for i := range want {
		if differs(have[i], want[i]) != "" {
			t.Fatalf("record %d: %s", i, differs(have[i], want[i]))
		}
	}
}
