package brokerd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchAt is one partition of a Fetch request and where to read it.
type fetchAt struct {
	topic     string
	partition int32
	offset    int64
}

// sessionFetch is a v12 Fetch with the given session id and epoch, listing
// at (consecutive partitions of one topic share a topic entry).
func sessionFetch(id, epoch, maxWaitMillis int32, at ...fetchAt) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.SessionID, req.SessionEpoch = id, epoch
	req.MaxWaitMillis = maxWaitMillis
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	for _, a := range at {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != a.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = a.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = a.partition
		rp.FetchOffset = a.offset
		rp.PartitionMaxBytes = 1 << 20
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

func forget(req *kmsg.FetchRequest, topic string, partitions ...int32) *kmsg.FetchRequest {
	req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: topic, Partitions: partitions})
	return req
}

// answered maps "topic/partition" of every partition in resp to whether it
// carries records, failing on a partition error.
func answered(t *testing.T, resp *kmsg.FetchResponse) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("%s/%d: error %d", rt.Topic, p.Partition, p.ErrorCode)
			}
			got[fmt.Sprintf("%s/%d", rt.Topic, p.Partition)] = len(p.RecordBatches) > 0
		}
	}
	return got
}

func sameAnswer(got, want map[string]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// fetchSized sends req and returns its response and the bytes each way.
func fetchSized(rc *rawConn, req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, reqBytes, respBytes int) {
	rc.t.Helper()
	reqBytes = len(encodeRequest(req, 0))
	rc.send(req)
	frame, err := rc.readFrame()
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(frame[4+1:]); err != nil { // correlation id, header tags
		rc.t.Fatalf("decode: %v", err)
	}
	return resp, reqBytes, 4 + len(frame)
}

func sessionOf(t *testing.T, c *Cluster, broker int, id int32) *fetchSession {
	t.Helper()
	s := c.brokers[broker].sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.byID[id]
}

// A raw session over eight partitions: incremental fetches answer only the
// partitions that changed, long-poll on all of them, forget partitions,
// and refuse stale epochs and unknown ids; through sendfile and the copy
// path.
func TestFetchSessionIncremental(t *testing.T) {
	for _, copyPath := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy=%v", copyPath), func(t *testing.T) { testFetchSessionIncremental(t, copyPath) })
	}
}

func testFetchSessionIncremental(t *testing.T, copyPath bool) {
	c := startCluster(t, Config{Brokers: 1, CopyFetch: copyPath})
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "sess", 8, nil)
	produceTo := func(p int32) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "sess", Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, c.Addrs()[0])
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		t.Helper()
		return rc.roundTrip(req).(*kmsg.FetchResponse)
	}
	expect := func(step string, r *kmsg.FetchResponse, id int32, want map[string]bool) {
		t.Helper()
		if r.ErrorCode != 0 || r.SessionID != id {
			t.Fatalf("%s: error %d session %d, want 0 and %d", step, r.ErrorCode, r.SessionID, id)
		}
		if got := answered(t, r); !sameAnswer(got, want) {
			t.Fatalf("%s: answered %v, want %v", step, got, want)
		}
	}
	var all []fetchAt
	wantAll := map[string]bool{}
	for p := int32(0); p < 8; p++ {
		all = append(all, fetchAt{"sess", p, 0})
		wantAll[fmt.Sprintf("sess/%d", p)] = false
	}

	full := fetch(sessionFetch(0, 0, 0, all...))
	id := full.SessionID
	if id <= 0 {
		t.Fatalf("epoch 0 got session id %d, want a new one", id)
	}
	expect("open", full, id, wantAll)
	expect("nothing new", fetch(sessionFetch(id, 1, 0)), id, map[string]bool{})

	produceTo(5)
	expect("append to 5", fetch(sessionFetch(id, 2, 0)), id, map[string]bool{"sess/5": true})

	// A long poll listing only partition 5 (at its new offset) wakes on an
	// append to partition 2; partition 5 is answered because the request
	// changed its offset.
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- fetch(sessionFetch(id, 3, 30_000, fetchAt{"sess", 5, 1})) }()
	p2 := c.topicPartitions("sess")[2]
	waitFor(t, 10*time.Second, "the poll to watch partition 2", func() bool {
		p2.wmu.Lock()
		defer p2.wmu.Unlock()
		return len(p2.waiters) > 0
	})
	produceTo(2)
	expect("wake on 2", <-done, id, map[string]bool{"sess/2": true, "sess/5": false})

	// Forgetting partition 2 (whose record the client has not moved past)
	// stops it being read; partition 3 still is.
	expect("forget 2", fetch(forget(sessionFetch(id, 4, 0), "sess", 2)), id, map[string]bool{})
	if s := sessionOf(t, c, 0, id); s == nil || len(s.parts) != 7 {
		t.Fatalf("session after forgetting one of 8: %+v", s)
	}
	produceTo(2)
	produceTo(3)
	expect("append to 2 and 3", fetch(sessionFetch(id, 5, 0)), id, map[string]bool{"sess/3": true})

	// A stale epoch is refused and leaves the session as it was; the next
	// request with the right epoch, from another connection, is served.
	stale := fetch(sessionFetch(id, 5, 0))
	if stale.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || stale.SessionID != 0 || len(stale.Topics) != 0 {
		t.Fatalf("stale epoch: error %d session %d topics %d", stale.ErrorCode, stale.SessionID, len(stale.Topics))
	}
	rc2 := dialRaw(t, c.Addrs()[0])
	r := rc2.roundTrip(sessionFetch(id, 6, 0, fetchAt{"sess", 3, 1})).(*kmsg.FetchResponse)
	expect("other connection", r, id, map[string]bool{"sess/3": false})

	unknown := fetch(sessionFetch(id^1, 1, 0))
	if unknown.ErrorCode != kerr.FetchSessionIDNotFound.Code || unknown.SessionID != 0 {
		t.Fatalf("unknown id: error %d session %d", unknown.ErrorCode, unknown.SessionID)
	}

	// Epoch -1 closes the session and is answered in full, sessionless.
	expect("close", fetch(sessionFetch(id, -1, 0, all[:1]...)), 0, map[string]bool{"sess/0": false})
	if r := fetch(sessionFetch(id, 7, 0)); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session: error %d", r.ErrorCode)
	}
	st := c.Stats()
	if st.FetchSessions != 0 || st.FetchSessionsCreated != 1 || st.IncrementalFetches != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// A full cache refuses a new session while the old ones are young, then
