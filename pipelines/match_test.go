package pipelines

import (
	"regexp"
	"testing"
)

// TestExprSetAgreesWithRegexp: whichever index files an expression (the
// literal map, the trie of names with dots, the prefix index), the set
// matches exactly the names the anchored regular expressions match, and
// reports the lowest matching index.
func TestExprSetAgreesWithRegexp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exprs []string
	}{
		{"everything", []string{`.*`}},
		{"unescaped dots", []string{`orders.region1.events`, `orders.region2.events`, `orders..`}},
		{"escaped dots", []string{`orders\.region1\.events`, `orders\..*`, `a\.b`}},
		{"dots and escaped dots", []string{`a.b\.c`, `a\.b.c`, `a..c`, `a\.\.c`}},
		{"trailing any", []string{`orders.*`, `orders.+`, `orders\..+`, `x.*`, `.*`, `.+`, `(?:ab).*`}},
		{"any in the middle", []string{`a.*b`, `a.+b`, `.*b`, `a(.*)`}},
		{"alternation", []string{`orders|payments`, `orders.a|payments.b`, `(orders|payments)\..*`, `a|ab|abc`}},
		{"classes", []string{`orders\.[0-9]+`, `[a-c].x`, `orders.[^.]`, `o\d.`}},
		{"case folding", []string{`(?i)orders.a`, `(?i:a).b`, `A.b`}},
		{"dot matches newline", []string{`(?s)a.b`, `(?s)a.*`, `a.b`}},
		{"anchors", []string{`^a.b$`, `a.b$`, `^a.*`, `\Aa.\z`}},
		{"repeats", []string{`a.{2}b`, `a.{2,3}b`, `a.?b`, `(a.)*`, `(?:a.){2}`}},
		{"captures and empty", []string{`(a).(b)`, ``, `()`, `(?:)a.`}},
		{"unicode", []string{`é.ü`, `.é`, `\x{FFFD}.`, `a\x{FFFD}`, `ä.*`}},
		{"duplicates lowest first", []string{`b.`, `a.c`, `a.c`, `a.*`, `a..`, `a\.c`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, errs := compileSet(tc.exprs)
			if len(errs) > 0 {
				t.Fatalf("compile: %v", errs[0].err)
			}
			var res []*regexp.Regexp
			for _, e := range tc.exprs {
				res = append(res, regexp.MustCompile(`^(?:`+e+`)$`))
			}
			for _, name := range matchNames {
				want := -1
				for i, re := range res {
					if re.MatchString(name) {
						want = i
						break
					}
				}
				got, ok := set.match(name)
				if !ok {
					got = -1
				}
				if got != want {
					t.Errorf("match(%q) = %d, regexp says %d", name, got, want)
				}
			}
		})
	}
}

// matchNames are names that tell the expressions above apart: real dots
// and other characters in the dots' places, one character too few or too
// many, newlines, multi-byte and invalid UTF-8.
var matchNames = []string{
	"", "a", "b", "x", ".", "..", "\n", "ab", "abc", "a.b", "axb", "a\nb", "a.b.c", "a.bxc", "axb.c",
	"a..c", "axxc", "a.c", "abc\n", "a\n", "aab", "aabb", "a.a.", "axay", "ab\nb", "a.xb", "a..b",
	"orders", "orders.", "orders.a", "ordersxa", "orders..", "orders.region1.events",
	"ordersXregion1Xevents", "orders.region1.event", "orders.region1.eventss", "orders.region2.events",
	"orders.region3.events", "orders.region1.events\n", "orders\n", "orders.\n", "orders.1", "orders.12",
	"orders.x", "ORDERS.A", "Orders.a", "payments", "payments.b", "paymentsxb", "payments.", "orders|payments",
	"A.b", "Axb", "a.B", "c.x", "d.x", "o1.", "o1x", "ox.", "x\ny", "xyz", "\nb", "b\n",
	"é.ü", "éxü", "é\nü", ".é", "xé", "é", "\xff.", "\xff", "a\xff", "a\xef\xbf\xbd", "\xef\xbf\xbdx",
	"ä", "äöü", "ä\n", "e\xcc\x81", "aaaa",
}
