package assign

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// fleet builds the simulation's input: 100,000 partitions over 50 topics
// of two pipelines, with Zipf-skewed bytes/s (rank k of the shuffled
// partitions carries 1e7/k^0.8), and n daemons that own nothing yet.
func fleet(n int) ([]Member, []Partition, map[Partition]int64) {
	r := rand.New(rand.NewPCG(42, 4242))
	var parts []Partition
	for tp := range 50 {
		parts = append(parts, topic(fmt.Sprintf("pipe-%d", tp%2), fmt.Sprintf("topic-%02d", tp), 2000)...)
	}
	rank := r.Perm(len(parts))
	rates := make(map[Partition]int64, len(parts))
	for i, p := range parts {
		rates[p] = int64(1e7/math.Pow(float64(rank[i]+1), 0.8)) + int64(r.IntN(100))
	}
	members := make([]Member, n)
	for i := range members {
		members[i] = Member{ID: fmt.Sprintf("daemon-%03d", i), Version: "test", Fingerprint: fp}
	}
	return members, parts, rates
}

// checkBalance: every member within 10% of perfect, except members that
// carry one partition heavier than perfect, alone.
func checkBalance(t *testing.T, res *Result) {
	t.Helper()
	worst := 0.0
	for _, m := range res.Members {
		if len(m.Target) == 1 && float64(m.Weight) > res.Perfect {
			continue // a heavy partition on a member of its own
		}
		dev := math.Abs(float64(m.Weight)-res.Perfect) / res.Perfect
		worst = max(worst, dev)
		if dev > 0.10 {
			t.Errorf("%s carries %d, %.1f%% from perfect %.0f", m.ID, m.Weight, 100*dev, res.Perfect)
		}
	}
	t.Logf("worst deviation from perfect: %.2f%%", 100*worst)
}

// TestSimulation100kx100: 100 daemons start together, settle, measure,
// then a 101st joins. The first assignment is balanced by weight; the
// join moves little, in two rounds, and ends balanced.
func TestSimulation100kx100(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 partitions")
	}
	members, parts, rates := fleet(100)
	// Nothing measured yet: every partition weighs 1, spread by count.
	res := Assign(fp, members, parts)
	if res.FollowUp || res.Moved != 0 {
		t.Fatalf("a fresh group waits for revocations")
	}
	checkBalance(t, res)
	// Measured: the next rebalance balances bytes/s, in two rounds.
	cur := next(members, res, rates)
	res = Assign(fp, cur, parts)
	t.Logf("first measured rebalance moves %d partitions (%.1f%%)", res.Moved, 100*float64(res.Moved)/float64(len(parts)))
	cur = next(cur, res, rates)
	res = Assign(fp, cur, parts)
	if res.FollowUp || res.Moved != 0 {
		t.Fatalf("measured: round two still moves %d partitions", res.Moved)
	}
	heavy := 0
	for _, m := range res.Members {
		if len(m.Target) == 1 && float64(m.Weight) > res.Perfect {
			heavy++
		}
	}
	t.Logf("settled: total %d B/s, perfect %.0f, %d members hold one heavy partition each", res.Total, res.Perfect, heavy)
	checkBalance(t, res)

	settled := next(cur, res, rates)
	if again := Assign(fp, settled, parts); again.Moved != 0 || again.FollowUp {
		t.Fatalf("a settled group moves %d partitions", again.Moved)
	}

	joined := append(settled, Member{ID: "daemon-new", Fingerprint: fp})
	res1 := Assign(fp, joined, parts)
	var movedW int64
	for _, m := range res1.Members {
		for _, p := range m.Revoke {
			movedW += rates[p]
		}
	}
	t.Logf("join: %d of %d partitions move (%.2f%%), %.2f%% of the bytes/s; the ideal share of the new daemon is %.2f%%",
		res1.Moved, len(parts), 100*float64(res1.Moved)/float64(len(parts)),
		100*float64(movedW)/float64(res1.Total), 100.0/float64(len(joined)-heavy))
	if frac := float64(res1.Moved) / float64(len(parts)); frac > 0.03 {
		t.Errorf("a join moves %.2f%% of the partitions", 100*frac)
	}
	if !res1.FollowUp || len(res1.Member("daemon-new").Assigned) != 0 {
		t.Errorf("the new daemon must wait for revocations: follow-up %v, assigned %d", res1.FollowUp, len(res1.Member("daemon-new").Assigned))
	}
	res2 := Assign(fp, next(joined, res1, rates), parts)
	if res2.FollowUp || res2.Moved != 0 {
		t.Errorf("round two still moves %d partitions", res2.Moved)
	}
	checkBalance(t, res2)
}

// BenchmarkAssign100kx100 is the leader's work when a 101st daemon joins a
// settled group of 100 holding 100,000 partitions. The target is well
// under a second per rebalance.
func BenchmarkAssign100kx100(b *testing.B) {
	members, parts, rates := fleet(100)
	settled := next(members, Assign(fp, members, parts), rates)
	for range 2 {
		settled = next(settled, Assign(fp, settled, parts), rates)
	}
	joined := append(settled, Member{ID: "daemon-new", Fingerprint: fp})
	b.ReportAllocs()
	for b.Loop() {
		Assign(fp, joined, parts)
	}
}
