package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memJournal is an in-memory Journal; fail makes Append fail.
type memJournal struct {
	mu   sync.Mutex
	recs []KV
	fail error
}

func (j *memJournal) Append(records []KV) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	for _, r := range records {
		j.recs = append(j.recs, KV{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
	}
	return nil
}

func (j *memJournal) Replay(fn func(key, value []byte) error) error {
	j.mu.Lock()
	recs := slices.Clone(j.recs)
	j.mu.Unlock()
	for _, r := range recs {
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

func (j *memJournal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.recs)
}

type markerCall struct {
	pid    int64
	epoch  int16
	commit bool
	parts  []TopicPartition
}

// memMarkers records marker writes; fail makes them fail.
type memMarkers struct {
	mu    sync.Mutex
	calls []markerCall
	fail  error
}

func (m *memMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts []TopicPartition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.calls = append(m.calls, markerCall{pid, epoch, commit, slices.Clone(parts)})
	return nil
}

func (m *memMarkers) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func (m *memMarkers) written() []markerCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

var errDisk = errors.New("disk on fire")

var t0 = time.UnixMilli(1_700_000_000_000)

func testConfig(j *memJournal, m *memMarkers) Config {
	next := int64(1000)
	return Config{
		Journal: j,
		Markers: m,
		AllocProducerID: func() (int64, error) {
			next++
			return next, nil
		},
		PartitionExists: func(topic string, _ int32) bool { return topic != "missing" },
		MaxTimeout:      time.Minute,
		RetryInterval:   time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

// fixture drives the state logic directly: every call takes the time.
type fixture struct {
	t  *testing.T
	st *state
	j  *memJournal
	m  *memMarkers
}

func newFixture(t *testing.T) *fixture {
	j, m := &memJournal{}, &memMarkers{}
	return &fixture{t: t, st: newState(testConfig(j, m)), j: j, m: m}
}

func (f *fixture) init(id string, pid int64, epoch int16, now time.Time) *kmsg.InitProducerIDResponse {
	r := kmsg.NewPtrInitProducerIDRequest()
	r.Version = 4
	r.TransactionalID, r.TransactionTimeoutMillis = &id, 10_000
	r.ProducerID, r.ProducerEpoch = pid, epoch
	return f.st.initProducerID(r, now)
}

func (f *fixture) mustInit(id string, now time.Time) (int64, int16) {
	f.t.Helper()
	resp := f.init(id, -1, -1, now)
	if resp.ErrorCode != 0 {
		f.t.Fatalf("init %s: %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func (f *fixture) add(version int16, id string, pid int64, epoch int16, now time.Time, tps ...TopicPartition) []int16 {
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.Version = version
	r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, pid, epoch
	for _, tp := range tps {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tp.Topic, []int32{tp.Partition}
		r.Topics = append(r.Topics, rt)
	}
	var codes []int16
	for _, rt := range f.st.addPartitions(r, now).Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

func (f *fixture) end(id string, pid int64, epoch int16, commit bool, now time.Time) int16 {
	r := kmsg.NewPtrEndTxnRequest()
	r.Version = 3
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = id, pid, epoch, commit
	return f.st.endTxn(r, now).ErrorCode
}

func (f *fixture) txn(id string) txn {
	f.t.Helper()
	t := f.st.txns[id]
	if t == nil {
		f.t.Fatalf("no transactional id %q", id)
	}
	return *t
}

var (
	tpA = TopicPartition{"a", 0}
	tpB = TopicPartition{"b", 1}
)

func TestInitFencesAndBumps(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	if epoch != 0 || f.j.len() != 1 {
		t.Fatalf("first init: epoch %d, %d journal records; want 0 and 1", epoch, f.j.len())
	}
	pid2, epoch2 := f.mustInit("tx", t0)
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d/%d, want %d/1", pid2, epoch2, pid)
	}
	// The older epoch is fenced everywhere, with the code its version knows.
	for _, tc := range []struct {
		version int16
		want    int16
	}{{1, kerr.InvalidProducerEpoch.Code}, {2, kerr.ProducerFenced.Code}, {3, kerr.ProducerFenced.Code}} {
		if codes := f.add(tc.version, "tx", pid, 0, t0, tpA); codes[0] != tc.want {
			t.Errorf("AddPartitions v%d with the fenced epoch: %v, want %d", tc.version, codes, tc.want)
		}
	}
	if code := f.end("tx", pid, 0, true, t0); code != kerr.ProducerFenced.Code {
		t.Errorf("EndTxn with the fenced epoch: %d", code)
	}
	if codes := f.add(3, "tx", pid+99, 1, t0, tpA); codes[0] != kerr.InvalidProducerIDMapping.Code {
		t.Errorf("AddPartitions with another producer id: %v", codes)
	}
	if codes := f.add(3, "nobody", pid, 1, t0, tpA); codes[0] != kerr.InvalidProducerIDMapping.Code {
		t.Errorf("AddPartitions for an unknown id: %v", codes)
	}

	// KIP-360, by table: the answer to an InitProducerId naming a
	// producer, with the coordinator at pid/1.
	for _, tc := range []struct {
		name      string
		pid       int64
		epoch     int16
		wantCode  int16
		wantEpoch int16
	}{
		{"retry of the previous bump", pid, 0, 0, 1},
		{"stranger producer id", pid + 5, 1, kerr.ProducerFenced.Code, -1},
		{"epoch from the future", pid, 7, kerr.ProducerFenced.Code, -1},
		{"current producer bumps", pid, 1, 0, 2},
	} {
		resp := f.init("tx", tc.pid, tc.epoch, t0)
		if resp.ErrorCode != tc.wantCode || resp.ProducerEpoch != tc.wantEpoch {
			t.Errorf("%s: code %d epoch %d, want code %d epoch %d", tc.name, resp.ErrorCode, resp.ProducerEpoch, tc.wantCode, tc.wantEpoch)
		}
	}

	// Invalid timeouts.
	for _, ms := range []int32{0, -1, int32(2 * time.Minute / time.Millisecond)} {
		r := kmsg.NewPtrInitProducerIDRequest()
		id := "tx"
		r.TransactionalID, r.TransactionTimeoutMillis = &id, ms
		if code := f.st.initProducerID(r, t0).ErrorCode; code != kerr.InvalidTransactionTimeout.Code {
			t.Errorf("timeout %dms: code %d, want INVALID_TRANSACTION_TIMEOUT", ms, code)
		}
	}

	// At the last epoch the id gets a new producer id.
	f.st.txns["tx"].epoch = math.MaxInt16 - 1
	pid3, epoch3 := f.mustInit("tx", t0)
	if pid3 == pid || epoch3 != 0 {
		t.Fatalf("init at the last epoch: %d/%d, want a new producer id at epoch 0", pid3, epoch3)
	}
}

// TestInitAbortsOpenTransaction: a new producer of the id aborts what the
// previous one left open, with the new epoch, so the old producer cannot
// write to those partitions any more.
func TestInitAbortsOpenTransaction(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	if codes := f.add(3, "tx", pid, epoch, t0, tpA, tpB); !slices.Equal(codes, []int16{0, 0}) {
		t.Fatalf("add: %v", codes)
	}
	_, epoch2 := f.mustInit("tx", t0.Add(time.Second))
	if epoch2 != epoch+1 {
		t.Fatalf("epoch after fencing init: %d, want %d", epoch2, epoch+1)
	}
	want := []markerCall{{pid, epoch + 1, false, []TopicPartition{tpA, tpB}}}
	if got := f.m.written(); !equalCalls(got, want) {
		t.Fatalf("markers: %+v, want %+v", got, want)
	}
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStateEmpty || len(tx.parts) != 0 {
		t.Fatalf("after fencing init: %v with %d partitions, want Empty and none", tx.state, len(tx.parts))
	}
}

func equalCalls(a, b []markerCall) bool {
	return slices.EqualFunc(a, b, func(x, y markerCall) bool {
		return x.pid == y.pid && x.epoch == y.epoch && x.commit == y.commit && slices.Equal(x.parts, y.parts)
	})
}

func TestAddPartitions(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	missing := TopicPartition{"missing", 0}
	if codes := f.add(3, "tx", pid, epoch, t0, tpA, missing); !slices.Equal(codes, []int16{kerr.OperationNotAttempted.Code, kerr.UnknownTopicOrPartition.Code}) {
		t.Fatalf("add with a missing partition: %v", codes)
	}
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStateEmpty {
		t.Fatalf("a refused add started a transaction: %v", tx.state)
	}
	at := t0.Add(time.Second)
	if codes := f.add(3, "tx", pid, epoch, at, tpA); codes[0] != 0 {
		t.Fatalf("add: %v", codes)
	}
	records := f.j.len()
	// Adding the same partition again changes nothing and journals nothing.
	if codes := f.add(3, "tx", pid, epoch, at.Add(time.Second), tpA); codes[0] != 0 || f.j.len() != records {
		t.Fatalf("re-add: %v, journal %d → %d records", codes, records, f.j.len())
	}
	f.add(3, "tx", pid, epoch, at.Add(2*time.Second), tpB)
	tx := f.txn("tx")
	if tx.state != kmsg.TransactionStateOngoing || !tx.start.Equal(at) || !slices.Equal(tx.partList(), []TopicPartition{tpA, tpB}) {
		t.Fatalf("transaction: %v started %v with %v; want Ongoing from the first add with a and b", tx.state, tx.start, tx.partList())
	}
	// Verify: what the produce path asks before appending.
	codes := f.st.verify("tx", pid, epoch, []TopicPartition{tpA, {"c", 0}})
	if !slices.Equal(codes, []int16{0, kerr.InvalidTxnState.Code}) {
		t.Fatalf("verify: %v", codes)
	}
	if codes := f.st.verify("tx", pid, epoch-1, []TopicPartition{tpA}); codes[0] != kerr.ProducerFenced.Code {
		t.Fatalf("verify with an old epoch: %v", codes)
	}
}

func TestEndTxn(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			f := newFixture(t)
			pid, epoch := f.mustInit("tx", t0)
			if code := f.end("tx", pid, epoch, commit, t0); code != kerr.InvalidTxnState.Code {
				t.Fatalf("end with nothing open: %d, want INVALID_TXN_STATE", code)
			}
			f.add(3, "tx", pid, epoch, t0, tpA, tpB)
			if code := f.end("tx", pid, epoch, commit, t0.Add(time.Second)); code != 0 {
				t.Fatalf("end: %d", code)
			}
			want := []markerCall{{pid, epoch, commit, []TopicPartition{tpA, tpB}}}
			if got := f.m.written(); !equalCalls(got, want) {
				t.Fatalf("markers: %+v, want %+v", got, want)
			}
			wantState := kmsg.TransactionStateCompleteAbort
			if commit {
				wantState = kmsg.TransactionStateCompleteCommit
			}
			if tx := f.txn("tx"); tx.state != wantState || len(tx.parts) != 0 || !tx.start.IsZero() {
				t.Fatalf("after end: %v, %d partitions, start %v", tx.state, len(tx.parts), tx.start)
			}
			// A retry is answered as the first; the opposite decision is
			// refused; neither writes markers again.
			if code := f.end("tx", pid, epoch, commit, t0.Add(2*time.Second)); code != 0 {
				t.Fatalf("retried end: %d", code)
			}
			if code := f.end("tx", pid, epoch, !commit, t0.Add(2*time.Second)); code != kerr.InvalidTxnState.Code {
				t.Fatalf("opposite end: %d, want INVALID_TXN_STATE", code)
			}
			if n := len(f.m.written()); n != 1 {
				t.Fatalf("%d marker writes, want 1", n)
			}
			// The next transaction starts cleanly.
			if codes := f.add(3, "tx", pid, epoch, t0.Add(3*time.Second), tpB); codes[0] != 0 {
				t.Fatalf("next add: %v", codes)
			}
		})
	}
}

// TestMarkerFailureRetried: a decided transaction whose markers fail is
// still answered as ended, blocks the next transaction with
// CONCURRENT_TRANSACTIONS, and completes on the retry timer.
func TestMarkerFailureRetried(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	f.add(3, "tx", pid, epoch, t0, tpA)
	f.m.setFail(errDisk)
	if code := f.end("tx", pid, epoch, true, t0); code != 0 {
		t.Fatalf("end with failing markers: %d, want 0 (the outcome is durable)", code)
	}
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStatePrepareCommit {
		t.Fatalf("state %v, want PrepareCommit", tx.state)
	}
	if codes := f.add(3, "tx", pid, epoch, t0, tpB); codes[0] != kerr.ConcurrentTransactions.Code {
		t.Fatalf("add while markers pend: %v, want CONCURRENT_TRANSACTIONS", codes)
	}
	dl, ok := f.st.nextDeadline(t0)
	if !ok || !dl.Equal(t0.Add(time.Second)) {
		t.Fatalf("next deadline %v %v, want the retry at t0+1s", dl, ok)
	}
	f.m.setFail(nil)
	f.st.tick(t0.Add(500 * time.Millisecond))
	if len(f.m.written()) != 0 {
		t.Fatal("markers retried before the retry interval")
	}
	f.st.tick(dl)
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStateCompleteCommit {
		t.Fatalf("after the retry: %v, want CompleteCommit", tx.state)
	}
	if _, ok := f.st.nextDeadline(dl); ok {
		t.Fatal("a deadline remains with nothing pending")
	}
}

// TestTimeoutAborts: an Ongoing transaction is aborted at start+timeout,
// not before, with a bumped epoch that fences its producer.
func TestTimeoutAborts(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	start := t0.Add(time.Second)
	f.add(3, "tx", pid, epoch, start, tpA)
	dl, ok := f.st.nextDeadline(start)
	if !ok || !dl.Equal(start.Add(10*time.Second)) {
		t.Fatalf("deadline %v %v, want start+10s", dl, ok)
	}
	f.st.tick(dl.Add(-time.Millisecond))
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStateOngoing {
		t.Fatalf("aborted early: %v", tx.state)
	}
	f.st.tick(dl)
	tx := f.txn("tx")
	if tx.state != kmsg.TransactionStateCompleteAbort || tx.epoch != epoch+1 {
		t.Fatalf("after the timeout: %v epoch %d, want CompleteAbort at epoch %d", tx.state, tx.epoch, epoch+1)
	}
	want := []markerCall{{pid, epoch + 1, false, []TopicPartition{tpA}}}
	if got := f.m.written(); !equalCalls(got, want) {
		t.Fatalf("markers %+v, want %+v", got, want)
	}
	if code := f.end("tx", pid, epoch, true, dl); code != kerr.ProducerFenced.Code {
		t.Fatalf("commit by the timed-out producer: %d, want PRODUCER_FENCED", code)
	}
}

// TestJournalFailureChangesNothing: a change the journal refuses is not
// applied.
func TestJournalFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	pid, epoch := f.mustInit("tx", t0)
	f.j.fail = errDisk
	if codes := f.add(3, "tx", pid, epoch, t0, tpA); codes[0] != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("add with a failing journal: %v", codes)
	}
	if resp := f.init("new", -1, -1, t0); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("init with a failing journal: %d", resp.ErrorCode)
	}
	if tx := f.txn("tx"); tx.state != kmsg.TransactionStateEmpty || len(tx.parts) != 0 {
		t.Fatalf("state changed without a journal record: %v %v", tx.state, tx.partList())
	}
	if _, ok := f.st.txns["new"]; ok {
		t.Fatal("an id was created without a journal record")
	}
}

