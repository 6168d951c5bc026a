package mirror

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd"
	"strait/checkpoint"
	"strait/internal/recordbatch"
	"strait/pipelines"
)

// faultDialer connects the mirror's destination clients to a real brokerd
// through connections that can tamper with the answers to produce requests
// the broker has already handled: the records landed, but the writer hears
// an error, or hears nothing until the test releases the answer.
type faultDialer struct {
	mu       sync.Mutex
	failCode int16 // error code for the next failN produce answers
	failN    int
	failed   int           // produce answers rewritten so far
	hold     chan struct{} // set: the next produce answer waits until it closes
	held     chan struct{} // closed once an answer is being held
}

// failNext makes the next n produce answers carry code for every partition.
func (d *faultDialer) failNext(code int16, n int) {
	d.mu.Lock()
	d.failCode, d.failN = code, n
	d.mu.Unlock()
}

func (d *faultDialer) failures() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

// holdNext holds the next produce answer; held is closed when the broker
// has answered (the write landed), and the answer passes once release is
// called.
func (d *faultDialer) holdNext() (held <-chan struct{}, release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold, d.held = make(chan struct{}), make(chan struct{})
	hold := d.hold
	return d.held, func() { close(hold) }
}

func (d *faultDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: c, d: d, produce: map[int32]int16{}}, nil
}