// evicts by Kafka's rule; epoch 0 on a live id replaces that session;
// negative slots turn sessions off.
func TestFetchSessionCacheFull(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, FetchSessionCacheSlots: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "evict", 4, nil)
	rc := dialRaw(t, c.Addrs()[0])
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		t.Helper()
		return rc.roundTrip(req).(*kmsg.FetchResponse)
	}
	parts := []fetchAt{{"evict", 0, 0}, {"evict", 1, 0}, {"evict", 2, 0}, {"evict", 3, 0}}

	a := fetch(sessionFetch(0, 0, 0, parts[:2]...)).SessionID
	if a <= 0 {
		t.Fatalf("first session id %d", a)
	}
	// The cache is full and its one session is younger than the eviction
	// age: the fetch is answered in full, without a session.
	if r := fetch(sessionFetch(0, 0, 0, parts[:3]...)); r.SessionID != 0 || len(answered(t, r)) != 3 {
		t.Fatalf("full cache: session %d, %d partitions", r.SessionID, len(answered(t, r)))
	}
	if r := fetch(sessionFetch(a, 1, 0)); r.ErrorCode != 0 || r.SessionID != a {
		t.Fatalf("kept session: error %d session %d", r.ErrorCode, r.SessionID)
	}

	s := c.brokers[0].sessions
	s.mu.Lock()
	s.mu.minAge = 0 // every session is now old and idle enough to go
	s.mu.Unlock()
	b := fetch(sessionFetch(0, 0, 0, parts[:3]...)).SessionID
	if b <= 0 || b == a {
		t.Fatalf("session after eviction: %d (evicted %d)", b, a)
	}
	if r := fetch(sessionFetch(a, 2, 0)); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: error %d", r.ErrorCode)
	}
	if r := fetch(sessionFetch(b, 1, 0)); r.ErrorCode != 0 || r.SessionID != b {
		t.Fatalf("new session: error %d session %d", r.ErrorCode, r.SessionID)
	}

	// Epoch 0 with a live id closes it and opens another, here without
	// evicting anything since the closed one made room.
	nb := fetch(sessionFetch(b, 0, 0, parts[3:]...)).SessionID
	if nb <= 0 {
		t.Fatalf("reopened session id %d", nb)
	}
	if nb != b {
		if r := fetch(sessionFetch(b, 2, 0)); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("replaced session: error %d", r.ErrorCode)
		}
	}
	if st := c.Stats(); st.FetchSessions != 1 || st.FetchSessionsCreated != 3 || st.FetchSessionsEvicted != 1 {
		t.Fatalf("stats %+v", st)
	}

	off := startCluster(t, Config{Brokers: 1, FetchSessionCacheSlots: -1})
	createTopic(t, newClient(t, off), "evict", 1, nil)
	r := dialRaw(t, off.Addrs()[0]).roundTrip(sessionFetch(0, 0, 0, parts[:1]...)).(*kmsg.FetchResponse)
	if r.ErrorCode != 0 || r.SessionID != 0 || len(answered(t, r)) != 1 {
		t.Fatalf("sessions off: error %d session %d", r.ErrorCode, r.SessionID)
	}
}

