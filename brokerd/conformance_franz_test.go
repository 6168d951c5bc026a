package brokerd_test

// Conformance with franz-go: group consumers resuming after their last
// commit, committed offsets surviving kill -9 of the broker binary, and
// idempotent producers whose retried produce requests leave no duplicate.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// produceN writes n records "k<i%keys>"/"<i>" synchronously in rounds, so
// each round is at least one produce request.
func produceN(t testing.TB, cl *kgo.Client, topic string, from, n, keys int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const round = 100
	for start := from; start < from+n; start += round {
		var recs []*kgo.Record
		for i := start; i < min(start+round, from+n); i++ {
			recs = append(recs, &kgo.Record{
				Topic:   topic,
				Key:     []byte(fmt.Sprintf("k%d", i%keys)),
				Value:   []byte(strconv.Itoa(i)),
				Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
			})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func endOffsets(t testing.TB, addrs []string, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(confClient(t, addrs))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

func TestConformanceIdempotentRetryLeavesNoDuplicate(t *testing.T) {
	c := confStart(t, t.TempDir(), 3)
	addrs := c.Addrs()
	const topic, n, cutsWanted = "idempotent-retry", 3000, 6
	confCreateTopic(t, addrs, topic, 3)

	dial, cuts := cuttingDialer(cutsWanted)
	prod := confClient(t, addrs, dial,
		kgo.MaxProduceRequestsInflightPerBroker(1), // see cutConn
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		// A failed produce waits for a metadata refresh; keep that short.
		kgo.MetadataMinAge(50*time.Millisecond),
	)
	produceN(t, prod, topic, 0, n, 17)
	if got := cuts.cutCount(); got != cutsWanted {
		t.Fatalf("cut %d produce responses, want %d", got, cutsWanted)
	}

	var total int64
	for _, end := range endOffsets(t, addrs, topic) {
		total += end
	}
	if total != n {
		t.Fatalf("log holds %d records after %d acknowledged writes and %d retried requests, want %d", total, n, cutsWanted, n)
	}

	cons := confClient(t, addrs, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := make(map[int]bool, n)
	lastPerKey := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			i, _ := strconv.Atoi(string(r.Value))
			if seen[i] {
				t.Fatalf("record %d read twice (offset %d of partition %d)", i, r.Offset, r.Partition)
			}
			seen[i] = true
			if last, ok := lastPerKey[string(r.Key)]; ok && i <= last {
				t.Fatalf("key %s: record %d after %d, order lost", r.Key, i, last)
			}
			lastPerKey[string(r.Key)] = i
		})
	}
}

// TestConformanceChildConsumer is the group member that
// TestConformanceGroupConsumerResumesAfterKill runs as a child process and
// kills with SIGKILL. Each poll it commits only the first half of what it
// read, so at any moment it holds records it consumed but never committed.
func TestConformanceChildConsumer(t *testing.T) {
	if os.Getenv("STRAIT_CONFORMANCE_CHILD") != "consume" {
		t.Skip("child process of TestConformanceGroupConsumerResumesAfterKill")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(os.Getenv("STRAIT_CONFORMANCE_ADDRS"), ",")...),
		kgo.ConsumerGroup(os.Getenv("STRAIT_CONFORMANCE_GROUP")),
		kgo.ConsumeTopics(os.Getenv("STRAIT_CONFORMANCE_TOPIC")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(2*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	committed := 0
	for {
		recs := cl.PollRecords(ctx, 40).Records()
		half := recs[:len(recs)/2]
		if len(half) == 0 {
			continue
		}
		if err := cl.CommitRecords(ctx, half...); err != nil {
			fmt.Printf("commit error %v\n", err)
			continue
		}
		committed += len(half)
		fmt.Printf("committed %d\n", committed)
	}
}

func TestConformanceGroupConsumerResumesAfterKill(t *testing.T) {
	// The child asks for a 2 s session so the killed member expires
	// quickly: below Kafka's 6 s minimum, so this cluster allows it.
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 3, Partitions: 3,
		GroupMinSessionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addrs := c.Addrs()
	const topic, group, n = "resume-after-kill", "resume-group", 3000
	confCreateTopic(t, addrs, topic, 3)
	produceN(t, confClient(t, addrs), topic, 0, n, 29)

	child := exec.Command(os.Args[0], "-test.run=^TestConformanceChildConsumer$", "-test.v")
	child.Env = append(os.Environ(),
		"STRAIT_CONFORMANCE_CHILD=consume",
		"STRAIT_CONFORMANCE_ADDRS="+strings.Join(addrs, ","),
		"STRAIT_CONFORMANCE_GROUP="+group,
		"STRAIT_CONFORMANCE_TOPIC="+topic,
	)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var committed atomic.Int64
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				k, _ := strconv.Atoi(v)
				committed.Store(int64(k))
			}
		}
		child.Wait()
		close(exited)
	}()
	t.Cleanup(func() { child.Process.Kill(); <-exited })
	confWait(t, time.Minute, "the child consumer to commit 500 records", func() error {
		if k := committed.Load(); k < 500 {
			return fmt.Errorf("committed %d", k)
		}
		return nil
	})
	child.Process.Kill()
	<-exited

	adm := kadm.NewClient(confClient(t, addrs))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	ends := endOffsets(t, addrs, topic)
	start := map[int32]int64{}
	want := 0
	for p, end := range ends {
		start[p] = 0
		if o, ok := offs.Lookup(topic, p); ok && o.At >= 0 {
			start[p] = o.At
		}
		want += int(end - start[p])
	}
	if want == 0 || want == n {
		t.Fatalf("commits cover %d of %d records; the kill should land mid-stream", n-want, n)
	}

	// The restarted member joins while the dead one still holds its
	// session; the coordinator must expire it and hand over everything.
	cons := confClient(t, addrs,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	next := map[int32]int64{}
	for p, s := range start {
		next[p] = s
	}
	got := 0
	for got < want {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("resumed consumer read %d of %d: %v", got, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: got offset %d, want %d (committed %d)", r.Partition, r.Offset, next[r.Partition], start[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}
	for p, end := range ends {
		if next[p] != end {
			t.Errorf("partition %d: resumed up to %d, end %d", p, next[p], end)
		}
	}
}

func TestConformanceOffsetsSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	b := startBinary(t, dir, 3)
	const topic = "durable-offsets"
	confCreateTopic(t, b.addrs, topic, 3)
	produceN(t, confClient(t, b.addrs), topic, 0, 600, 7)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A group member commits what it read...
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumerGroup("member-group"),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for read < 250 {
		fs := cons.PollRecords(ctx, 50)
		if ctx.Err() != nil {
			t.Fatalf("read %d records: %v", read, ctx.Err())
		}
		recs := fs.Records()
		if err := cons.CommitRecords(ctx, recs...); err != nil {
			t.Fatalf("commit: %v", err)
		}
		read += len(recs)
	}
	cons.Close()

	// ...and a tool commits directly to an empty group (generation -1).
	adm := kadm.NewClient(confClient(t, b.addrs))
	simple := kadm.Offsets{}
	for p := int32(0); p < 3; p++ {
		simple.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(10 + p), LeaderEpoch: -1, Metadata: "sync"})
	}
	if resp, err := adm.CommitOffsets(ctx, "simple-group", simple); err != nil || resp.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, resp.Error())
	}

	before := map[string]kadm.OffsetResponses{}
	for _, g := range []string{"member-group", "simple-group"} {
		o, err := adm.FetchOffsets(ctx, g)
		if err != nil || o.Error() != nil {
			t.Fatalf("fetch %s: %v %v", g, err, o.Error())
		}
		before[g] = o
	}

	b.kill()
	b2 := startBinary(t, dir, 3)
	adm2 := kadm.NewClient(confClient(t, b2.addrs))
	for g, o := range before {
		after, err := adm2.FetchOffsets(ctx, g)
		if err != nil || after.Error() != nil {
			t.Fatalf("fetch %s after kill -9: %v %v", g, err, after.Error())
		}
		n := 0
		o.Each(func(want kadm.OffsetResponse) {
			got, ok := after.Lookup(want.Topic, want.Partition)
			if !ok || got.At != want.At || got.Metadata != want.Metadata {
				t.Errorf("%s %s/%d: after kill -9 %+v, before %+v", g, want.Topic, want.Partition, got.Offset, want.Offset)
			}
			n++
		})
		if n == 0 {
			t.Errorf("%s had no committed offsets before the kill", g)
		}
	}
	groups, err := adm2.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"member-group", "simple-group"} {
		if _, ok := groups[g]; !ok {
			t.Errorf("group %s not listed after restart: %v", g, groups.Groups())
		}
	}
}

