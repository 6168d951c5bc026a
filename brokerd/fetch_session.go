package brokerd

// Fetch sessions (KIP-227): a broker remembers what a consumer fetches, so
// an idle long poll over thousands of partitions costs a few bytes each
// way instead of every partition listed in the request and again in the
// response.
//
// The request's SessionID and SessionEpoch (v7+; older requests are
// sessionless) pick what happens, as in Kafka's FetchManager:
//
//	id 0, epoch -1   sessionless full fetch (what librdkafka/kcat sends):
//	                 every partition listed and answered, session id 0
//	id 0, epoch 0    full fetch that opens a session: answered in full
//	                 with a fresh non-zero session id, or with 0 when the
//	                 cache has no room (the client goes on without one)
//	id X, epoch 0    closes session X, then as above
//	id X, epoch -1   closes session X, then a sessionless full fetch
//	id X, epoch E>0  incremental: E must be the epoch the session expects
//	                 (1 after the full fetch that opened it, then one more
//	                 per incremental request, MaxInt32 wrapping to 1). The
//	                 request lists only partitions added or changed (fetch
//	                 offset, max bytes); ForgottenTopics removes some.
//
// An incremental fetch reads every partition of the session, in the
// session's order, within the request's MaxBytes, and long-polls on all of
// them. Its response lists only the partitions that have records, whose
// high watermark or log start offset differs from what the session last
// sent, that have an error, or that the request itself listed (a changed
// fetch offset is answered, as Kafka does). Partitions that returned
// records move to the end of the session's order, so a response cut short
// by MaxBytes rotates through them. An incremental request that leaves no
// partition in the session closes it and is answered sessionless.
//
// Errors come at the top level, with no partitions and session id 0, and
// do not advance the session: FETCH_SESSION_ID_NOT_FOUND for an id the
// broker does not hold (never made, closed or evicted), after which the
// client opens a new session with epoch 0; INVALID_FETCH_SESSION_EPOCH when
// E is not the expected epoch (the session stays, unchanged, and the same
// request with the right epoch still works), after which franz-go opens a
// new session.
//
// # The cache
//
// Each broker has its own cache (Kafka's rule: a session lives on the
// broker that made it and may be used from any connection to it) of at
// most Config.FetchSessionCacheSlots sessions. When the cache is full, a
// new session takes the place of an old one by Kafka's rule (brokerd has
// no follower fetches, so there are no privileged sessions):
//
//  1. the least recently used session, if it has been idle longer than
//     the eviction age (2 minutes, Kafka's fixed minimum);
//  2. otherwise the session with the fewest partitions (lowest id on a
//     tie) among those created more than the eviction age ago, if the new
//     session has strictly more partitions;
//  3. otherwise no session is made: the full fetch is answered with
//     session id 0.
//
// A linear scan finds the victim; it runs only when a session is made
// while the cache is full.
//
// Memory: a session holds one small entry per partition. A partition that
// exists may always enter a session, so those entries are bounded by the
// topics that exist; at most maxMissingSessionParts entries for partitions
// that did not exist when they entered are kept (a consumer racing the
// creation or deletion of a topic). Past that, a full fetch is answered
// without a session and an incremental one drops the session and answers
// FETCH_SESSION_ID_NOT_FOUND, so the client starts again with a full fetch.
//
// Locking: fetchSessions.mu guards the cache and every session in it. It is
// never held across I/O or a log read; the only locks taken under it are
// the partition logs' own (leaves), by the quiet check of fetch_idle.go
// reading high watermarks.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// finalEpoch closes a session, or asks for none.
	finalEpoch int32 = -1
	// initialEpoch asks for a new session.
	initialEpoch int32 = 0
	// sessionEvictionAge is Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
	sessionEvictionAge = 2 * time.Minute
	// maxMissingSessionParts bounds a session's entries for partitions
	// that did not exist when they entered it.
	maxMissingSessionParts = 64
)

// nextEpoch is the epoch the request after one carrying e must carry.
func nextEpoch(e int32) int32 {
	switch {
	case e < 0:
		return finalEpoch
	case e == math.MaxInt32:
		return 1
	}
	return e + 1
}

type sessKey struct {
	topic     string
	partition int32
}

// sessPart is one partition of a session: what the client asked for, and
// what the session last told it.
type sessPart struct {
	key         sessKey
	fetchOffset int64
	maxBytes    int32
	// hw and logStart are the values last sent. hw is -1 before the first
	// answer and after an error, so the partition is answered again once
	// the error clears.
	hw, logStart int64
	// lso is the last stable offset last sent (read_committed clients
	// must hear when a transaction ends even if no record follows).
	lso int64
	// missing: the partition did not exist when it entered the session.
	missing bool
	// mustSend: the request being served listed the partition, so it is
	// answered even when nothing changed.
	mustSend bool
	// part is the partition as last read, for the quiet check
	// (fetch_idle.go); nil until read without error.
	part       *partition
	prev, next *sessPart // the session's order
}

