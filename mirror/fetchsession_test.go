package mirror

import (
	"errors"
	"math"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/checkpoint"
)

// listed flattens a request's partitions and forgotten partitions.
func listed(req *kmsg.FetchRequest) (parts map[checkpoint.TP]int64, forgotten []checkpoint.TP) {
	parts = map[checkpoint.TP]int64{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts[checkpoint.TP{Topic: t.Topic, Partition: p.Partition}] = p.FetchOffset
		}
	}
	for _, t := range req.ForgottenTopics {
		for _, p := range t.Partitions {
			forgotten = append(forgotten, checkpoint.TP{Topic: t.Topic, Partition: p})
		}
	}
	sort.Slice(forgotten, func(i, j int) bool {
		if forgotten[i].Topic != forgotten[j].Topic {
			return forgotten[i].Topic < forgotten[j].Topic
		}
		return forgotten[i].Partition < forgotten[j].Partition
	})
	return parts, forgotten
}

func respWith(id int32, code int16) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SessionID, r.ErrorCode = id, code
	return r
}

func TestFetchSessionLifecycle(t *testing.T) {
	s := newFetchSession()
	req := kmsg.NewPtrFetchRequest()

	// 1. The first request asks for a session and lists everything.
	want := map[checkpoint.TP]int64{tp("a", 0): 5, tp("a", 1): 7, tp("b", 0): 0}
	s.frame(req, want)
	if req.SessionID != 0 || req.SessionEpoch != 0 {
		t.Fatalf("create: id %d epoch %d, want 0/0", req.SessionID, req.SessionEpoch)
	}
	if parts, forg := listed(req); len(parts) != 3 || len(forg) != 0 {
		t.Fatalf("create lists %v, forgets %v", parts, forg)
	}
	if err := s.answered(respWith(42, 0)); err != nil {
		t.Fatal(err)
	}

	// 2. Nothing changed: an empty incremental request at epoch 1.
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 5, tp("a", 1): 7, tp("b", 0): 0})
	if req.SessionID != 42 || req.SessionEpoch != 1 {
		t.Fatalf("incremental: id %d epoch %d, want 42/1", req.SessionID, req.SessionEpoch)
	}
	if parts, forg := listed(req); len(parts) != 0 || len(forg) != 0 {
		t.Fatalf("idle incremental lists %v, forgets %v", parts, forg)
	}
	if err := s.answered(respWith(42, 0)); err != nil {
		t.Fatal(err)
	}

	// 3. One offset moved, one partition left, one joined.
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 9, tp("b", 0): 0, tp("c", 3): 1})
	if req.SessionEpoch != 2 {
		t.Fatalf("epoch %d, want 2", req.SessionEpoch)
	}
	parts, forg := listed(req)
	if len(parts) != 2 || parts[tp("a", 0)] != 9 || parts[tp("c", 3)] != 1 {
		t.Fatalf("changed partitions %v", parts)
	}
	if len(forg) != 1 || forg[0] != tp("a", 1) {
		t.Fatalf("forgotten %v, want [a/1]", forg)
	}
	if err := s.answered(respWith(42, 0)); err != nil {
		t.Fatal(err)
	}

	// 4. The broker lost the session: the error says so, and the next
	// request opens a new one with every wanted partition.
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 9, tp("b", 0): 0, tp("c", 3): 1})
	err := s.answered(respWith(0, kerr.FetchSessionIDNotFound.Code))
	if !errors.Is(err, errSessionLost) || !errors.Is(err, kerr.FetchSessionIDNotFound) {
		t.Fatalf("lost session: %v", err)
	}
	s.reset()
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 9, tp("b", 0): 0})
	if req.SessionID != 0 || req.SessionEpoch != 0 {
		t.Fatalf("after reset: id %d epoch %d, want a new session", req.SessionID, req.SessionEpoch)
	}
	if parts, _ := listed(req); len(parts) != 2 {
		t.Fatalf("after reset lists %v, want both", parts)
	}
}

func TestFetchSessionStaleEpoch(t *testing.T) {
	s := newFetchSession()
	req := kmsg.NewPtrFetchRequest()
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 0})
	if err := s.answered(respWith(7, 0)); err != nil {
		t.Fatal(err)
	}
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 0})
	if err := s.answered(respWith(7, kerr.InvalidFetchSessionEpoch.Code)); !errors.Is(err, errSessionLost) {
		t.Fatalf("stale epoch: %v", err)
	}
	// A broker that answers another session id is not trusted either.
	s.reset()
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 0})
	_ = s.answered(respWith(8, 0))
	s.frame(req, map[checkpoint.TP]int64{tp("a", 0): 0})
	if err := s.answered(respWith(9, 0)); !errors.Is(err, errSessionLost) {
		t.Fatalf("other session id: %v", err)
	}
}

func TestFetchSessionDeclined(t *testing.T) {
	s := newFetchSession()
	req := kmsg.NewPtrFetchRequest()
	want := map[checkpoint.TP]int64{tp("a", 0): 3, tp("a", 1): 4}
	s.frame(req, want)
	if err := s.answered(respWith(0, 0)); err != nil { // no session offered
		t.Fatal(err)
	}
	for range 3 {
		s.frame(req, want)
		if req.SessionID != 0 || req.SessionEpoch != -1 {
			t.Fatalf("declined: id %d epoch %d, want full fetches (0/-1)", req.SessionID, req.SessionEpoch)
		}
		if parts, forg := listed(req); len(parts) != 2 || len(forg) != 0 {
			t.Fatalf("full fetch lists %v, forgets %v", parts, forg)
		}
		if err := s.answered(respWith(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Other top-level errors come back as themselves.
	s.frame(req, want)
	if err := s.answered(respWith(0, kerr.ClusterAuthorizationFailed.Code)); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("top-level error: %v", err)
	}
}

func TestNextEpochWraps(t *testing.T) {
	for _, c := range []struct{ in, want int32 }{{1, 2}, {math.MaxInt32 - 1, math.MaxInt32}, {math.MaxInt32, 1}} {
		if got := nextEpoch(c.in); got != c.want {
			t.Errorf("nextEpoch(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
