package pipelines

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// bigInclude is a configuration whose one pipeline lists n include
// expressions: escaped topic names and "prefix.*" expressions, the shapes
// of a generated list.
func bigInclude(n int) []byte {
	var b strings.Builder
	b.WriteString(`clusters:
  east: {bootstrap: ["127.0.0.1:9092"]}
  west: {bootstrap: ["127.0.0.1:9093"]}
pipelines:
  - name: big
    source: east
    destination: west
    rename: "east.{topic}"
    topics:
      include:
`)
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&b, "        - 'orders\\.region%d\\.events'\n", i)
		} else {
			fmt.Fprintf(&b, "        - 'payments\\.shard%d\\..*'\n", i)
		}
	}
	return []byte(b.String())
}

// TestManyIncludesValidate: a 100,000-entry include list validates without
// checking each name against every expression (what took minutes and
// gigabytes), and the pipeline matches by its expressions.
func TestManyIncludesValidate(t *testing.T) {
	data := bigInclude(MaxTopicExpressions)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := Parse("big.yaml", data)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	// Everything allocated while loading, garbage included: before the
	// index, 10,000 entries alone allocated 240 MB and 20,000 twice that
	// (the checks compared every sample with every expression).
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<30 {
		t.Fatalf("loading allocated %d MB", got>>20)
	}
	p := c.Pipelines[0]
	for topic, want := range map[string]bool{
		"orders.region0.events":     true,
		"orders.region99998.events": true,
		"orders.region1.events":     false, // odd entries are payments
		"orders.regionX.events":     false,
		"payments.shard1.a":         true,
		"payments.shard99999.":      true,
		"payments.shard2.a":         false,
		"__consumer_offsets":        false,
	} {
		if got := p.Matches(topic); got != want {
			t.Errorf("Matches(%q) = %v, want %v", topic, got, want)
		}
	}
}

// TestTooManyIncludes: one entry over the limit is refused at the first
// entry past it, with the limit in the message.
func TestTooManyIncludes(t *testing.T) {
	_, err := Parse("big.yaml", bigInclude(MaxTopicExpressions+1))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := fmt.Sprintf("big.yaml:%d:", 11+MaxTopicExpressions)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", MaxTopicExpressions)) {
		t.Fatalf("error %q lacks %q and the limit", err, want)
	}
}