// fetchSession is one client's fetch state on one broker.
type fetchSession struct {
	id int32
	// epoch is the epoch the next incremental request must carry.
	epoch         int32
	created, used time.Time
	parts         map[sessKey]*sessPart
	head, tail    *sessPart
	// Invariant: missing counts the entries in parts with missing set.
	missing int
}

func (s *fetchSession) pushBack(sp *sessPart) {
	sp.prev, sp.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = sp
	} else {
		s.head = sp
	}
	s.tail = sp
}

func (s *fetchSession) unlink(sp *sessPart) {
	if sp.prev != nil {
		sp.prev.next = sp.next
	} else {
		s.head = sp.next
	}
	if sp.next != nil {
		sp.next.prev = sp.prev
	} else {
		s.tail = sp.prev
	}
	sp.prev, sp.next = nil, nil
}

// add returns the session's entry for k, appending a new one (never sent:
// hw -1) when there is none.
func (s *fetchSession) add(k sessKey, missing bool) *sessPart {
	if sp := s.parts[k]; sp != nil {
		return sp
	}
	sp := &sessPart{key: k, hw: -1, logStart: -1, missing: missing}
	s.parts[k] = sp
	s.pushBack(sp)
	if missing {
		s.missing++
	}
	return sp
}

func (s *fetchSession) remove(k sessKey) {
	sp := s.parts[k]
	if sp == nil {
		return
	}
	s.unlink(sp)
	delete(s.parts, k)
	if sp.missing {
		s.missing--
	}
}

// fetchSessions is one broker's session cache.
type fetchSessions struct {
	slots int // at most this many sessions; 0: no sessions
	mu    struct {
		sync.Mutex
		byID map[int32]*fetchSession
		// minAge is sessionEvictionAge; tests shorten it.
		minAge                        time.Duration
		created, evicted, incremental int64
	}
}

func newFetchSessions(slots int) *fetchSessions {
	s := &fetchSessions{slots: max(slots, 0)}
	s.mu.byID = make(map[int32]*fetchSession)
	s.mu.minAge = sessionEvictionAge
	return s
}

type sessMode uint8

const (
	sessNone        sessMode = iota // sessionless full fetch
	sessCreate                      // full fetch that opens a session
	sessIncremental                 // fetch within a session
)

// fetchCtx carries one Fetch request's session state from begin to finish.
type fetchCtx struct {
	mode sessMode
	// req is what to read: the request itself, or for an incremental
	// fetch every partition of the session, in the session's order.
	req *kmsg.FetchRequest
	// Incremental only: the session, the epoch this request moved it to,
	// and its entries in the order of req's partitions.
	sess  *fetchSession
	epoch int32
	parts []*sessPart
}

// begin decides how req is served and, for an incremental fetch, applies
// it to the session. A non-zero code is the top-level error to answer with.
// exists reports whether a partition exists in the cluster.
func (s *fetchSessions) begin(req *kmsg.FetchRequest, now time.Time, exists func(string, int32) bool) (fetchCtx, int16) {
	if req.Version < 7 {
		return fetchCtx{mode: sessNone, req: req}, 0
	}
	id, epoch := req.SessionID, req.SessionEpoch
	if epoch == finalEpoch || epoch == initialEpoch {
		if id != 0 {
			s.mu.Lock()
			delete(s.mu.byID, id)
			s.mu.Unlock()
		}
		if epoch == finalEpoch || s.slots == 0 {
			return fetchCtx{mode: sessNone, req: req}, 0
		}
		return fetchCtx{mode: sessCreate, req: req}, 0
	}

	// Look the listed partitions up before locking: usually few.
	var missing map[sessKey]bool
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if !exists(rt.Topic, rp.Partition) {
				if missing == nil {
					missing = make(map[sessKey]bool)
				}
				missing[sessKey{rt.Topic, rp.Partition}] = true
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.mu.byID[id]
	if sess == nil {
		return fetchCtx{}, kerr.FetchSessionIDNotFound.Code
	}
	if sess.epoch != epoch {
		return fetchCtx{}, kerr.InvalidFetchSessionEpoch.Code
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := sessKey{rt.Topic, rp.Partition}
			sp := sess.add(k, missing[k])
			sp.fetchOffset, sp.maxBytes, sp.mustSend = rp.FetchOffset, rp.PartitionMaxBytes, true
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			sess.remove(sessKey{ft.Topic, p})
		}
	}
	if sess.missing > maxMissingSessionParts {
		delete(s.mu.byID, id)
		return fetchCtx{}, kerr.FetchSessionIDNotFound.Code
	}
	if len(sess.parts) == 0 {
		delete(s.mu.byID, id)
		return fetchCtx{mode: sessNone, req: req}, 0
	}
	sess.used = now
	sess.epoch = nextEpoch(sess.epoch)
	s.mu.incremental++

	whole := *req
	whole.Topics = nil
	whole.ForgottenTopics = nil
	fc := fetchCtx{mode: sessIncremental, req: &whole, sess: sess, epoch: sess.epoch, parts: make([]*sessPart, 0, len(sess.parts))}
	rps := make([]kmsg.FetchRequestTopicPartition, 0, len(sess.parts))
	for sp := sess.head; sp != nil; sp = sp.next {
		if n := len(whole.Topics); n == 0 || whole.Topics[n-1].Topic != sp.key.topic {
			if n > 0 {
				whole.Topics[n-1].Partitions = rps[:len(rps):len(rps)]
				rps = rps[len(rps):]
			}
			whole.Topics = append(whole.Topics, kmsg.FetchRequestTopic{Topic: sp.key.topic})
		}
		rps = append(rps, kmsg.FetchRequestTopicPartition{Partition: sp.key.partition, FetchOffset: sp.fetchOffset, PartitionMaxBytes: sp.maxBytes})
		fc.parts = append(fc.parts, sp)
	}
	whole.Topics[len(whole.Topics)-1].Partitions = rps
	return fc, 0
}