// TestReplayRebuilds: replaying the journal gives back every id as it
// was: producer, epoch, state, partitions and the open transaction's start
// (so it times out when it would have).
func TestReplayRebuilds(t *testing.T) {
	f := newFixture(t)
	pidO, epochO := f.mustInit("ongoing", t0)
	f.add(3, "ongoing", pidO, epochO, t0.Add(time.Second), tpA, tpB)
	pidC, epochC := f.mustInit("committed", t0)
	f.add(3, "committed", pidC, epochC, t0, tpA)
	f.end("committed", pidC, epochC, true, t0.Add(2*time.Second))
	f.mustInit("bumped", t0)
	f.mustInit("bumped", t0)
	pidP, epochP := f.mustInit("pending", t0)
	f.add(3, "pending", pidP, epochP, t0, tpB)
	f.m.setFail(errDisk)
	f.end("pending", pidP, epochP, false, t0.Add(3*time.Second))
	f.m.setFail(nil)

	re := newState(testConfig(f.j, &memMarkers{}))
	if err := f.j.Replay(re.replay); err != nil {
		t.Fatal(err)
	}
	if len(re.txns) != len(f.st.txns) {
		t.Fatalf("replayed %d ids, want %d", len(re.txns), len(f.st.txns))
	}
	for id, want := range f.st.txns {
		got := re.txns[id]
		if got.pid != want.pid || got.epoch != want.epoch || got.state != want.state || got.timeout != want.timeout ||
			!got.start.Equal(want.start) || !slices.Equal(got.partList(), want.partList()) {
			t.Errorf("%s: replayed %+v, want %+v", id, *got, *want)
		}
	}
	// The replayed open transaction times out when the original would
	// have; the pending abort is completed by the first tick.
	dl, _ := re.nextDeadline(t0.Add(5 * time.Second))
	if !dl.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("replayed deadline %v, want now (pending markers)", dl)
	}
	re.tick(t0.Add(5 * time.Second))
	if st := re.txns["pending"].state; st != kmsg.TransactionStateCompleteAbort {
		t.Fatalf("pending after the first tick: %v", st)
	}
	dl, _ = re.nextDeadline(t0.Add(5 * time.Second))
	if !dl.Equal(t0.Add(11 * time.Second)) {
		t.Fatalf("replayed ongoing deadline %v, want its first add + 10s", dl)
	}
	// A tombstone removes an id.
	if err := re.replay(txnKey("bumped"), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := re.txns["bumped"]; ok {
		t.Fatal("a tombstone left the id")
	}
}

