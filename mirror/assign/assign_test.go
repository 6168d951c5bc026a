package assign

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const fp = "fp-leader"

// topic lists n partitions of one topic.
func topic(pipeline, name string, n int) []Partition {
	out := make([]Partition, n)
	for i := range out {
		out[i] = Partition{pipeline, name, int32(i)}
	}
	return out
}

// owns builds Owned entries at one rate.
func owns(rate int64, ps ...Partition) []Owned {
	out := make([]Owned, len(ps))
	for i, p := range ps {
		out[i] = Owned{p, rate}
	}
	return out
}

// weightsOf is the weight rule of the package doc, written again
// independently: measured rate (an owner's, else a releaser's), else the
// topic's average, else the global average, else 1; at least 1.
func weightsOf(members []Member, parts []Partition) map[Partition]int64 {
	in := map[Partition]bool{}
	for _, p := range parts {
		in[p] = true
	}
	rate := map[Partition]int64{}
	for _, m := range members {
		for _, o := range m.Owned {
			if _, seen := rate[o.Partition]; !seen && o.Rate >= 0 && in[o.Partition] {
				rate[o.Partition] = min(o.Rate, MaxRate)
			}
		}
	}
	for _, m := range members {
		for _, o := range m.Released {
			if _, seen := rate[o.Partition]; !seen && o.Rate >= 0 && in[o.Partition] {
				rate[o.Partition] = min(o.Rate, MaxRate)
			}
		}
	}
	type tk struct{ p, t string }
	sum, n := map[tk]int64{}, map[tk]int64{}
	var all, alln int64
	for p, r := range rate {
		sum[tk{p.Pipeline, p.Topic}] += r
		n[tk{p.Pipeline, p.Topic}]++
		all += r
		alln++
	}
	w := map[Partition]int64{}
	for _, p := range parts {
		r, ok := rate[p]
		switch k := (tk{p.Pipeline, p.Topic}); {
		case ok:
		case n[k] > 0:
			r = sum[k] / n[k]
		case alln > 0:
			r = all / alln
		default:
			r = 1
		}
		w[p] = max(r, 1)
	}
	return w
}

// checkProperties checks what every Result must satisfy.
func checkProperties(t *testing.T, leader string, members []Member, parts []Partition, res *Result) {
	t.Helper()
	weights := weightsOf(members, parts)
	owners := map[Partition][]string{}
	matching := 0
	for _, m := range members {
		for _, o := range m.Owned {
			if !slices.Contains(owners[o.Partition], m.ID) {
				owners[o.Partition] = append(owners[o.Partition], m.ID)
			}
		}
		if m.Fingerprint == leader {
			matching++
		}
	}
	targetOf := map[Partition]string{}
	for _, r := range res.Members {
		in := func(p Partition, ps []Partition) bool {
			_, ok := slices.BinarySearchFunc(ps, p, Partition.Compare)
			return ok
		}
		if !slices.IsSortedFunc(r.Target, Partition.Compare) || !slices.IsSortedFunc(r.Assigned, Partition.Compare) || !slices.IsSortedFunc(r.Revoke, Partition.Compare) {
			t.Errorf("%s: lists not sorted", r.ID)
		}
		if r.Mismatch != "" && (len(r.Target) > 0 || len(r.Assigned) > 0) {
			t.Errorf("mismatched member %s got work", r.ID)
		}
		var w int64
		for _, p := range r.Target {
			if prev, dup := targetOf[p]; dup {
				t.Errorf("%v in the targets of %s and %s", p, prev, r.ID)
			}
			targetOf[p] = r.ID
			w += weights[p]
		}
		if w != r.Weight {
			t.Errorf("%s: weight %d, the targets weigh %d", r.ID, r.Weight, w)
		}
		for _, p := range r.Assigned {
			if !in(p, r.Target) {
				t.Errorf("%s: assigned %v outside its target", r.ID, p)
			}
			// Nobody else owns it, or this member keeps it (a
			// partition claimed twice stays with one claimant).
			if os := owners[p]; len(os) > 0 && !slices.Contains(os, r.ID) {
				t.Errorf("%s: assigned %v that %v still own", r.ID, p, os)
			}
		}
		for _, p := range r.Target {
			if !in(p, r.Assigned) && len(owners[p]) == 0 {
				t.Errorf("%s: %v is free but waits", r.ID, p)
			}
		}
		var m Member
		for _, x := range members {
			if x.ID == r.ID {
				m = x
			}
		}
		var want []Partition
		for _, o := range m.Owned {
			if !in(o.Partition, r.Assigned) {
				want = append(want, o.Partition)
			}
		}
		slices.SortFunc(want, Partition.Compare)
		want = slices.Compact(want)
		if !slices.Equal(want, r.Revoke) {
			t.Errorf("%s: revokes %v, want owned minus assigned %v", r.ID, r.Revoke, want)
		}
		// Revocations only of partitions that move: away from this
		// member, out of the input, or shared with another claimant.
		for _, p := range r.Revoke {
			if in(p, r.Target) && len(owners[p]) < 2 {
				t.Errorf("%s: revokes %v although it stays its own", r.ID, p)
			}
		}
	}
	for _, p := range parts {
		if _, ok := targetOf[p]; !ok && matching > 0 {
			t.Errorf("%v has no target", p)
		}
	}
	if len(targetOf) > len(weights) {
		t.Errorf("targets hold partitions outside the input")
	}
	// The same input in another order gives the same result.
	r := rand.New(rand.NewPCG(1, 2))
	ms := slices.Clone(members)
	r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	for i := range ms {
		ms[i].Owned = slices.Clone(ms[i].Owned)
		r.Shuffle(len(ms[i].Owned), func(a, b int) { ms[i].Owned[a], ms[i].Owned[b] = ms[i].Owned[b], ms[i].Owned[a] })
	}
	ps := slices.Clone(parts)
	r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	if again := Assign(leader, ms, ps); !reflect.DeepEqual(again, res) {
		t.Errorf("another input order gives another result")
	}
}