// finish settles the session once the answer is gathered (topics, read
// from fc.req, in its order) and returns the session id to answer with and
// the partitions to answer. A non-zero code is the top-level error to
// answer with instead; the caller then releases topics.
func (s *fetchSessions) finish(fc *fetchCtx, topics []fetchTopic, now time.Time) (id int32, code int16, out []fetchTopic) {
	switch fc.mode {
	case sessCreate:
		return s.create(fc.req, topics, now), 0, topics
	case sessIncremental:
	default:
		return 0, 0, topics
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another request with the same epoch moved the session on meanwhile.
	if fc.sess.epoch != fc.epoch {
		return 0, kerr.InvalidFetchSessionEpoch.Code, topics
	}
	i := 0
	out = topics[:0]
	for _, t := range topics {
		kept := t.parts[:0]
		for _, p := range t.parts {
			sp := fc.parts[i]
			i++
			if !sp.answer(p) {
				continue
			}
			kept = append(kept, p)
			if p.read != nil {
				fc.sess.unlink(sp)
				fc.sess.pushBack(sp)
			}
		}
		if len(kept) > 0 {
			t.parts = kept
			out = append(out, t)
		}
	}
	return fc.sess.id, 0, out
}

// answer reports whether p goes into an incremental response, and records
// what the client is told.
func (sp *sessPart) answer(p fetchPart) bool {
	send := sp.mustSend || p.read != nil || p.err != 0 || p.hw != sp.hw || p.logStart != sp.logStart || p.lso != sp.lso
	sp.mustSend, sp.part = false, p.part
	if send {
		sp.hw, sp.logStart, sp.lso = p.hw, p.logStart, p.lso
		if p.err != 0 {
			sp.hw = -1
		}
	}
	return send
}

// create opens a session over the partitions of the full fetch req,
// answered with topics, and returns its id, or 0 when none was made.
func (s *fetchSessions) create(req *kmsg.FetchRequest, topics []fetchTopic, now time.Time) int32 {
	sess := &fetchSession{epoch: nextEpoch(initialEpoch), created: now, used: now, parts: make(map[sessKey]*sessPart)}
	for ti, rt := range req.Topics {
		for pi, rp := range rt.Partitions {
			p := topics[ti].parts[pi]
			sp := sess.add(sessKey{rt.Topic, rp.Partition}, p.err == kerr.UnknownTopicOrPartition.Code)
			sp.fetchOffset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
			sp.answer(p)
		}
	}
	if sess.missing > maxMissingSessionParts {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.byID) >= s.slots && !s.evictLocked(len(sess.parts), now) {
		return 0
	}
	for sess.id == 0 || s.mu.byID[sess.id] != nil {
		sess.id = rand.Int32() // non-negative
	}
	s.mu.byID[sess.id] = sess
	s.mu.created++
	return sess.id
}

// evictLocked makes room for a new session of size partitions, by the
// rule in the file header, and reports whether it did.
func (s *fetchSessions) evictLocked(size int, now time.Time) bool {
	var lru, smallest *fetchSession
	for _, x := range s.mu.byID {
		if lru == nil || x.used.Before(lru.used) || x.used.Equal(lru.used) && x.id < lru.id {
			lru = x
		}
		if now.Sub(x.created) > s.mu.minAge &&
			(smallest == nil || len(x.parts) < len(smallest.parts) || len(x.parts) == len(smallest.parts) && x.id < smallest.id) {
			smallest = x
		}
	}
	var victim *fetchSession
	switch {
	case lru != nil && now.Sub(lru.used) > s.mu.minAge:
		victim = lru
	case smallest != nil && size > len(smallest.parts):
		victim = smallest
	default:
		return false
	}
	delete(s.mu.byID, victim.id)
	s.mu.evicted++
	return true
}

// sessionStats are one broker's session counters.
type sessionStats struct {
	live, created, evicted, incremental int64
}

func (s *fetchSessions) stats() sessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sessionStats{int64(len(s.mu.byID)), s.mu.created, s.mu.evicted, s.mu.incremental}
}
