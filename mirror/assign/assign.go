package assign

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// ProtocolType is the JoinGroup protocol type of strait's worker groups:
// a group of strait daemons is not a consumer group, and Kafka refuses a
// consumer that tries to join it by mistake (INCONSISTENT_GROUP_PROTOCOL).
const ProtocolType = "strait"

// Protocol is the one JoinGroup protocol name this assignor serves.
const Protocol = "weighted-sticky"

// Slack is the balance this package aims at: every member's weight within
// Slack of perfect where the partitions allow it. The contract promises
// 10%; aiming at half of it leaves room for partitions that do not divide
// evenly without moving more than needed.
const Slack = 0.05

// MaxRate clamps a reported rate (bytes/s), so that the sum of the rates of
// any number of partitions a group can hold fits an int64.
const MaxRate = 1 << 40

// Unmeasured is the Rate of an owned partition the member has no
// measurement for yet (it was assigned a moment ago).
const Unmeasured = -1

// Partition is one source partition of one pipeline: the unit of work.
type Partition struct {
	Pipeline  string
	Topic     string
	Partition int32
}

// Compare orders partitions by pipeline, topic, partition.
func (p Partition) Compare(q Partition) int {
	if c := strings.Compare(p.Pipeline, q.Pipeline); c != 0 {
		return c
	}
	if c := strings.Compare(p.Topic, q.Topic); c != 0 {
		return c
	}
	return cmp.Compare(p.Partition, q.Partition)
}

func (p Partition) String() string {
	return fmt.Sprintf("%s/%s/%d", p.Pipeline, p.Topic, p.Partition)
}

// Owned is a partition a member owns now, with the bytes/s it measured on
// it (Unmeasured when it has no measurement yet).
type Owned struct {
	Partition
	Rate int64
}

// Member is one daemon of the group, as its JoinGroup metadata describes
// it. ID is the key the driver uses for the member (Kafka's member id).
type Member struct {
	ID          string
	Version     string // the daemon's strait version, for logs
	Fingerprint string // pipelines.(*Config).Fingerprint of its configuration
	Owned       []Owned
	// Released lists the partitions the member revoked in the last
	// round, with the rates it measured before it stopped them. They
	// weigh the partitions while they move (an owner's measurement
	// wins); they are not owned.
	Released []Owned
}

// Assignment is what one member receives in SyncGroup.
type Assignment struct {
	// Fingerprint is the leader's configuration fingerprint.
	Fingerprint string
	// Mismatch, when not empty, says why the member gets no work: its
	// configuration differs from the leader's.
	Mismatch string
	// FollowUp says that some partitions wait for their revocation, so
	// another rebalance follows once they are revoked.
	FollowUp bool
	// Assigned is what the member owns from now on (sorted): what it
	// kept, and partitions nobody owned. It starts the new ones.
	Assigned []Partition
	// Revoke is what the member owns but must give up (sorted): stop,
	// drain, checkpoint, then rejoin. It is exactly the owned partitions
	// that are not in Assigned.
	Revoke []Partition
}

// MemberResult is one member's part of a Result.
type MemberResult struct {
	ID string
	// Target is where the balance wants the member once every revocation
	// of this round is done (sorted); Assigned is its part that can start
	// now. Empty for a mismatched member.
	Target []Partition
	// Weight is the sum of the weights of Target.
	Weight int64
	Assignment
}

// Mismatch is a member left out of the assignment.
type Mismatch struct {
	ID     string
	Reason string
}

// Result is a rebalance's outcome.
type Result struct {
	// Members holds every member of the input, sorted by ID.
	Members []MemberResult
	// Mismatched lists the members that get nothing, sorted by ID.
	Mismatched []Mismatch
	// FollowUp: some partition of a Target waits for a revocation.
	FollowUp bool
	// Total is the weight of all partitions; Perfect is the weight each
	// member that holds no partition heavier than Perfect should carry.
	Total   int64
	Perfect float64
	// Moved counts the partitions whose target owner differs from their
	// current one (partitions nobody owned are not counted).
	Moved int
}

// Member returns the result of the member with this ID, or nil.
func (r *Result) Member(id string) *MemberResult {
	i, ok := slices.BinarySearchFunc(r.Members, id, func(m MemberResult, id string) int { return strings.Compare(m.ID, id) })
	if !ok {
		return nil
	}
	return &r.Members[i]
}