// next is the group after every member applied its assignment: it owns
// Assigned (with the rates of rates), and rejoined.
func next(members []Member, res *Result, rates map[Partition]int64) []Member {
	out := make([]Member, len(members))
	for i, m := range members {
		out[i] = Member{ID: m.ID, Version: m.Version, Fingerprint: m.Fingerprint}
		rate := map[Partition]int64{}
		for _, o := range m.Owned {
			rate[o.Partition] = o.Rate
		}
		for _, p := range res.Member(m.ID).Revoke {
			if r, ok := rates[p]; ok {
				rate[p] = r
			}
			out[i].Released = append(out[i].Released, Owned{p, rate[p]})
		}
		for _, p := range res.Member(m.ID).Assigned {
			r, ok := rates[p]
			if !ok {
				r = Unmeasured
			}
			out[i].Owned = append(out[i].Owned, Owned{p, r})
		}
	}
	return out
}

func targets(res *Result) map[string]int {
	out := map[string]int{}
	for _, r := range res.Members {
		out[r.ID] = len(r.Target)
	}
	return out
}

func TestAssignTable(t *testing.T) {
	ten := topic("p", "t", 10)
	type tc struct {
		name     string
		members  []Member
		parts    []Partition
		counts   map[string]int // len(Target) per member
		revokes  map[string]int // len(Revoke) per member
		followUp bool
		mismatch []string
	}
	cases := []tc{
		{
			name:    "one member takes everything",
			members: []Member{{ID: "a", Fingerprint: fp}},
			parts:   ten,
			counts:  map[string]int{"a": 10},
		},
		{
			name: "join: a third member gets its share through revocations",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(5, ten[:5]...)},
				{ID: "b", Fingerprint: fp, Owned: owns(5, ten[5:]...)},
				{ID: "c", Fingerprint: fp},
			},
			parts:    ten,
			counts:   map[string]int{"a": 4, "b": 3, "c": 3},
			revokes:  map[string]int{"a": 1, "b": 2},
			followUp: true,
		},
		{
			name: "leave or death: the survivors take the partitions at once",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(5, ten[:3]...)},
				{ID: "b", Fingerprint: fp, Owned: owns(5, ten[3:6]...)},
			},
			parts:  ten,
			counts: map[string]int{"a": 5, "b": 5},
		},
		{
			name: "new partitions go to the least loaded, nothing revoked",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(5, ten[:4]...)},
				{ID: "b", Fingerprint: fp, Owned: owns(5, ten[4:6]...)},
			},
			parts:  append(slices.Clone(ten[:6]), topic("p", "u", 2)...),
			counts: map[string]int{"a": 4, "b": 4},
		},
		{
			name: "removed partitions are revoked, the rest stays",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(5, ten[:5]...)},
				{ID: "b", Fingerprint: fp, Owned: owns(5, ten[5:]...)},
			},
			parts:   append(slices.Clone(ten[1:5]), ten[6:]...),
			counts:  map[string]int{"a": 4, "b": 4},
			revokes: map[string]int{"a": 1, "b": 1},
		},
		{
			name: "a mismatched fingerprint gets nothing and revokes all",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(5, ten[:5]...)},
				{ID: "b", Fingerprint: "fp-other", Owned: owns(5, ten[5:]...)},
			},
			parts:    ten,
			counts:   map[string]int{"a": 10, "b": 0},
			revokes:  map[string]int{"b": 5},
			followUp: true,
			mismatch: []string{"b"},
		},
		{
			name:     "no member matches: nobody works",
			members:  []Member{{ID: "a", Fingerprint: "x", Owned: owns(1, ten[0])}, {ID: "b", Fingerprint: "y"}},
			parts:    ten,
			counts:   map[string]int{"a": 0, "b": 0},
			revokes:  map[string]int{"a": 1},
			mismatch: []string{"a", "b"},
		},
		{
			name: "all weights zero: balanced by count",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: owns(0, ten[:8]...)},
				{ID: "b", Fingerprint: fp, Owned: owns(0, ten[8:]...)},
			},
			parts:    ten,
			counts:   map[string]int{"a": 5, "b": 5},
			revokes:  map[string]int{"a": 3},
			followUp: true,
		},
		{
			name:    "more members than partitions",
			members: []Member{{ID: "a", Fingerprint: fp}, {ID: "b", Fingerprint: fp}, {ID: "c", Fingerprint: fp}, {ID: "d", Fingerprint: fp}, {ID: "e", Fingerprint: fp}},
			parts:   ten[:3],
			counts:  map[string]int{"a": 1, "b": 1, "c": 1, "d": 0, "e": 0},
		},
		{
			name: "a partition claimed twice stays with the one that measured it",
			members: []Member{
				{ID: "a", Fingerprint: fp, Owned: append(owns(Unmeasured, ten[0]), owns(5, ten[1])...)},
				{ID: "b", Fingerprint: fp, Owned: owns(5, ten[0])},
			},
			parts:   ten[:2],
			counts:  map[string]int{"a": 1, "b": 1},
			revokes: map[string]int{"a": 1},
		},
		{
			name:     "a member id given twice",
			members:  []Member{{ID: "a", Fingerprint: fp}, {ID: "a", Fingerprint: fp}},
			parts:    ten[:2],
			mismatch: []string{"a"},
		},
		{
			name:    "no partitions",
			members: []Member{{ID: "a", Fingerprint: fp}},
			counts:  map[string]int{"a": 0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leader := fp
			res := Assign(leader, c.members, c.parts)
			checkProperties(t, leader, c.members, c.parts, res)
			for id, n := range c.counts {
				if got := len(res.Member(id).Target); got != n {
					t.Errorf("%s: %d partitions, want %d (all: %v)", id, got, n, targets(res))
				}
			}
			for _, r := range res.Members {
				if got := len(r.Revoke); got != c.revokes[r.ID] && !(strings.Contains(c.name, "twice") && r.Mismatch != "") {
					t.Errorf("%s: revokes %v, want %d", r.ID, r.Revoke, c.revokes[r.ID])
				}
			}
			if res.FollowUp != c.followUp {
				t.Errorf("FollowUp %v, want %v", res.FollowUp, c.followUp)
			}
			var mis []string
			for _, m := range res.Mismatched {
				mis = append(mis, m.ID)
				if m.Reason == "" {
					t.Errorf("%s: mismatched without a reason", m.ID)
				}
			}
			if !slices.Equal(mis, c.mismatch) {
				t.Errorf("mismatched %v, want %v", mis, c.mismatch)
			}
			// Round two: once revocations are done nothing more moves.
			if res.FollowUp {
				rates := map[Partition]int64{}
				for _, p := range c.parts {
					rates[p] = 5
				}
				ms := next(c.members, res, rates)
				res2 := Assign(leader, ms, c.parts)
				checkProperties(t, leader, ms, c.parts, res2)
				if res2.FollowUp || res2.Moved != 0 {
					t.Errorf("round two still moves %d partitions", res2.Moved)
				}
				for _, r := range res2.Members {
					if len(r.Revoke) > 0 {
						t.Errorf("round two: %s revokes %v", r.ID, r.Revoke)
					}
					if want := res.Member(r.ID).Target; !slices.Equal(r.Assigned, want) && r.Mismatch == "" {
						t.Errorf("round two: %s gets %v, round one targeted %v", r.ID, r.Assigned, want)
					}
				}
			}
		})
	}
}

