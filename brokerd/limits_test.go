package brokerd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// totalAlloc is the process's cumulative heap allocation: it never goes
// down, so a delta bounds what a test's traffic made the broker allocate.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// openConns is the cluster's count of admitted connections.
func openConns(c *Cluster) int {
	c.conns.mu.Lock()
	defer c.conns.mu.Unlock()
	return c.conns.total
}

// alive reports whether an ApiVersions round trip succeeds on a new
// connection from local (nil: any address).
func alive(addr string, local net.Addr) bool {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(encodeRequest(apiVersionsRequestForTest(), 1)); err != nil {
		return false
	}
	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	return err == nil
}

// rawSize sends a frame header announcing size bytes, then body.
func (r *rawConn) rawSize(size uint32, body []byte) {
	r.t.Helper()
	buf := binary.BigEndian.AppendUint32(nil, size)
	if _, err := r.nc.Write(append(buf, body...)); err != nil {
		r.t.Fatal(err)
	}
}

func TestLimitMaxConnections(t *testing.T) {
	c := startCluster(t, Config{Brokers: 2, Limits: Limits{MaxConnections: 3, MaxConnectionsPerIP: -1}})
	var held []*rawConn
	for i := range 3 {
		rc := dialRaw(t, c.Addrs()[i%2])
		rc.roundTrip(apiVersionsRequestForTest())
		held = append(held, rc)
	}
	// The fourth, on either broker, is closed at once.
	over := dialRaw(t, c.Addrs()[1])
	over.nc.Write(encodeRequest(apiVersionsRequestForTest(), 1))
	over.expectClosed()
	held[0].nc.Close()
	waitFor(t, 10*time.Second, "a freed connection slot", func() bool { return alive(c.Addrs()[0], nil) })
}

func TestLimitMaxConnectionsPerIP(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, Limits: Limits{MaxConnectionsPerIP: 2}})
	for range 2 {
		dialRaw(t, c.Addrs()[0]).roundTrip(apiVersionsRequestForTest())
	}
	over := dialRaw(t, c.Addrs()[0])
	over.nc.Write(encodeRequest(apiVersionsRequestForTest(), 1))
	over.expectClosed()
	// Another client address still gets in.
	if !alive(c.Addrs()[0], &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}) {
		t.Fatal("a connection from 127.0.0.2 was refused while 127.0.0.1 is at its limit")
	}
}

func TestLimitIdleTimeout(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, Limits: Limits{IdleTimeout: 300 * time.Millisecond}})
	rc := dialRaw(t, c.Addrs()[0])
	rc.roundTrip(apiVersionsRequestForTest())
	rc.expectClosed()
	waitFor(t, 10*time.Second, "the idle connection to be uncounted", func() bool { return openConns(c) == 0 })
}

// A client that sends its request a byte at a time (slowloris) is closed
// once FrameTimeout passes, though it never goes idle.
func TestLimitFrameTimeout(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, Limits: Limits{FrameTimeout: 300 * time.Millisecond}})
	rc := dialRaw(t, c.Addrs()[0])
	frame := encodeRequest(apiVersionsRequestForTest(), 1)
	go func() {
		for _, b := range frame {
			if _, err := rc.nc.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	rc.expectClosed()
}

func TestLimitFrameSize(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, MaxRequestBytes: 1 << 20, SASLUsers: map[string]string{"u": "p"}})
	// Before authentication: 512 KiB at most; closed on the header alone.
	rc := dialRaw(t, c.Addrs()[0])
	rc.rawSize(512<<10+1, []byte{0, 18})
	rc.expectClosed()
	rc = dialRaw(t, c.Addrs()[0])
	rc.rawSize(512<<10, nil)
	rc.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := rc.br.ReadByte(); !errors.Is(err, timeoutErr(err)) {
		t.Fatalf("a 512 KiB frame header before authentication: %v, want the broker to wait for the body", err)
	}
	// After authentication: MaxRequestBytes.
	cl := newClient(t, c, kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism()))
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc = dialRaw(t, c.Addrs()[0])
	saslPlainV0(t, rc, "u", "p")
	rc.rawSize(1<<20+1, nil)
	rc.expectClosed()
}