// member is the assignor's working state for one eligible member.
type member struct {
	id   int // index into Result.Members
	ix   int // index into state.ms
	load int64
	// parts holds the member's partitions (indexes into the sorted
	// partition list), sorted by weight then index.
	// Invariant: load == the sum of the weights of parts.
	parts []int
	// heavy: the member carries one partition heavier than perfect and
	// nothing else.
	heavy bool
}

// state is one run of Assign.
type state struct {
	parts  []Partition
	weight []int64
	target []int // member (index into ms) per partition; -1 none
	ms     []*member
}

func (s *state) less(a, b int) bool {
	if s.weight[a] != s.weight[b] {
		return s.weight[a] < s.weight[b]
	}
	return a < b
}

func (s *state) cmpIdx(a, b int) int {
	switch {
	case a == b:
		return 0
	case s.less(a, b):
		return -1
	}
	return 1
}

func (s *state) add(m *member, i int) {
	at, _ := slices.BinarySearchFunc(m.parts, i, s.cmpIdx)
	m.parts = slices.Insert(m.parts, at, i)
	m.load += s.weight[i]
	s.target[i] = m.ix
}

func (s *state) remove(m *member, i int) {
	at, ok := slices.BinarySearchFunc(m.parts, i, s.cmpIdx)
	if !ok {
		return // callers only remove what the member holds
	}
	m.parts = slices.Delete(m.parts, at, at+1)
	m.load -= s.weight[i]
	s.target[i] = -1
}

// Assign computes the assignment of partitions to the members whose
// fingerprint equals leader. It is a pure function of its arguments: the
// same input (in any order) gives the same Result. See the package doc for
// the rules and the two-round protocol.
func Assign(leader string, members []Member, partitions []Partition) *Result {
	parts := slices.Clone(partitions)
	slices.SortFunc(parts, Partition.Compare)
	parts = slices.Compact(parts)
	index := make(map[Partition]int, len(parts))
	for i, p := range parts {
		index[p] = i
	}

	ms := slices.Clone(members)
	slices.SortStableFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	res := &Result{Members: make([]MemberResult, len(ms))}

	s := &state{parts: parts, weight: make([]int64, len(parts)), target: make([]int, len(parts))}
	// holder is the member (index into ms) that keeps a partition it
	// owns; -1 nobody. busy marks partitions some member owns, so that
	// nobody else starts them before they are revoked.
	holder := make([]int, len(parts))
	busy := make([]bool, len(parts))
	rate := make([]int64, len(parts))
	eligible := make([]bool, len(ms))
	for i := range parts {
		holder[i], s.target[i], rate[i] = -1, -1, Unmeasured
	}
	for mi, m := range ms {
		res.Members[mi].ID = m.ID
		res.Members[mi].Fingerprint = leader
		switch {
		case mi > 0 && ms[mi-1].ID == m.ID:
			res.Members[mi].Mismatch = "member id used twice"
		case m.Fingerprint != leader:
			res.Members[mi].Mismatch = fmt.Sprintf("configuration fingerprint %s differs from the leader's %s", short(m.Fingerprint), short(leader))
		default:
			eligible[mi] = true
		}
		if !eligible[mi] {
			res.Mismatched = append(res.Mismatched, Mismatch{ID: m.ID, Reason: res.Members[mi].Mismatch})
		}
		for _, o := range m.Owned {
			i, ok := index[o.Partition]
			if !ok {
				continue // removed: revoked below, as everything not kept
			}
			busy[i] = true
			if o.Rate >= 0 && rate[i] == Unmeasured {
				rate[i] = min(o.Rate, MaxRate)
			}
			// Two claims: an eligible member's wins, then the one that
			// measured the partition (it is the one writing), then the
			// lower id (members are visited in id order).
			if !eligible[mi] {
				continue
			}
			if h := holder[i]; h < 0 || (!measured(ms[h], o.Partition) && o.Rate >= 0) {
				holder[i] = mi
			}
		}
	}
	for _, m := range ms {
		for _, o := range m.Released {
			if i, ok := index[o.Partition]; ok && o.Rate >= 0 && rate[i] == Unmeasured {
				rate[i] = min(o.Rate, MaxRate)
			}
		}
	}
	s.weights(rate)
	for _, w := range s.weight {
		res.Total += w
	}

	byIdx := map[int]*member{}
	for mi := range ms {
		if eligible[mi] {
			m := &member{id: mi, ix: len(s.ms)}
			s.ms = append(s.ms, m)
			byIdx[mi] = m
		}
	}
	if len(s.ms) > 0 {
		var pool []int
		for i := range parts {
			if h := holder[i]; h >= 0 {
				s.add(byIdx[h], i)
			} else {
				pool = append(pool, i)
			}
		}
		res.Perfect = s.balance(pool)
	}

	// Per member: the target, what can start now, what must stop first.
	for mi := range ms {
		r := &res.Members[mi]
		if m := byIdx[mi]; m != nil {
			r.Weight = m.load
			// Indexes in order are partitions in order: no string
			// comparisons needed to sort the lists.
			own := slices.Clone(m.parts)
			slices.Sort(own)
			for _, i := range own {
				r.Target = append(r.Target, parts[i])
				if holder[i] == mi || !busy[i] {
					r.Assigned = append(r.Assigned, parts[i])
				} else {
					res.FollowUp = true
				}
				if busy[i] && holder[i] != mi {
					res.Moved++
				}
			}
		}
		for _, o := range ms[mi].Owned {
			if _, ok := slices.BinarySearchFunc(r.Assigned, o.Partition, Partition.Compare); !ok {
				r.Revoke = append(r.Revoke, o.Partition)
			}
		}
		slices.SortFunc(r.Revoke, Partition.Compare)
		r.Revoke = slices.Compact(r.Revoke)
	}
	for mi := range res.Members {
		res.Members[mi].FollowUp = res.FollowUp
	}
	return res
}