// TestConformanceGroupSurvivesBrokerRestart restarts the broker under a
// running group consumer. The coordinator comes back with the group Stable
// at its journaled generation and members: the consumer keeps its
// generation and resumes without losing a record.
func TestConformanceGroupSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.Addrs()[0]
	const topic, group = "restart-topic", "restart-group"
	confCreateTopic(t, c.Addrs(), topic, 3)
	produceN(t, confClient(t, c.Addrs()), topic, 0, 300, 11)

	cons := confClient(t, []string{addr},
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(100*time.Millisecond))
	count, stopPoll := pollValues(cons)
	defer stopPoll()
	confWait(t, time.Minute, "the first 300 records", count(300))
	_, gen1 := cons.GroupMetadata()

	// Let the last commits land, then restart on the same address.
	adm := kadm.NewClient(confClient(t, []string{addr}))
	confWait(t, 30*time.Second, "commits covering all 300 records", func() error {
		offs, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return err
		}
		var total int64
		offs.Each(func(o kadm.OffsetResponse) { total += max(o.At, 0) })
		if total != 300 {
			return fmt.Errorf("commits cover %d", total)
		}
		return nil
	})
	c.Close()
	c2, err := brokerd.Start(context.Background(), brokerd.Config{Dir: dir, Brokers: 1, Listen: addr})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer c2.Close()
	produceN(t, confClient(t, c2.Addrs()), topic, 300, 300, 11)
	confWait(t, 2*time.Minute, "all 600 records after the restart", count(600))
	if _, gen2 := cons.GroupMetadata(); gen2 != gen1 {
		t.Fatalf("generation %d after restart, %d before: the restored group rebalanced", gen2, gen1)
	}
}