// timeoutErr returns err when it is a timeout, so errors.Is(err,
// timeoutErr(err)) holds only for timeouts.
func timeoutErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}

func TestLimitSASLTimeout(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, SASLUsers: map[string]string{"u": "p"}, Limits: Limits{SASLTimeout: 500 * time.Millisecond}})
	// Busy with ApiVersions but never authenticating: still closed.
	rc := dialRaw(t, c.Addrs()[0])
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := rc.nc.Write(encodeRequest(apiVersionsRequestForTest(), 1)); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	rc.expectClosed()
	<-done
	// Authenticated in time: the deadline no longer applies.
	rc = dialRaw(t, c.Addrs()[0])
	saslPlainV0(t, rc, "u", "p")
	time.Sleep(700 * time.Millisecond) // past the SASL deadline, on purpose
	rc.roundTrip(kmsg.NewPtrMetadataRequest())
}

// Case 1 of the hardening report: 60 connections each announce a 100 MiB
// frame and send two bytes. The broker must not reserve the announced
// size; it holds what arrived until FrameTimeout closes them.
func TestLimitAnnouncedFrameNotReserved(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, Limits: Limits{FrameTimeout: 2 * time.Second}})
	before := totalAlloc()
	var conns []*rawConn
	for range 60 {
		rc := dialRaw(t, c.Addrs()[0])
		rc.rawSize(100<<20, []byte{0, 3})
		conns = append(conns, rc)
	}
	for _, rc := range conns {
		rc.expectClosed()
	}
	if d := totalAlloc() - before; d > 64<<20 {
		t.Fatalf("60 frames announcing 100 MiB with 2 bytes each made the process allocate %d MiB", d>>20)
	}
}

// metadataOfEmptyNames is a Metadata v9 request listing n empty names.
func metadataOfEmptyNames(n int) []byte {
	buf := make([]byte, 4, 16+2*n)
	buf = kbin.AppendInt16(buf, int16(kmsg.Metadata))
	buf = kbin.AppendInt16(buf, 9)
	buf = kbin.AppendInt32(buf, 1)
	buf = kbin.AppendNullableString(buf, nil)
	buf = append(buf, 0) // header tags
	buf = kbin.AppendUvarint(buf, uint32(n)+1)
	for range n {
		buf = append(buf, 1, 0) // compact string "", topic tags
	}
	buf = append(buf, 0, 0, 0, 0) // allow auto create, authorized ops x2, tags
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

// Case 3: a 5 MB Metadata request of 2.5 M empty names is refused before
// it is decoded; repeated names are answered once.
func TestLimitMetadataAmplification(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	req := metadataOfEmptyNames(2_500_000)
	before := totalAlloc()
	rc := dialRaw(t, c.Addrs()[0])
	if _, err := rc.nc.Write(req); err != nil {
		t.Fatal(err)
	}
	rc.expectClosed()
	// The frame itself is 5 MB, read into a buffer doubling as it fills.
	if d := totalAlloc() - before; d > 32<<20 {
		t.Fatalf("a 5 MB Metadata request made the process allocate %d MiB", d>>20)
	}

	rc = dialRaw(t, c.Addrs()[0])
	mr := kmsg.NewPtrMetadataRequest()
	mr.Version = 9
	for range 1000 {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("absent")
		mr.Topics = append(mr.Topics, rt)
	}
	resp := rc.roundTrip(mr).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("1000 copies of one unknown name: %d topics in the response, want 1 UNKNOWN_TOPIC_OR_PARTITION", len(resp.Topics))
	}
}

// Before SASL authentication nothing but ApiVersions and SASL is decoded:
// a Metadata request is refused on its header.
func TestLimitPreAuthNotDecoded(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, SASLUsers: map[string]string{"u": "p"}})
	before := totalAlloc()
	rc := dialRaw(t, c.Addrs()[0])
	rc.nc.Write(metadataOfEmptyNames(200_000)) // 400 KB: under the pre-auth limit
	rc.expectClosed()
	if d := totalAlloc() - before; d > 4<<20 {
		t.Fatalf("an unauthenticated Metadata request made the process allocate %d MiB", d>>20)
	}
}

