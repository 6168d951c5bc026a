package mirror

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// errSessionLost: the broker no longer knows the fetch session (evicted,
// restarted, or an epoch it did not expect); the next request opens a new
// one. It is not a connection failure.
var errSessionLost = errors.New("mirror: fetch session lost")

// fetchSession is one fetch loop's view of its KIP-227 session with one
// broker. It only frames requests and reads responses; the loop does the
// I/O, so the rules are testable without a broker.
//
// Life of a session: the first request has id 0 and epoch 0 and lists every
// wanted partition (a full fetch that asks the broker for a session). A
// broker that answers with a session id > 0 holds, per partition, the fetch
// offset last sent; each following request carries that id and the next
// epoch, lists only partitions that joined or whose fetch offset changed,
// and names the ones that left as forgotten. A broker that answers with id
// 0 does not do sessions: every later request is a full one (epoch -1).
// Any failure resets to "no session": the next request is full again.
type fetchSession struct {
	id    int32 // 0: no session yet (or none offered)
	epoch int32 // the epoch the next incremental request carries
	// Invariant: held is what the broker believes, valid only when id > 0.
	held    map[checkpoint.TP]int64
	pending map[checkpoint.TP]int64 // the wanted set of the request in flight
	created bool                    // the request in flight asked for a session
	none    bool                    // the broker declined: full fetches only
	// spare is a map neither held nor pending, handed out by wantMap
	// for the next request, so a steady session allocates no map.
	spare map[checkpoint.TP]int64
}

// wantMap returns an empty map for the next request's wanted set.
func (s *fetchSession) wantMap(size int) map[checkpoint.TP]int64 {
	if m := s.spare; m != nil {
		s.spare = nil
		clear(m)
		return m
	}
	return make(map[checkpoint.TP]int64, size)
}

// recycle keeps m for wantMap unless the session still refers to it.
func (s *fetchSession) recycle(m map[checkpoint.TP]int64) {
	if m == nil || s.held != nil && sameMap(m, s.held) || s.pending != nil && sameMap(m, s.pending) {
		return
	}
	s.spare = m
}

func newFetchSession() *fetchSession { return &fetchSession{} }

// reset forgets the session: the next request is a full one.
func (s *fetchSession) reset() {
	s.id, s.epoch, s.held, s.pending, s.created = 0, 0, nil, nil, false
}

// frame fills req's session fields, topics and forgotten topics so that the
// broker fetches exactly want (partition → fetch offset).
func (s *fetchSession) frame(req *kmsg.FetchRequest, want map[checkpoint.TP]int64) {
	old := s.pending
	s.pending, s.created = want, false
	s.recycle(old)
	req.Topics, req.ForgottenTopics = req.Topics[:0], req.ForgottenTopics[:0]
	switch {
	case s.none:
		req.SessionID, req.SessionEpoch = 0, -1
		addFetchParts(req, want, nil)
	case s.id == 0:
		req.SessionID, req.SessionEpoch = 0, 0
		s.created = true
		addFetchParts(req, want, nil)
	default:
		req.SessionID, req.SessionEpoch = s.id, s.epoch
		addFetchParts(req, want, s.held)
		forgotten := map[string][]int32{}
		for tp := range s.held {
			if _, ok := want[tp]; !ok {
				forgotten[tp.Topic] = append(forgotten[tp.Topic], tp.Partition)
			}
		}
		for topic, parts := range forgotten {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.Partitions = topic, parts
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
	}
}

// addFetchParts lists the partitions of want whose offset differs from held
// (all of them when held is nil).
func addFetchParts(req *kmsg.FetchRequest, want, held map[checkpoint.TP]int64) {
	idx := map[string]int{}
	for tp, off := range want {
		if held != nil {
			if h, ok := held[tp]; ok && h == off {
				continue
			}
		}
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(req.Topics)
			idx[tp.Topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = tp.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.FetchOffset = off
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = fetchPartitionMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
}

// answered moves the session on after a response to the request framed
// last. errSessionLost means the session must be opened again; another
// error is the response's top-level error.
func (s *fetchSession) answered(resp *kmsg.FetchResponse) error {
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.FetchSessionIDNotFound), errors.Is(err, kerr.InvalidFetchSessionEpoch):
		return fmt.Errorf("%w: %w", errSessionLost, err)
	default:
		return err
	}
	switch {
	case s.none:
	case s.created:
		if resp.SessionID <= 0 {
			s.none = true // the broker serves full fetches only
			return nil
		}
		old := s.held
		s.id, s.epoch, s.held = resp.SessionID, 1, s.pending
		s.recycle(old)
	case s.id > 0:
		if resp.SessionID != s.id {
			return fmt.Errorf("%w: broker answered session %d for %d", errSessionLost, resp.SessionID, s.id)
		}
		old := s.held
		s.held = s.pending
		s.epoch = nextEpoch(s.epoch)
		s.recycle(old)
	}
	s.pending, s.created = nil, false
	return nil
}

// sameMap reports whether a and b are the same map (not equal contents).
func sameMap(a, b map[checkpoint.TP]int64) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// nextEpoch is the epoch after e; it wraps to 1, as 0 opens a session.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}