// TestConformanceCommitLoopSurvivesKill9 kills the broker binary while a
// tool commits offsets as fast as it can: after the restart the committed
// offset is at least the last acknowledged one and never one that was not
// sent.
func TestConformanceCommitLoopSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	b := startBinary(t, dir, 1)
	const topic, group = "commit-loop", "commit-loop-group"
	confCreateTopic(t, b.addrs, topic, 1)
	adm := kadm.NewClient(confClient(t, b.addrs, kgo.RetryTimeout(time.Second)))

	var acked, sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			sent.Store(i)
			o := kadm.Offsets{}
			o.Add(kadm.Offset{Topic: topic, Partition: 0, At: i, LeaderEpoch: -1})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := adm.CommitOffsets(ctx, group, o)
			cancel()
			if err != nil || resp.Error() != nil {
				return // the broker is gone
			}
			acked.Store(i)
		}
	}()
	confWait(t, time.Minute, "200 acknowledged commits", func() error {
		if n := acked.Load(); n < 200 {
			return fmt.Errorf("acknowledged %d", n)
		}
		return nil
	})
	b.kill()
	<-done
	lastAcked, lastSent := acked.Load(), sent.Load()

	b2 := startBinary(t, dir, 1)
	adm2 := kadm.NewClient(confClient(t, b2.addrs))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs, err := adm2.FetchOffsets(ctx, group)
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch after kill -9: %v %v", err, offs.Error())
	}
	got, ok := offs.Lookup(topic, 0)
	if !ok || got.At < lastAcked || got.At > lastSent {
		t.Fatalf("committed offset after kill -9: %+v, want between the last acknowledged %d and the last sent %d", got.Offset, lastAcked, lastSent)
	}
}