// faultConn reads the request headers the client writes to know which
// answers belong to produce requests, and reads whole answer frames from
// the broker so it can rewrite or hold them.
type faultConn struct {
	net.Conn
	d *faultDialer

	mu      sync.Mutex
	produce map[int32]int16 // correlation id -> version of produce requests in flight
	skip    int             // bytes of the current request frame still to pass
	rbuf    []byte          // answer bytes not yet read by the client
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	for p := b; len(p) > 0; {
		if c.skip > 0 {
			n := min(c.skip, len(p))
			c.skip, p = c.skip-n, p[n:]
			continue
		}
		if len(p) < 12 {
			break // the client writes each request whole
		}
		size := int(binary.BigEndian.Uint32(p))
		if int16(binary.BigEndian.Uint16(p[4:])) == kmsg.Produce.Int16() {
			c.produce[int32(binary.BigEndian.Uint32(p[8:]))] = int16(binary.BigEndian.Uint16(p[6:]))
		}
		c.skip = 4 + size
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *faultConn) Read(b []byte) (int, error) {
	if len(c.rbuf) == 0 {
		var size [4]byte
		if _, err := io.ReadFull(c.Conn, size[:]); err != nil {
			return 0, err
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c.Conn, body); err != nil {
			return 0, err
		}
		c.mu.Lock()
		corr := int32(binary.BigEndian.Uint32(body))
		version, isProduce := c.produce[corr]
		delete(c.produce, corr)
		c.mu.Unlock()
		if isProduce {
			body = c.d.tamper(version, body)
		}
		c.rbuf = binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		c.rbuf = append(c.rbuf, body...)
	}
	n := copy(b, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// tamper applies the armed fault to one produce answer (body: the frame
// after its size).
func (d *faultDialer) tamper(version int16, body []byte) []byte {
	d.mu.Lock()
	hold, held := d.hold, d.held
	d.hold, d.held = nil, nil
	code, fail := d.failCode, d.failN > 0
	if fail {
		d.failN--
		d.failed++
	}
	d.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	if !fail {
		return body
	}
	hdr := 4 // correlation id
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(version)
	if resp.IsFlexible() {
		hdr++ // an empty tag section
	}
	if err := resp.ReadFrom(body[hdr:]); err != nil {
		panic("fault dialer: unreadable produce answer: " + err.Error())
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			resp.Topics[i].Partitions[j].ErrorCode = code
			resp.Topics[i].Partitions[j].BaseOffset = -1
		}
	}
	return resp.AppendTo(append([]byte(nil), body[:hdr]...))
}

// writerFixture is one task of a pipeline between two brokerd clusters,
// without the engine's fetchers and driver: the test hands the task chunks
// and calls its writer directly. The destination clients dial through a
// faultDialer.
type writerFixture struct {
	src, dst *brokerd.Cluster
	p        *pipeline
	tk       *task
	faults   *faultDialer
	leader   int32 // source leader of w/0
}

const writerTopic = "w"

func newWriterFixture(t *testing.T, mode pipelines.Mode) *writerFixture {
	t.Helper()
	ctx := context.Background()
	fx := &writerFixture{faults: &faultDialer{}}
	fx.src, fx.dst = clusterPair(t)
	createTopic(t, client(t, fx.src.Addrs()), writerTopic, 1, nil)
	createTopic(t, client(t, fx.dst.Addrs()), writerTopic, 1, nil)
	cfg := config(t, fx.src.Addrs(), fx.dst.Addrs(), mode, writerTopic)
	// Injected failures must not auto-pause the task.
	e, err := New(cfg, Options{Logger: testLogger(t), MaxFailures: 1000})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(e, cfg, cfg.Pipelines[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := p.clients(); err != nil {
		t.Fatal(err)
	}
	redial := func(cl *kgo.Client) *kgo.Client {
		nc, err := kgo.NewClient(append(cl.Opts(), kgo.Dialer(fx.faults.dial))...)
		if err != nil {
			t.Fatal(err)
		}
		cl.Close()
		return nc
	}
	p.dst = redial(p.dst)
	p.dadm = kadm.NewClient(p.dst)
	if p.rprod != nil {
		p.rprod = redial(p.rprod)
	}
	t.Cleanup(func() {
		if p.rprod != nil {
			p.rprod.Close()
		}
		if p.store != nil {
			p.store.Close()
		}
		p.produceCancel()
		p.src.Close()
		p.dst.Close()
	})
	if err := p.openStore(ctx); err != nil {
		t.Fatal(err)
	}
	if mode == pipelines.ModeBatch {
		if err := p.initProducer(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	p.refreshDestLeaders(ctx, writerTopic)
	ls, err := leaders(ctx, p.src, []string{writerTopic})
	if err != nil || len(ls[writerTopic]) != 1 {
		t.Fatalf("source leaders: %v %v", ls, err)
	}
	fx.p, fx.leader = p, ls[writerTopic][0]
	fx.tk = newTask(p, tp(writerTopic, 0), writerTopic)
	fx.tk.setLeader(fx.leader)
	p.mu.Lock()
	p.mu.tasks[fx.tk.tp] = fx.tk // the pipeline saves the positions of its tasks
	p.mu.Unlock()
	if err := fx.tk.start(ctx); err != nil {
		t.Fatal(err)
	}
	return fx
}

// fetch hands the task the next chunk as the fetcher does (claim, fetch,
// hand over) and returns it as the driver takes it (nil: nothing new, or
// the task may not fetch now).
func (fx *writerFixture) fetch(t *testing.T) *chunk {
	t.Helper()
	off, ok, _ := fx.tk.claimFetch(fx.leader, time.Now())
	if !ok {
		return nil
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.LogStartOffset, rp.PartitionMaxBytes = 0, off, -1, fetchPartitionMax
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.Partitions = writerTopic, []kmsg.FetchRequestTopicPartition{rp}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, fetchRequestMax
	req.IsolationLevel, req.SessionEpoch = 1, -1 // READ_COMMITTED, no fetch session
	req.Topics = []kmsg.FetchRequestTopic{rt}
	resp, err := req.RequestWith(context.Background(), fx.p.src.Broker(int(fx.leader)))
	if err != nil {
		fx.tk.fetchDone(nil)
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		fx.tk.fetchDone(nil)
		t.Fatalf("fetch answered %d topics", len(resp.Topics))
	}
	got := resp.Topics[0].Partitions[0]
	fx.tk.fetchDone(&chunk{data: got.RecordBatches, aborted: got.AbortedTransactions,
		hw: got.HighWatermark, logStart: got.LogStartOffset, errCode: got.ErrorCode})
	c, _ := fx.tk.next()
	return c
}

// step does one round of the driver: recover a failed writer, or fetch
// and write one chunk.
func (fx *writerFixture) step(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if fx.tk.w.failed() != nil {
		if !fx.tk.recover(ctx) {
			t.Fatal("recovery stopped")
		}
		return
	}
	if c := fx.fetch(t); c != nil {
		if err := fx.tk.w.write(ctx, c); errors.Is(err, ErrProducerSession) {
			if !fx.tk.recover(ctx) {
				t.Fatal("recovery stopped")
			}
		} else if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// copyTo runs driver rounds until the acknowledged position reaches end.
func (fx *writerFixture) copyTo(t *testing.T, end int64) {
	t.Helper()
	waitFor(t, 60*time.Second, "position reaches the source end", func() bool {
		if fx.pos().Source >= end {
			return true
		}
		fx.step(t)
		return false
	})
}

func (fx *writerFixture) pos() checkpoint.Position {
	fx.tk.mu.Lock()
	defer fx.tk.mu.Unlock()
	return fx.tk.mu.pos
}

func (fx *writerFixture) budgetUsed() int64 {
	fx.p.budget.mu.Lock()
	defer fx.p.budget.mu.Unlock()
	return fx.p.budget.used
}

// saved saves the task's position as the pipeline does and returns what
// the checkpoint store holds for it.
func (fx *writerFixture) saved(t *testing.T) checkpoint.Position {
	t.Helper()
	ctx := context.Background()
	fx.p.save(ctx)
	st, err := fx.p.store.Load(ctx, fx.p.cfg.Name)
	if err != nil || st == nil || st.Partitions[fx.tk.tp] == nil {
		t.Fatalf("load checkpoint: %+v %v", st, err)
	}
	return st.Partitions[fx.tk.tp].Pos
}

// Record batch attribute bits.
const (
	batchTransactional int16 = recordbatch.AttrTransactional
	batchControl       int16 = recordbatch.AttrControl
)

// testBatch encodes a magic-2 record batch at base with kmsg: values
// become records (key "k<i>", one header, timestamps ts, ts+1ms, ...).
func testBatch(base, pid int64, attrs int16, ts time.Time, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte("k" + v),
			Value: []byte(v), Headers: []kmsg.Header{{Key: "h", Value: []byte(v)}}}
		n := len(r.AppendTo(nil)) - 1 // less the one-byte zero length
		r.Length = int32(n)
		recs = r.AppendTo(recs)
	}
	return encodeTestBatch(base, pid, attrs, ts, len(values), recs)
}

// controlBatch is a transaction marker (commit or abort) at offset base.
func controlBatch(base, pid int64, commit bool, ts time.Time) []byte {
	key := []byte{0, 0, 0, 0} // version 0, type 0: abort
	if commit {
		key[3] = 1
	}
	r := kmsg.Record{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	return encodeTestBatch(base, pid, batchTransactional|batchControl, ts, 1, r.AppendTo(nil))
}

func encodeTestBatch(base, pid int64, attrs int16, ts time.Time, n int, recs []byte) []byte {
	ms := ts.UnixMilli()
	rb := kmsg.RecordBatch{FirstOffset: base, PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(n - 1), FirstTimestamp: ms, MaxTimestamp: ms + int64(n-1),
		ProducerID: pid, ProducerEpoch: 0, FirstSequence: 0, NumRecords: int32(n), Records: recs}
	if pid < 0 {
		rb.ProducerEpoch, rb.FirstSequence = -1, -1
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[recordbatch.OffLength:], uint32(len(b)-recordbatch.LengthOverhead))
	recordbatch.UpdateCRC(b)
	return b
}
