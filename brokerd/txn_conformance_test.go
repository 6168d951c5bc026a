package brokerd_test

// Transactions against brokerd with franz-go's transactional producer and
// read_committed / read_uncommitted consumers.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runTxns produces n transactions of perTxn records to topic with one
// transactional producer, aborting every third; it returns the values
// committed and all values, in production order.
func runTxns(t *testing.T, cl *kgo.Client, topic string, n, perTxn int) (committed, all []string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		var vals []string
		for j := range perTxn {
			v := fmt.Sprintf("txn%02d-%02d", i, j)
			vals = append(vals, v)
			// One partition keeps a single order to compare.
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		commit := i%3 != 2
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %d: %v", i, err)
		}
		all = append(all, vals...)
		if commit {
			committed = append(committed, vals...)
		}
	}
	return committed, all
}

// consumeValues reads topic from the start until want values arrived.
func consumeValues(t *testing.T, addrs []string, topic string, level kgo.IsolationLevel, want int) []string {
	t.Helper()
	cons := confClient(t, addrs, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	confWait(t, 30*time.Second, fmt.Sprintf("%d values", want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) < want {
			return fmt.Errorf("have %d", len(got))
		}
		return nil
	})
	// Nothing more may follow.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	return got
}

func TestTxnReadCommittedSeesOnlyCommitted(t *testing.T) {
	c := confStart(t, t.TempDir(), 3)
	addrs := c.Addrs()
	topic := "txn-rc"
	confCreateTopic(t, addrs, topic, 3)
	prod := confClient(t, addrs, kgo.TransactionalID("rc-producer"), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	committed, all := runTxns(t, prod, topic, 9, 4)

	if got := consumeValues(t, addrs, topic, kgo.ReadCommitted(), len(committed)); !slices.Equal(got, committed) {
		t.Fatalf("read_committed:\n got %q\nwant %q", got, committed)
	}
	if got := consumeValues(t, addrs, topic, kgo.ReadUncommitted(), len(all)); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted:\n got %q\nwant %q", got, all)
	}

	// An open transaction holds the last stable offset back; the
	// committed end offset moves once it commits.
	adm := kadm.NewClient(confClient(t, addrs))
	ctx := context.Background()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	lso, _ := stable.Lookup(topic, 0)
	if lso.Offset != end.Offset-1 || end.Err != nil || lso.Err != nil {
		t.Logf("end %+v lso %+v", end, lso)
		t.Fatalf("LSO %d with an open transaction, want %d (high watermark %d less the open record)", lso.Offset, end.Offset-1, end.Offset)
	}
	described, err := adm.DescribeTransactions(ctx, "rc-producer")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := described["rc-producer"]; !ok || d.State != "Ongoing" || len(d.Topics) != 1 {
		t.Fatalf("DescribeTransactions: %+v", described)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	confWait(t, 10*time.Second, "LSO at the high watermark", func() error {
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		stable, err2 := adm.ListCommittedOffsets(ctx, topic)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		e, _ := ends.Lookup(topic, 0)
		s, _ := stable.Lookup(topic, 0)
		if e.Offset != s.Offset {
			return fmt.Errorf("LSO %d, HW %d", s.Offset, e.Offset)
		}
		return nil
	})
	listed, err := adm.ListTransactions(ctx, nil, []string{"CompleteCommit"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["rc-producer"]; !ok {
		t.Fatalf("ListTransactions CompleteCommit: %+v", listed)
	}
}

func TestTxnOlderEpochFenced(t *testing.T) {
	c := confStart(t, t.TempDir(), 3)
	addrs := c.Addrs()
	topic := "txn-fence"
	confCreateTopic(t, addrs, topic, 1)
	ctx := context.Background()
	old := confClient(t, addrs, kgo.TransactionalID("fenced-id"), kgo.DefaultProduceTopic(topic))
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A new producer of the same id fences the old one and aborts what
	// it left open.
	cur := confClient(t, addrs, kgo.TransactionalID("fenced-id"), kgo.DefaultProduceTopic(topic))
	if err := cur.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cur.ProduceSync(ctx, kgo.StringRecord("current")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cur.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := old.ProduceSync(ctx, kgo.StringRecord("zombie-2")).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("old producer after fencing: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if got := consumeValues(t, addrs, topic, kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"current"}) {
		t.Fatalf("read_committed after fencing: %q", got)
	}
}

func TestTxnTimeoutAborts(t *testing.T) {
	c := confStart(t, t.TempDir(), 1)
	addrs := c.Addrs()
	topic := "txn-timeout"
	confCreateTopic(t, addrs, topic, 1)
	ctx := context.Background()
	prod := confClient(t, addrs, kgo.TransactionalID("slow"), kgo.TransactionTimeout(time.Second), kgo.DefaultProduceTopic(topic))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, kgo.StringRecord("never")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(confClient(t, addrs))
	confWait(t, 20*time.Second, "the coordinator to abort the timed-out transaction", func() error {
		d, err := adm.DescribeTransactions(ctx, "slow")
		if err != nil {
			return err
		}
		if st := d["slow"].State; st != "CompleteAbort" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := stable.Lookup(topic, 0); o.Offset != 2 {
		t.Fatalf("LSO %d after the abort, want 2 (record and marker)", o.Offset)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit after the timeout abort succeeded")
	}
}

// TestTxnKill9Recovery kills the real broker with one transaction
// committed and one open, restarts it on the same folder, and checks that
// the committed one is whole and the open one is aborted once its timeout
// passes: nothing half-visible.
func TestTxnKill9Recovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the strait binary")
	}
	dir := t.TempDir()
	p := startBinary(t, dir, 1)
	topic := "txn-crash"
	confCreateTopic(t, p.addrs, topic, 2)
	ctx := context.Background()
	mk := func(id string, timeout time.Duration) *kgo.Client {
		return confClient(t, p.addrs, kgo.TransactionalID(id), kgo.TransactionTimeout(timeout),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	done := mk("done", time.Minute)
	if err := done.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var committed []string
	for i := range 6 {
		v := fmt.Sprintf("committed-%d", i)
		committed = append(committed, v)
		if err := done.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := done.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	open := mk("open", 3*time.Second)
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := open.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.kill()
	done.Close()
	open.Close()

	p2 := startBinary(t, dir, 1)
	adm := kadm.NewClient(confClient(t, p2.addrs))
	confWait(t, 30*time.Second, "the open transaction to be aborted after restart", func() error {
		d, err := adm.DescribeTransactions(ctx, "open")
		if err != nil {
			return err
		}
		if st := d["open"].State; st != "CompleteAbort" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	got := consumeValues(t, p2.addrs, topic, kgo.ReadCommitted(), len(committed))
	slices.Sort(got)
	if !slices.Equal(got, committed) {
		t.Fatalf("read_committed after kill -9:\n got %q\nwant %q", got, committed)
	}
	if all := consumeValues(t, p2.addrs, topic, kgo.ReadUncommitted(), len(committed)+4); len(all) != len(committed)+4 {
		t.Fatalf("read_uncommitted after kill -9: %d records, want %d", len(all), len(committed)+4)
	}
}
