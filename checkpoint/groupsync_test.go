package checkpoint

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncLoop runs SyncGroups every interval, the way the mirror does, and
// keeps each round's report.
type syncLoop struct {
	mu      sync.Mutex
	reports []SyncReport
	errs    []error
}

func (l *syncLoop) rounds() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reports)
}

// firstCommit is the index of the first round at or after from that
// committed group's partition at the given destination offset, or -1.
func (l *syncLoop) firstCommit(from int, group string, at int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.reports); i++ {
		for _, g := range l.reports[i].Groups {
			for _, c := range g.Committed {
				if g.Group == group && c.DestAt == at {
					return i
				}
			}
		}
	}
	return -1
}

func (l *syncLoop) report(i int) SyncReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reports[i]
}

// syncPair is a source and a destination cluster with topic orders[0]
// already copied by a copier, so that translation differs from identity.
type syncPair struct {
	srcSeeds, dstSeeds []string
	src, dst           *kgo.Client
	cp                 *copier
	pos                Position
}

// syncPairs are the clusters TestSyncGroups runs on: kfake, whose
// transactions leave control records and aborted data in the source, and
// brokerd on both sides (the clusters strait ships), whose source has lost
// its first records to retention before the mirror started, so every
// destination offset sits below its source offset.
var syncPairs = map[string]func(t *testing.T) syncPair{
	"kfake": func(t *testing.T) syncPair {
		srcC, src := newKfake(t)
		dstC, dst := newKfake(t)
		createTopic(t, src, "orders", 1, nil)
		createTopic(t, dst, "orders", 1, nil)
		fillSource(t, srcC.ListenAddrs(), "orders", 60, nil)
		cp := &copier{t: t, srcSeeds: srcC.ListenAddrs(), dst: dst, topic: "orders", destTopic: "orders", m: &OffsetMap{}}
		cp.m.Begin(Position{})
		pos := cp.run()
		return syncPair{srcC.ListenAddrs(), dstC.ListenAddrs(), src, dst, cp, pos}
	},
	"brokerd": func(t *testing.T) syncPair {
		srcC, src := newBrokerd(t)
		dstC, dst := newBrokerd(t)
		createTopic(t, src, "orders", 1, nil)
		createTopic(t, dst, "orders", 1, nil)
		for i := 0; i < 68; i++ {
			produce(t, src, rec("orders", 0, i))
		}
		const logStart = 8
		del := kadm.Offsets{}
		del.Add(kadm.Offset{Topic: "orders", Partition: 0, At: logStart})
		dr, err := kadm.NewClient(src).DeleteRecords(context.Background(), del)
		if err == nil {
			err = dr.Error()
		}
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		start := Position{Source: logStart}
		cp := &copier{t: t, srcSeeds: srcC.Addrs(), dst: dst, topic: "orders", destTopic: "orders", m: &OffsetMap{}, pos: start}
		cp.m.Begin(start)
		pos := cp.run()
		return syncPair{srcC.Addrs(), dstC.Addrs(), src, dst, cp, pos}
	},
}

// TestSyncGroups: a group committed on the source shows up on the
// destination with translated offsets within two sync rounds, never moves
// backwards (neither below an older translation nor below what a consumer
// that already failed over committed on the destination), and is left
// alone while a member of it, a real group consumer, is active on the
// destination.
func TestSyncGroups(t *testing.T) {
	for name, setup := range syncPairs {
		t.Run(name, func(t *testing.T) { testSyncGroups(t, setup(t)) })
	}
}