// Kafka's eviction rule, with the clock as a value.
func TestFetchSessionEvictionRule(t *testing.T) {
	fullFetch := func(n int) (*kmsg.FetchRequest, []fetchTopic) {
		var at []fetchAt
		ft := fetchTopic{name: "t"}
		for p := int32(0); p < int32(n); p++ {
			at = append(at, fetchAt{"t", p, 0})
			ft.parts = append(ft.parts, fetchPart{index: p})
		}
		return sessionFetch(0, 0, 0, at...), []fetchTopic{ft}
	}
	s := newFetchSessions(2)
	open := func(n int, now time.Time) int32 {
		req, topics := fullFetch(n)
		return s.create(req, topics, now)
	}
	touch := func(id int32, now time.Time) {
		s.mu.Lock()
		s.mu.byID[id].used = now
		s.mu.Unlock()
	}
	held := func(id int32) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.byID[id] != nil
	}

	t0 := time.Unix(1_000_000, 0)
	a, b := open(2, t0), open(5, t0)
	if a == 0 || b == 0 {
		t.Fatal("sessions not made with room in the cache")
	}
	if id := open(10, t0.Add(time.Minute)); id != 0 {
		t.Fatal("evicted a session younger than the eviction age")
	}
	// Both old enough and both in use: the smallest goes, for a larger one.
	now := t0.Add(3 * time.Minute)
	touch(a, now)
	touch(b, now)
	if id := open(2, now); id != 0 {
		t.Fatal("evicted a session for one no larger")
	}
	cc := open(3, now)
	if cc == 0 || held(a) || !held(b) {
		t.Fatalf("3 partitions over a 2-partition old session: new %d, a held %v, b held %v", cc, held(a), held(b))
	}
	// b (5) is the only old session and is larger; cc is young.
	if id := open(4, now); id != 0 {
		t.Fatal("evicted a larger or a young session")
	}
	// Idle beyond the eviction age: the least recently used goes, whatever
	// its size.
	later := now.Add(sessionEvictionAge + time.Second)
	touch(cc, later)
	if id := open(1, later); id == 0 || held(b) || !held(cc) {
		t.Fatalf("idle session not evicted: b held %v, cc held %v", held(b), held(cc))
	}
	if st := s.stats(); st.evicted != 2 || st.live != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// franz-go opens a session against brokerd and keeps fetching within it.
func TestFetchSessionFranzConsumer(t *testing.T) {
	c := startCluster(t, Config{Brokers: 3})
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "franz-sess", 6, nil)
	ctx := context.Background()
	produce := func(from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			rs = append(rs, &kgo.Record{Topic: "franz-sess", Partition: int32(i % 6), Value: []byte(fmt.Sprintf("v%03d", i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer := newClient(t, c, kgo.ConsumeTopics("franz-sess"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	seen := map[string]int{}
	next := map[int32]int64{}
	consume := func(total int) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for len(seen) < total {
			fs := consumer.PollFetches(pctx)
			if pctx.Err() != nil {
				t.Fatalf("consumed %d of %d records", len(seen), total)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				seen[string(r.Value)]++
			})
		}
	}
	produce(0, 60)
	consume(60)
	waitFor(t, 10*time.Second, "incremental fetches", func() bool {
		st := c.Stats()
		return st.FetchSessions > 0 && st.IncrementalFetches > 0
	})
	produce(60, 66)
	consume(66)
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s consumed %d times", v, n)
		}
	}
	t.Logf("stats %+v", c.Stats())
}

// An idle long poll over 3,000 partitions: the full fetch lists and
// answers every partition, the incremental one neither.
func TestFetchSessionIdlePollBytes(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	var all []fetchAt
	for i := 0; i < 3; i++ {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = fmt.Sprintf("idle-poll-%d", i)
		rt.NumPartitions = 1000
		rt.ReplicationFactor = 1
		ct.Topics = append(ct.Topics, rt)
		for p := int32(0); p < 1000; p++ {
			all = append(all, fetchAt{rt.Topic, p, 0})
		}
	}
	for _, st := range rc.roundTrip(ct).(*kmsg.CreateTopicsResponse).Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("%s: %d", st.Topic, st.ErrorCode)
		}
	}

	full, fullReq, fullResp := fetchSized(rc, sessionFetch(0, -1, 100, all...))
	if n := len(answered(t, full)); n != 3000 || full.SessionID != 0 {
		t.Fatalf("full fetch answered %d partitions, session %d", n, full.SessionID)
	}
	open, _, _ := fetchSized(rc, sessionFetch(0, 0, 0, all...))
	if open.SessionID <= 0 {
		t.Fatalf("no session: %d", open.SessionID)
	}
	inc, incReq, incResp := fetchSized(rc, sessionFetch(open.SessionID, 1, 100))
	if inc.ErrorCode != 0 || len(inc.Topics) != 0 {
		t.Fatalf("idle incremental fetch: error %d, %d topics", inc.ErrorCode, len(inc.Topics))
	}
	t.Logf("idle long poll over 3000 partitions: full fetch %d request + %d response bytes; incremental %d + %d",
		fullReq, fullResp, incReq, incResp)
	if incReq*100 > fullReq || incResp*100 > fullResp {
		t.Fatalf("incremental poll not 100x smaller: %d+%d vs %d+%d", incReq, incResp, fullReq, fullResp)
	}
}