// TestWeights: weights follow the doc's rule and drive the balance.
func TestWeights(t *testing.T) {
	hot, cold := topic("p", "hot", 4), topic("p", "cold", 4)
	parts := append(slices.Clone(hot), cold...)
	members := []Member{
		// a measured two hot partitions (100) and one cold (1); the
		// rest is unmeasured: hot ones weigh the hot average.
		{ID: "a", Fingerprint: fp, Owned: []Owned{{hot[0], 100}, {hot[1], 100}, {cold[0], 1}, {cold[1], Unmeasured}}},
		{ID: "b", Fingerprint: fp},
	}
	res := Assign(fp, members, parts)
	checkProperties(t, fp, members, parts, res)
	if res.Total != 4*100+4*1 {
		t.Errorf("total %d, want 404", res.Total)
	}
	for _, r := range res.Members {
		hots := 0
		for _, p := range r.Target {
			if p.Topic == "hot" {
				hots++
			}
		}
		if hots != 2 {
			t.Errorf("%s holds %d hot partitions, want 2: %v", r.ID, hots, r.Target)
		}
	}
	// Nothing measured: every partition weighs 1. A measured topic lends
	// its average to nothing else: other topics take the global one.
	if res := Assign(fp, []Member{{ID: "a", Fingerprint: fp}}, parts); res.Total != 8 {
		t.Errorf("unmeasured total %d, want 8", res.Total)
	}
	res = Assign(fp, []Member{{ID: "a", Fingerprint: fp, Owned: []Owned{{hot[0], 10}, {hot[1], 30}}}}, parts)
	if res.Total != 8*20 {
		t.Errorf("global average total %d, want 160", res.Total)
	}
}