func testSyncGroups(t *testing.T, p syncPair) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, dst, cp, pos := p.src, p.dst, p.cp, p.pos
	translate := func(tp TP, off int64) (string, int64, bool) {
		if tp != (TP{"orders", 0}) {
			return "", 0, false
		}
		d, ok := cp.m.Translate(off, pos)
		return "orders", d, ok
	}
	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(dst)

	const interval = 100 * time.Millisecond
	loop := &syncLoop{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		groups := []*regexp.Regexp{regexp.MustCompile(`^(?:billing-.*)$`)}
		for {
			rep, err := SyncGroups(ctx, srcAdm, dstAdm, groups, translate)
			loop.mu.Lock()
			loop.reports = append(loop.reports, rep)
			loop.errs = append(loop.errs, err)
			loop.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { cancel(); <-done }()

	commitSource := func(group string, at int64) int {
		t.Helper()
		r0 := loop.rounds()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "orders", Partition: 0, At: at, LeaderEpoch: -1})
		if err := srcAdm.CommitAllOffsets(ctx, group, os); err != nil {
			t.Fatalf("commit %s on source: %v", group, err)
		}
		return r0
	}
	destCommit := func(group string) int64 {
		t.Helper()
		os, err := dstAdm.FetchOffsets(ctx, group)
		if err != nil {
			return -2
		}
		o, ok := os.Lookup("orders", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	waitRounds := func(n int) {
		t.Helper()
		r := loop.rounds()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d sync rounds", n), func() error {
			if loop.rounds() < r+n {
				return fmt.Errorf("%d rounds", loop.rounds()-r)
			}
			return nil
		})
	}

	// A committed source group shows up translated within two rounds.
	srcRecs := consumeAll(t, p.srcSeeds, "orders", 0, 0)
	c1 := srcRecs[40].Offset
	want1, _ := cp.m.Translate(c1, pos)
	if want1 == c1 {
		t.Fatalf("test needs a commit whose translation differs (gaps before %d)", c1)
	}
	r0 := commitSource("billing-a", c1)
	commitSource("other", c1)
	waitFor(t, 30*time.Second, "billing-a on the destination", func() error {
		if got := destCommit("billing-a"); got != want1 {
			return fmt.Errorf("destination commit %d, want %d", got, want1)
		}
		return nil
	})
	if i := loop.firstCommit(r0, "billing-a", want1); i < 0 || i > r0+1 {
		// Round r0 may have been under way during the commit; r0+1 started
		// after it.
		t.Fatalf("committed in round %d, commit made before round %d", i, r0)
	}
	// The destination consumer resumes with exactly the records after c1.
	if got := consumeAll(t, p.dstSeeds, "orders", 0, want1); !sameRecord(got[0], srcRecs[40]) || len(got) != len(srcRecs)-40 {
		t.Fatalf("fail-over reads %d records from %s", len(got), got[0].Value)
	}

	// A live group on the source (a real consumer that stays a member
	// there) commits as it reads; its commit is synced like any other.
	live := newClient(t, p.srcSeeds,
		kgo.ConsumerGroup("billing-live"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit())
	var liveRead []*kgo.Record
	waitFor(t, 30*time.Second, "the source consumer to read 45 records", func() error {
		pctx, c := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := live.PollRecords(pctx, 45-len(liveRead))
		c()
		liveRead = append(liveRead, fs.Records()...)
		if len(liveRead) < 45 {
			return fmt.Errorf("read %d", len(liveRead))
		}
		return nil
	})
	for i, r := range liveRead {
		if !sameRecord(r, srcRecs[i]) {
			t.Fatalf("source consumer's record %d is %s, want %s", i, r.Value, srcRecs[i].Value)
		}
	}
	if err := live.CommitRecords(ctx, liveRead[44]); err != nil {
		t.Fatalf("commit on the source: %v", err)
	}
	wantLive, _ := cp.m.Translate(srcRecs[45].Offset, pos)
	waitFor(t, 30*time.Second, "billing-live on the destination", func() error {
		if got := destCommit("billing-live"); got != wantLive {
			return fmt.Errorf("destination commit %d, want %d", got, wantLive)
		}
		return nil
	})
	if d, err := srcAdm.DescribeGroups(ctx, "billing-live"); err != nil || len(d["billing-live"].Members) != 1 {
		t.Fatalf("the source consumer left its group before the sync (%v)", err)
	}
	live.Close()

	// Never backwards: a lower source commit leaves the destination alone.
	commitSource("billing-a", srcRecs[10].Offset)
	waitRounds(3)
	if got := destCommit("billing-a"); got != want1 {
		t.Fatalf("destination moved to %d after a lower source commit, want %d", got, want1)
	}

	// Untouched while a member is active on the destination.
	member := newClient(t, p.dstSeeds,
		kgo.ConsumerGroup("billing-a"), kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit())
	waitFor(t, 30*time.Second, "member joined on the destination", func() error {
		pctx, c := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(pctx)
		c()
		d, err := dstAdm.DescribeGroups(ctx, "billing-a")
		if err != nil || len(d["billing-a"].Members) == 0 {
			return fmt.Errorf("not joined: %v %v", err, d["billing-a"].State)
		}
		return nil
	})
	c2 := srcRecs[50].Offset
	want2, _ := cp.m.Translate(c2, pos)
	commitSource("billing-a", c2)
	waitRounds(3)
	if got := destCommit("billing-a"); got != want1 {
		t.Fatalf("destination moved to %d while a member was active, want %d", got, want1)
	}
	last := loop.report(loop.rounds() - 1)
	skipped := false
	for _, g := range last.Groups {
		if g.Group == "billing-a" && g.Skipped != "" {
			skipped = true
		}
	}
	if !skipped {
		t.Fatalf("report does not say billing-a was skipped: %v", last)
	}
	member.Close() // leaves the group
	waitFor(t, 30*time.Second, "billing-a synced after the member left", func() error {
		if got := destCommit("billing-a"); got != want2 {
			return fmt.Errorf("destination commit %d, want %d", got, want2)
		}
		return nil
	})

	// A real group consumer fails over: it resumes on the destination at
	// the synced commit with exactly the copy of the first source record
	// the group had not read, reads on and commits there. A later source
	// commit below its progress must not pull it back.
	failover := newClient(t, p.dstSeeds,
		kgo.ConsumerGroup("billing-a"), kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit())
	var read []*kgo.Record
	waitFor(t, 30*time.Second, "the failed-over consumer to read the rest", func() error {
		pctx, c := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := failover.PollFetches(pctx)
		c()
		fs.EachRecord(func(r *kgo.Record) { read = append(read, r) })
		if len(read) < len(srcRecs)-50 {
			return fmt.Errorf("read %d of %d", len(read), len(srcRecs)-50)
		}
		return nil
	})
	if len(read) != len(srcRecs)-50 {
		t.Fatalf("failed-over consumer read %d records, want %d", len(read), len(srcRecs)-50)
	}
	for i, r := range read {
		if !sameRecord(r, srcRecs[50+i]) {
			t.Fatalf("failed-over record %d is %s, want %s", i, r.Value, srcRecs[50+i].Value)
		}
	}
	if err := failover.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit on the destination: %v", err)
	}
	progress := read[len(read)-1].Offset + 1
	if got := destCommit("billing-a"); got != progress {
		t.Fatalf("destination commit %d after the consumer committed %d", got, progress)
	}
	commitSource("billing-a", srcRecs[52].Offset)
	failover.Close()
	waitFor(t, 30*time.Second, "billing-a empty on the destination", func() error {
		d, err := dstAdm.DescribeGroups(ctx, "billing-a")
		if err != nil || len(d["billing-a"].Members) != 0 {
			return fmt.Errorf("members: %v %v", err, d["billing-a"].Members)
		}
		return nil
	})
	waitRounds(3)
	if got := destCommit("billing-a"); got != progress {
		t.Fatalf("destination moved from the consumer's %d to %d", progress, got)
	}
	last = loop.report(loop.rounds() - 1)
	unchanged := false
	for _, g := range last.Groups {
		if g.Group == "billing-a" && g.Skipped == "" && g.Err == nil && g.Unchanged == 1 && len(g.Committed) == 0 {
			unchanged = true
		}
	}
	if !unchanged {
		t.Fatalf("report does not say billing-a was left unchanged: %v", last)
	}

	// A static member (group.instance.id) that stops without leaving, as
	// after a crash, still counts as active until its session expires:
	// the group is not touched before, and is synced after. Whether a sync
	// round fits inside the session depends on the machine's speed, so
	// the test counts rounds rather than trusting a time: it needs one
	// whole round after the commit with the member still there, and
	// starts over with a fresh group and a member of twice the session
	// when the session ran out first.
	grp := "billing-b"
	for session := 6 * time.Second; ; session *= 2 {
		if session > 5*time.Minute {
			t.Fatalf("no sync round completed within a %v session", session/2)
		}
		static := newClient(t, p.dstSeeds,
			kgo.ConsumerGroup(grp), kgo.ConsumeTopics("orders"), kgo.InstanceID("static-1"),
			kgo.DisableAutoCommit(), kgo.SessionTimeout(session))
		waitFor(t, 30*time.Second, "static member joined on the destination", func() error {
			pctx, c := context.WithTimeout(ctx, 100*time.Millisecond)
			static.PollFetches(pctx)
			c()
			d, err := dstAdm.DescribeGroups(ctx, grp)
			if err != nil || len(d[grp].Members) == 0 {
				return fmt.Errorf("not joined: %v %v", err, d[grp].State)
			}
			return nil
		})
		static.Close() // a static member does not send LeaveGroup
		commitSource(grp, c1)
		waitRounds(1) // may have been under way during the commit
		sawAlive := false
		for {
			waitRounds(1) // started after the commit
			// Commit first, members second: a member still there
			// afterwards was there all along (it cannot come back), so
			// a commit seen before is one made while its session was
			// alive.
			got := destCommit(grp)
			d, err := dstAdm.DescribeGroups(ctx, grp)
			if err != nil {
				t.Fatal(err)
			}
			if len(d[grp].Members) == 0 {
				break
			}
			if got >= 0 {
				t.Fatalf("%s synced to %d while its static member's session was alive", grp, got)
			}
			sawAlive = true
		}
		waitFor(t, 30*time.Second, grp+" synced after the session expired", func() error {
			if got := destCommit(grp); got != want1 {
				return fmt.Errorf("destination commit %d, want %d", got, want1)
			}
			return nil
		})
		if sawAlive {
			break
		}
		grp = fmt.Sprintf("billing-b-%v", session*2) // a fresh group
	}

	// Groups not named by the pipeline never reach the destination.
	if got := destCommit("other"); got >= 0 {
		t.Fatalf("group other was synced to %d", got)
	}
	loop.mu.Lock()
	for i, err := range loop.errs {
		if err != nil {
			t.Errorf("round %d: %v", i, err)
		}
	}
	loop.mu.Unlock()
}