func produceN(t *testing.T, cl *kgo.Client, topic string, n, size int) {
	t.Helper()
	val := make([]byte, size)
	rand.Read(val) // incompressible, whatever the client's codec
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range n {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Value: val}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func fetchOnce(rc *rawConn, topic string, maxBytes int32) *kmsg.FetchResponse {
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 12
	fr.MaxBytes = maxBytes
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = maxBytes
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	return rc.roundTrip(fr).(*kmsg.FetchResponse)
}

func TestLimitFetchMaxBytes(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, AutoCreateTopics: true, Limits: Limits{FetchMaxBytes: 1 << 20}})
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchMaxBytes(64<<10))
	produceN(t, cl, "fmb", 600, 10<<10) // ~6 MB in batches of at most 64 KiB
	rc := dialRaw(t, c.Addrs()[0])
	resp := fetchOnce(rc, "fmb", 1<<31-1)
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n == 0 || n > 1<<20 {
		t.Fatalf("a fetch of MaxBytes 2^31-1 under FetchMaxBytes 1 MiB returned %d record bytes", n)
	}
}

func TestLimitMessageMaxBytes(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, AutoCreateTopics: true, Limits: Limits{MessageMaxBytes: 4 << 10}})
	cl := newClient(t, c, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := context.Background()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mmb", Value: make([]byte, 8<<10)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("an 8 KiB batch under MessageMaxBytes 4 KiB: %v, want MESSAGE_TOO_LARGE", err)
	}
	// A topic's own max.message.bytes overrides the broker's.
	adm := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "mmb-big", 1, 1
	cc := kmsg.NewCreateTopicsRequestTopicConfig()
	cc.Name, cc.Value = "max.message.bytes", kmsg.StringPtr("65536")
	ct.Configs = append(ct.Configs, cc)
	adm.Topics = append(adm.Topics, ct)
	if _, err := adm.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mmb-big", Value: make([]byte, 8<<10)}).FirstErr(); err != nil {
		t.Fatalf("an 8 KiB batch to a topic allowing 64 KiB: %v", err)
	}
}

// Case 4: TLS connections that queue large fetches and never read their
// responses. The copy path streams spans through a pooled chunk, so the
// broker allocates little; IdleTimeout closes the connections once their
// writes stall.
func TestLimitTLSFetchNotMaterialised(t *testing.T) {
	srv, cli := selfSigned(t)
	c := startCluster(t, Config{Brokers: 1, AutoCreateTopics: true, TLS: srv, Limits: Limits{IdleTimeout: 2 * time.Second}})
	cl := newClient(t, c, kgo.DialTLSConfig(cli), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.AllowAutoTopicCreation(), kgo.ProducerBatchMaxBytes(1<<20))
	produceN(t, cl, "tlsbig", 400, 100<<10) // ~40 MB
	cl.Close()
	runtime.GC()
	before := totalAlloc()
	for range 2 {
		nc, err := tls.Dial("tcp", c.Addrs()[0], cli)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		rc := &rawConn{t: t, nc: nc}
		for range 8 {
			fr := kmsg.NewPtrFetchRequest()
			fr.Version = 12
			fr.MaxBytes = 1<<31 - 1
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "tlsbig"
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes = 1<<31 - 1
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
			rc.send(fr)
		}
	}
	waitFor(t, 60*time.Second, "the stalled TLS connections to be closed", func() bool { return openConns(c) == 0 })
	if d := totalAlloc() - before; d > 64<<20 {
		t.Fatalf("16 unread TLS fetches of a 40 MB partition made the process allocate %d MiB", d>>20)
	}
}

// saslPlainV0 logs rc in with SaslHandshake v0 and a raw PLAIN token.
func saslPlainV0(t *testing.T, rc *rawConn, user, pass string) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 0
	hs.Mechanism = "PLAIN"
	if r := rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake v0: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	tok := rawToken(t, rc, []byte("\x00"+user+"\x00"+pass))
	if len(tok) != 0 {
		t.Fatalf("PLAIN over v0: reply %q, want an empty token", tok)
	}
}