// TestHeavyPartition: a partition heavier than an even share gets a member
// to itself, and stays where it is.
func TestHeavyPartition(t *testing.T) {
	parts := topic("p", "t", 7)
	members := []Member{
		{ID: "a", Fingerprint: fp, Owned: append(owns(1000, parts[0]), owns(10, parts[1:4]...)...)},
		{ID: "b", Fingerprint: fp, Owned: owns(10, parts[4:]...)},
		{ID: "c", Fingerprint: fp},
	}
	res := Assign(fp, members, parts)
	checkProperties(t, fp, members, parts, res)
	if a := res.Member("a"); len(a.Target) != 1 || a.Target[0] != parts[0] {
		t.Errorf("a: %v, want the heavy partition alone", a.Target)
	}
	if b, c := res.Member("b").Weight, res.Member("c").Weight; b != 30 || c != 30 {
		t.Errorf("b %d c %d, want 30 each", b, c)
	}
}

// TestRandomProperties: random groups (owners, claims twice, mismatches,
// removed and new partitions, random rates) keep every property, and
// converge in two rounds.
func TestRandomProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	moved1, moved2 := 0, 0
	for n := range 300 {
		var parts []Partition
		for tp := range 1 + r.IntN(4) {
			parts = append(parts, topic(fmt.Sprintf("p%d", r.IntN(2)), fmt.Sprintf("t%d", tp), 1+r.IntN(20))...)
		}
		universe := append(slices.Clone(parts), topic("gone", "x", 3)...)
		// One rate per topic, so that a partition weighs the same
		// whether measured or not, and the rounds see the same weights.
		topicRate := map[string]int64{}
		for _, p := range universe {
			if _, ok := topicRate[p.Pipeline+"/"+p.Topic]; !ok {
				topicRate[p.Pipeline+"/"+p.Topic] = []int64{0, 1, 7, 100, 5000, 1 << 62}[r.IntN(6)]
			}
		}
		var members []Member
		for i := range 1 + r.IntN(8) {
			m := Member{ID: fmt.Sprintf("m%02d", i), Fingerprint: fp}
			if r.IntN(10) == 0 {
				m.Fingerprint = "other"
			}
			for _, p := range universe {
				if r.IntN(4) == 0 {
					rate := topicRate[p.Pipeline+"/"+p.Topic]
					if r.IntN(10) == 0 {
						rate = Unmeasured
					}
					m.Owned = append(m.Owned, Owned{p, rate})
				}
			}
			members = append(members, m)
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			res := Assign(fp, members, parts)
			checkProperties(t, fp, members, parts, res)
			// Round two, every partition measured at the weight it had:
			// the revoked partitions reach their targets.
			ms := next(members, res, weightsOf(members, parts))
			res2 := Assign(fp, ms, parts)
			checkProperties(t, fp, ms, parts, res2)
			moved1 += res.Moved
			moved2 += res2.Moved
			// Settled (nothing waits for a revocation, every partition
			// measured): running Assign again moves nothing.
			rates := weightsOf(members, parts)
			cur, last := ms, res2
			for round := 0; round == 0 || last.FollowUp && round < 5; round++ {
				cur = next(cur, last, rates)
				last = Assign(fp, cur, parts)
			}
			if last.FollowUp {
				t.Fatalf("still waiting for revocations after five rounds")
			}
			cur = next(cur, last, rates)
			if again := Assign(fp, cur, parts); again.Moved != 0 || again.FollowUp {
				t.Errorf("a settled group still moves %d partitions", again.Moved)
				for i, m := range again.Members {
					t.Logf("%s w=%d->%d n=%d revoke=%v target=%v", m.ID, last.Members[i].Weight, m.Weight, len(m.Target), m.Revoke, m.Target)
				}
				t.Logf("perfect %v total %d", again.Perfect, again.Total)
			}
		})
	}
	t.Logf("partitions moved in round one: %d, in round two: %d", moved1, moved2)
	if moved2 > moved1/10 {
		t.Errorf("round two moved %d partitions after round one moved %d; the rounds do not agree", moved2, moved1)
	}
}
