package brokerd_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConformanceKcatReadCommitted: franz-go writes aborted and committed
// transactions to one partition; kcat (librdkafka) with
// isolation.level=read_committed reads exactly the committed records, in
// order, and with read_uncommitted every record.
func TestConformanceKcatReadCommitted(t *testing.T) {
	kcat := kcatPath(t)
	c := confStart(t, t.TempDir(), 1)
	addrs := c.Addrs()
	const topic = "kcat-txn"
	confCreateTopic(t, addrs, topic, 1)
	prod := confClient(t, addrs, kgo.TransactionalID("kcat-txn-producer"), kgo.DefaultProduceTopic(topic))
	ctx := context.Background()
	var committed, all []string
	for i, commit := range []bool{false, true, false, true} {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			v := fmt.Sprintf("txn%d-%d", i, j)
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			all = append(all, v)
			if commit {
				committed = append(committed, v)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d: %v", i, err)
		}
	}

	read := func(level string) []string {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, "-b", addrs[0], "-C", "-t", topic, "-o", "beginning", "-e", "-q",
			"-X", "isolation.level="+level)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %s: %v\n%s", level, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := read("read_committed"); !slices.Equal(got, committed) {
		t.Fatalf("kcat read_committed: %q, want %q", got, committed)
	}
	if got := read("read_uncommitted"); !slices.Equal(got, all) {
		t.Fatalf("kcat read_uncommitted: %q, want %q", got, all)
	}
}