// rawToken sends a raw SASL token and reads the raw reply.
func rawToken(t *testing.T, rc *rawConn, tok []byte) []byte {
	t.Helper()
	rc.rawSize(uint32(len(tok)), tok)
	reply, err := rc.readFrame()
	if err != nil {
		t.Fatalf("raw SASL reply: %v", err)
	}
	return reply
}

func TestSASLHandshakeV0(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, SASLUsers: map[string]string{"mirror": "s3cret"}})
	t.Run("PLAIN", func(t *testing.T) {
		rc := dialRaw(t, c.Addrs()[0])
		saslPlainV0(t, rc, "mirror", "s3cret")
		md := rc.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
		if len(md.Brokers) != 1 {
			t.Fatalf("metadata after a v0 login lists %d brokers", len(md.Brokers))
		}
	})
	for name, m := range map[string]sasl.Mechanism{
		"SCRAM-SHA-256": scram.Auth{User: "mirror", Pass: "s3cret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "mirror", Pass: "s3cret"}.AsSha512Mechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, c.Addrs()[0])
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version = 0
			hs.Mechanism = name
			if r := rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
				t.Fatalf("SaslHandshake v0: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			sess, msg, err := m.Authenticate(context.Background(), c.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			for done := false; !done; {
				reply := rawToken(t, rc, msg)
				if done, msg, err = sess.Challenge(reply); err != nil {
					t.Fatal(err)
				}
				if !done && msg == nil {
					t.Fatal("SCRAM client has nothing to send")
				}
			}
			rc.roundTrip(kmsg.NewPtrMetadataRequest())
		})
	}
	t.Run("wrong password closes", func(t *testing.T) {
		rc := dialRaw(t, c.Addrs()[0])
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version = 0
		hs.Mechanism = "PLAIN"
		rc.roundTrip(hs)
		rc.rawSize(uint32(len("\x00mirror\x00nope")), []byte("\x00mirror\x00nope"))
		rc.expectClosed()
	})
}

func TestAcceptBackoff(t *testing.T) {
	var d time.Duration
	var seq []time.Duration
	for range 12 {
		d = acceptBackoff(d)
		seq = append(seq, d)
	}
	if seq[0] != 5*time.Millisecond || seq[1] != 10*time.Millisecond || seq[len(seq)-1] != time.Second {
		t.Fatalf("backoff %v: want 5ms doubling to 1s", seq)
	}
}

// TestLimitMaxTransactionalIDs: with MaxTransactionalIDs 3 the fourth new
// transactional id gets POLICY_VIOLATION while an id already held still
// initializes (its epoch bumps); the default is 100,000.
func TestLimitMaxTransactionalIDs(t *testing.T) {
	if got := (Limits{}).withDefaults(0).MaxTransactionalIDs; got != 100_000 {
		t.Errorf("default MaxTransactionalIDs %d, want 100000", got)
	}
	c := startCluster(t, Config{Brokers: 1, Limits: Limits{MaxTransactionalIDs: 3}})
	cl := newClient(t, c)
	ctx := context.Background()
	initID := func(id string) *kmsg.InitProducerIDResponse {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(id), 10_000
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("InitProducerId %s: %v", id, err)
		}
		return resp
	}
	for _, id := range []string{"a", "b", "c"} {
		if resp := initID(id); resp.ErrorCode != 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId %s: %v, epoch %d", id, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
		}
	}
	if resp := initID("d"); resp.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("InitProducerId for a 4th id: %v, want POLICY_VIOLATION", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := initID("b"); resp.ErrorCode != 0 || resp.ProducerEpoch != 1 {
		t.Fatalf("InitProducerId for a held id at the limit: %v, epoch %d, want epoch 1", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
	}

	// A franz-go transactional producer for a new id fails without
	// retrying: POLICY_VIOLATION is fatal to its producer id.
	tcl := newClient(t, c, kgo.TransactionalID("e"))
	err := tcl.BeginTransaction()
	if err == nil {
		err = tcl.ProduceSync(ctx, &kgo.Record{Topic: "x", Value: []byte("v")}).FirstErr()
	}
	if !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("franz-go transactional producer for a new id at the limit: %v, want POLICY_VIOLATION", err)
	}
}
