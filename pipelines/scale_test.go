package pipelines

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// bigInclude is a configuration whose one pipeline lists n include
// expressions, even entries from orders and odd ones from payments, each a
// fmt format taking the entry's position: the shapes of a generated list.
func bigInclude(n int, orders, payments string) []byte {
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
		format := orders
		if i%2 == 1 {
			format = payments
		}
		fmt.Fprintf(&b, "        - '"+format+"'\n", i)
	}
	return []byte(b.String())
}

// TestManyIncludesValidate: a 100,000-entry include list validates without
// checking each name against every expression (what took minutes and
// gigabytes), and the pipeline matches by its expressions. Names written
// with unescaped dots all share the literal prefix before the first dot,
// so they need an index of their own.
func TestManyIncludesValidate(t *testing.T) {
	for _, tc := range []struct {
		name             string
		orders, payments string
		matches          map[string]bool
	}{{
		name: "escaped", orders: `orders\.region%d\.events`, payments: `payments\.shard%d\..*`,
		matches: map[string]bool{
			"orders.region0.events":     true,
			"orders.region99998.events": true,
			"orders.region1.events":     false, // odd entries are payments
			"orders.regionX.events":     false,
			"ordersXregion0.events":     false,
			"payments.shard1.a":         true,
			"payments.shard99999.":      true,
			"payments.shard2.a":         false,
			"__consumer_offsets":        false,
		},
	}, {
		name: "dotted", orders: `orders.region%d.events`, payments: `payments.shard%d..*`,
		matches: map[string]bool{
			"orders.region0.events":     true,
			"orders.region99998.events": true,
			"ordersXregion0-events":     true, // "." is any character
			"orders.region1.events":     false,
			"orders.region0.event":      false,
			"orders.region0.eventss":    false,
			"orders.region0.events\n":   false,
			"payments.shard1.a":         true,
			"payments-shard1-":          true,
			"payments.shard1":           false,
			"payments.shard1\nx":        false,
			"payments.shard2.a":         false,
		},
	}, {
		name: "dotted prefix", orders: `orders.region%d.*`, payments: `payments.shard%d.+`,
		matches: map[string]bool{
			"orders.region0":            true,
			"orders.region0.x.y":        true,
			"orders.region12":           true, // region1 then any run
			"orders.region99998.events": true,
			"orders.region":             false,
			"payments.shard1.a":         true,
			"payments.shard1":           false,
			"payments.shard1.\n":        false,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			data := bigInclude(MaxTopicExpressions, tc.orders, tc.payments)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c, err := Parse("big.yaml", data)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			// Everything allocated while loading, garbage included: before
			// the index, 10,000 entries alone allocated 240 MB and 20,000
			// twice that (the checks compared every sample with every
			// expression); 100,000 dotted entries did not load in ten
			// minutes.
			t.Logf("loading allocated %d MB in %d allocations", (after.TotalAlloc-before.TotalAlloc)>>20, after.Mallocs-before.Mallocs)
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<30 {
				t.Fatalf("loading allocated %d MB", got>>20)
			}
			if got := after.Mallocs - before.Mallocs; got > 50_000_000 {
				t.Fatalf("loading made %d allocations", got)
			}
			p := c.Pipelines[0]
			for topic, want := range tc.matches {
				if got := p.Matches(topic); got != want {
					t.Errorf("Matches(%q) = %v, want %v", topic, got, want)
				}
			}
		})
	}
}

// TestTooManyIncludes: one entry over the limit is refused at the first
// entry past it, with the limit in the message.
func TestTooManyIncludes(t *testing.T) {
	_, err := Parse("big.yaml", bigInclude(MaxTopicExpressions+1, `orders\.region%d\.events`, `payments\.shard%d\..*`))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := fmt.Sprintf("big.yaml:%d:", 11+MaxTopicExpressions)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", MaxTopicExpressions)) {
		t.Fatalf("error %q lacks %q and the limit", err, want)
	}
}