func measured(m Member, p Partition) bool {
	for _, o := range m.Owned {
		if o.Partition == p && o.Rate >= 0 {
			return true
		}
	}
	return false
}

// short cuts a fingerprint for messages.
func short(fp string) string {
	if fp == "" {
		return "(none)"
	}
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// weights sets every partition's weight: its measured bytes/s, else its
// topic's average, else the average of every measured partition, else 1;
// and at least 1, so idle partitions spread by count.
func (s *state) weights(rate []int64) {
	var allSum, allN int64
	for _, r := range rate {
		if r >= 0 {
			allSum += r
			allN++
		}
	}
	global := int64(1)
	if allN > 0 {
		global = allSum / allN
	}
	// Partitions are sorted, so a topic of a pipeline is one run.
	for lo := 0; lo < len(s.parts); {
		hi := lo + 1
		for hi < len(s.parts) && s.parts[hi].Pipeline == s.parts[lo].Pipeline && s.parts[hi].Topic == s.parts[lo].Topic {
			hi++
		}
		var sum, n int64
		for i := lo; i < hi; i++ {
			if rate[i] >= 0 {
				sum += rate[i]
				n++
			}
		}
		avg := global
		if n > 0 {
			avg = sum / n
		}
		for i := lo; i < hi; i++ {
			w := rate[i]
			if w < 0 {
				w = avg
			}
			s.weight[i] = max(w, 1)
		}
		lo = hi
	}
}

// balance takes the members holding what they keep and the pool of
// partitions nobody keeps, and moves partitions until every member is
// within Slack of perfect where the weights allow. It returns perfect.
func (s *state) balance(pool []int) float64 {
	var total int64
	for _, w := range s.weight {
		total += w
	}
	// Partitions heavier than an even share cannot be balanced: each one
	// gets a member of its own, and the others share the rest.
	order := make([]int, len(s.weight))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return -s.cmpIdx(a, b) })
	rem, n := total, int64(len(s.ms))
	var heavies []int
	for _, i := range order {
		if n <= 1 || float64(s.weight[i]) <= float64(rem)/float64(n) {
			break
		}
		heavies = append(heavies, i)
		rem -= s.weight[i]
		n--
	}
	perfect := float64(rem) / float64(n)
	lower, upper := perfect*(1-Slack), perfect*(1+Slack)

	inPool := func(i int) { pool = append(pool, i) }
	// A heavy partition stays with its owner, if the owner has no other
	// heavy one; else it goes to the least loaded member without one.
	// Either way that member gives up everything else.
	for _, h := range heavies {
		if t := s.target[h]; t >= 0 && !s.ms[t].heavy {
			s.ms[t].heavy = true
			continue
		}
		if t := s.target[h]; t >= 0 {
			s.remove(s.ms[t], h)
		}
		pool = slices.DeleteFunc(pool, func(i int) bool { return i == h })
		var best *member
		for _, m := range s.ms {
			if !m.heavy && (best == nil || m.load < best.load) {
				best = m
			}
		}
		s.add(best, h)
		best.heavy = true
	}
	var normal []*member
	for _, m := range s.ms {
		if !m.heavy {
			normal = append(normal, m)
			continue
		}
		for _, i := range slices.Clone(m.parts) {
			if float64(s.weight[i]) <= perfect {
				s.remove(m, i)
				inPool(i)
			}
		}
	}

	// The pool, heaviest first, each to the least loaded member.
	slices.SortFunc(pool, func(a, b int) int { return -s.cmpIdx(a, b) })
	h := &loadHeap{ms: slices.Clone(normal)}
	heap.Init(h)
	for _, i := range pool {
		m := h.ms[0]
		s.add(m, i)
		heap.Fix(h, 0)
	}

	// Then, while a member is below lower or above upper, move one
	// partition between it and a member on the other side that can take
	// it. Every move lowers the sum of squared loads, so this ends; and
	// since a move is made only where it narrows a gap, running Assign
	// again on its own result moves nothing (the result is sticky).
	byLoad := slices.Clone(normal)
	for range len(s.weight) + 1 {
		slices.SortFunc(byLoad, func(a, b *member) int {
			if c := cmp.Compare(a.load, b.load); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		if len(byLoad) < 2 {
			break
		}
		lo, hi := byLoad[0], byLoad[len(byLoad)-1]
		moved := false
		if float64(lo.load) < lower {
			for j := len(byLoad) - 1; j > 0 && !moved; j-- {
				d := byLoad[j]
				moved = s.moveOne(d, lo, min(upper-float64(lo.load), float64(d.load)-lower))
			}
		}
		if !moved && float64(hi.load) > upper {
			for j := 0; j < len(byLoad)-1 && !moved; j++ {
				r := byLoad[j]
				moved = s.moveOne(hi, r, min(upper-float64(r.load), float64(hi.load)-lower))
			}
		}
		if !moved && (float64(lo.load) < lower || float64(hi.load) > upper) {
			// No move keeps both sides within Slack: take the one
			// between the extremes that best narrows their deviation.
			moved = s.moveCloser(hi, lo, perfect)
		}
		if !moved {
			break
		}
	}
	return perfect
}

// moveOne moves from d to r the heaviest partition of d that weighs at most
// limit and less than the gap between them, and reports whether there was
// one.
func (s *state) moveOne(d, r *member, limit float64) bool {
	// A move must narrow the gap between d and r: weights are integers.
	limit = min(limit, float64(d.load-r.load-1))
	if limit < 1 {
		return false
	}
	// parts is sorted by weight: the last one at most limit.
	j, _ := slices.BinarySearchFunc(d.parts, int64(limit), func(i int, w int64) int {
		if s.weight[i] <= w {
			return -1
		}
		return 1
	})
	if j == 0 {
		return false
	}
	i := d.parts[j-1]
	s.remove(d, i)
	s.add(r, i)
	return true
}

// moveCloser moves from d to r the partition that leaves the larger of
// their two deviations from perfect smallest, if that is smaller than it
// was; the best weights sit around half the gap between them.
func (s *state) moveCloser(d, r *member, perfect float64) bool {
	gap := d.load - r.load
	if gap < 2 {
		return false
	}
	dev := func(dl, rl int64) float64 {
		return max(abs(float64(dl)-perfect), abs(float64(rl)-perfect))
	}
	best, bestDev := -1, dev(d.load, r.load)
	j, _ := slices.BinarySearchFunc(d.parts, gap/2, func(i int, w int64) int {
		if s.weight[i] <= w {
			return -1
		}
		return 1
	})
	for _, k := range []int{j - 1, j} {
		if k < 0 || k >= len(d.parts) {
			continue
		}
		i := d.parts[k]
		w := s.weight[i]
		if w >= gap {
			continue
		}
		if v := dev(d.load-w, r.load+w); v < bestDev {
			best, bestDev = i, v
		}
	}
	if best < 0 {
		return false
	}
	s.remove(d, best)
	s.add(r, best)
	return true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// loadHeap orders members by load, then by id, for phase 2.
type loadHeap struct{ ms []*member }

func (h *loadHeap) Len() int { return len(h.ms) }
func (h *loadHeap) Less(a, b int) bool {
	if h.ms[a].load != h.ms[b].load {
		return h.ms[a].load < h.ms[b].load
	}
	return h.ms[a].id < h.ms[b].id
}
func (h *loadHeap) Swap(a, b int) { h.ms[a], h.ms[b] = h.ms[b], h.ms[a] }
func (h *loadHeap) Push(x any)    { h.ms = append(h.ms, x.(*member)) }
func (h *loadHeap) Pop() any {
	m := h.ms[len(h.ms)-1]
	h.ms = h.ms[:len(h.ms)-1]
	return m
}