// TestCoordinatorRecovers runs the Coordinator itself with an injected
// clock: a transaction left PrepareCommit by failing markers is completed
// as soon as a new coordinator starts on the same journal, and one left
// Ongoing aborts once the clock passes its timeout.
func TestCoordinatorRecovers(t *testing.T) {
	ctx := context.Background()
	j, m := &memJournal{}, &memMarkers{}
	var mu sync.Mutex
	now := t0
	cfg := testConfig(j, m)
	cfg.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	init := func(c *Coordinator, id string) *kmsg.InitProducerIDResponse {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionalID, r.TransactionTimeoutMillis = &id, 10_000
		resp, err := c.Handle(ctx, r)
		if err != nil || resp.(*kmsg.InitProducerIDResponse).ErrorCode != 0 {
			t.Fatalf("init %s: %v %v", id, resp, err)
		}
		return resp.(*kmsg.InitProducerIDResponse)
	}
	add := func(c *Coordinator, id string, ip *kmsg.InitProducerIDResponse) {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, ip.ProducerID, ip.ProducerEpoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tpA.Topic, []int32{tpA.Partition}
		r.Topics = append(r.Topics, rt)
		if _, err := c.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	describe := func(c *Coordinator, id string) string {
		r := kmsg.NewPtrDescribeTransactionsRequest()
		r.TransactionalIDs = []string{id}
		resp, err := c.Handle(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].State
	}
	ipC := init(c, "commit-me")
	add(c, "commit-me", ipC)
	ipO := init(c, "left-open")
	add(c, "left-open", ipO)
	m.setFail(errDisk)
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "commit-me", ipC.ProducerID, ipC.ProducerEpoch, true
	if resp, err := c.Handle(ctx, end); err != nil || resp.(*kmsg.EndTxnResponse).ErrorCode != 0 {
		t.Fatalf("end: %v %v", resp, err)
	}
	if st := describe(c, "commit-me"); st != kmsg.TransactionStatePrepareCommit.String() {
		t.Fatalf("before the restart: %s", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Handle(ctx, end); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handle after Close: %v, want ErrClosed", err)
	}

	// Restart with working markers.
	m.setFail(nil)
	c2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if st := describe(c2, "commit-me"); st != kmsg.TransactionStateCompleteCommit.String() {
		t.Fatalf("after the restart: %s, want CompleteCommit", st)
	}
	want := []markerCall{{ipC.ProducerID, ipC.ProducerEpoch, true, []TopicPartition{tpA}}}
	if got := m.written(); !equalCalls(got, want) {
		t.Fatalf("markers after the restart: %+v, want %+v", got, want)
	}
	if st := describe(c2, "left-open"); st != kmsg.TransactionStateOngoing.String() {
		t.Fatalf("left-open after the restart: %s, want Ongoing", st)
	}
	// Past its timeout the loop's timer aborts it (the timer is re-armed
	// after every call, with the time already past).
	mu.Lock()
	now = t0.Add(time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for describe(c2, "left-open") != kmsg.TransactionStateCompleteAbort.String() {
		if time.Now().After(deadline) {
			t.Fatalf("left-open never aborted: %s", describe(c2, "left-open"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRejectsCorruptJournal(t *testing.T) {
	j := &memJournal{recs: []KV{{Key: txnKey("x"), Value: []byte{0, 0, 1}}}}
	if _, err := New(testConfig(j, &memMarkers{})); !errors.Is(err, ErrCorruptJournal) {
		t.Fatalf("New on a corrupt record: %v, want ErrCorruptJournal", err)
	}
	j = &memJournal{recs: []KV{{Key: []byte{0}, Value: nil}}}
	if _, err := New(testConfig(j, &memMarkers{})); !errors.Is(err, ErrCorruptJournal) {
		t.Fatalf("New on a corrupt key: %v, want ErrCorruptJournal", err)
	}
	// A key version this code does not know is skipped.
	unknown := kmsg.TxnMetadataKey{Version: 9, TransactionalID: "future"}
	j = &memJournal{recs: []KV{{Key: unknown.AppendTo(nil), Value: []byte("whatever")}}}
	c, err := New(testConfig(j, &memMarkers{}))
	if err != nil {
		t.Fatalf("New with an unknown key version: %v", err)
	}
	c.Close()
}

// FuzzReplay: any journal record either decodes or fails with
// ErrCorruptJournal, never panics; a record that decodes re-encodes to one
// that decodes to the same id.
func FuzzReplay(f *testing.F) {
	f.Add(txnKey("tx"), txnValue(&txn{id: "tx", pid: 7, epoch: 3, timeout: time.Second, state: kmsg.TransactionStateOngoing,
		parts: map[TopicPartition]struct{}{tpA: {}, tpB: {}}, start: t0, updated: t0}))
	f.Add(txnKey("tx"), txnValue(&txn{id: "tx", pid: 1, state: kmsg.TransactionStateCompleteCommit, parts: map[TopicPartition]struct{}{}, updated: t0}))
	f.Add(txnKey(""), []byte(nil))
	f.Add([]byte{0, 0}, []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := newState(testConfig(nil, nil))
		if err := s.replay(key, value); err != nil {
			if !errors.Is(err, ErrCorruptJournal) {
				t.Fatalf("replay error %v is not ErrCorruptJournal", err)
			}
			return
		}
		for id, got := range s.txns {
			s2 := newState(testConfig(nil, nil))
			if err := s2.replay(txnKey(id), txnValue(got)); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			again := s2.txns[id]
			if again == nil || again.pid != got.pid || again.epoch != got.epoch || again.state != got.state ||
				again.timeout != got.timeout || !again.start.Equal(got.start) || !slices.Equal(again.partList(), got.partList()) {
				t.Fatalf("round trip changed %q: %+v → %+v", id, got, again)
			}
		}
	})
}

// TestMaxTransactionalIDs: once the coordinator holds MaxTransactionalIDs
// ids, a new id is refused with POLICY_VIOLATION and nothing journaled;
// ids already held keep bumping, and ids replayed beyond the bound stay.
func TestMaxTransactionalIDs(t *testing.T) {
	f := newFixture(t)
	f.st.cfg.MaxTransactionalIDs = 3
	for i := range 3 {
		f.mustInit(fmt.Sprintf("tx%d", i), t0)
	}
	recs := f.j.len()
	for i := range 2 {
		resp := f.init("fresh", -1, -1, t0.Add(time.Duration(i)*time.Second))
		if resp.ErrorCode != kerr.PolicyViolation.Code || resp.ProducerID != -1 {
			t.Fatalf("init of a 4th id: code %d pid %d, want POLICY_VIOLATION and -1", resp.ErrorCode, resp.ProducerID)
		}
	}
	if _, ok := f.st.txns["fresh"]; ok || f.j.len() != recs {
		t.Fatalf("refused id held (%v) or journaled (%d records, want %d)", ok, f.j.len(), recs)
	}
	if f.st.refused != 1 {
		t.Errorf("refusals held back from the log: %d, want 1 (the first was logged)", f.st.refused)
	}
	if _, epoch := f.mustInit("tx1", t0); epoch != 1 {
		t.Errorf("existing id at the bound: epoch %d, want 1", epoch)
	}

	// Replay keeps every id the journal holds, whatever the bound; new
	// ones are still refused.
	cfg := testConfig(f.j, f.m)
	cfg.MaxTransactionalIDs = 2
	st := newState(cfg)
	if err := f.j.Replay(st.replay); err != nil {
		t.Fatal(err)
	}
	f2 := &fixture{t: t, st: st, j: f.j, m: f.m}
	if len(st.txns) != 3 {
		t.Fatalf("replayed %d ids, want 3", len(st.txns))
	}
	if code := f2.init("fresh", -1, -1, t0).ErrorCode; code != kerr.PolicyViolation.Code {
		t.Errorf("new id after replay over the bound: code %d", code)
	}
	if _, epoch := f2.mustInit("tx2", t0); epoch != 1 {
		t.Errorf("replayed id: epoch %d, want 1", epoch)
	}

	// No bound: any number of ids.
	f3 := newFixture(t)
	for i := range 10 {
		f3.mustInit(fmt.Sprintf("tx%d", i), t0)
	}
}
