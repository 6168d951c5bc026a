package pipelines

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// MaxTopicExpressions bounds each of a pipeline's topics.include and
// topics.exclude lists. Matching and validation cost grows with the list
// (linearly: see exprSet); the bound keeps a configuration's memory
// predictable, and a longer list is refused with its position.
const MaxTopicExpressions = 100_000

// exprSet is a list of anchored expressions, indexed so that matching a
// name costs a few lookups per character of the name, not one regular
// expression per entry: an include list may name tens of thousands of
// topics.
//
// Invariant: every expression is in exactly one of literal (it matches one
// name, kept as a string, never compiled), names (literal characters and
// ".", optionally ending in ".*": never compiled either) or byPrefix
// (compiled in re, filed under the literal text every name it matches
// starts with, possibly "").
type exprSet struct {
	n        int
	literal  map[string]int         // the one name an expression matches -> its lowest index
	names    runeTrie               // orders.region1.events, orders\..*
	byPrefix map[string][]int       // literal prefix -> indexes, ascending
	re       map[int]*regexp.Regexp // index -> anchored, compiled expression
}

// exprErr is an expression that does not compile, by index.
type exprErr struct {
	i   int
	err error
}

// compileSet compiles exprs; it returns every expression that does not
// compile, with its index.
func compileSet(exprs []string) (exprSet, []exprErr) {
	s := exprSet{n: len(exprs), literal: map[string]int{}, names: newRuneTrie(), byPrefix: map[string][]int{}, re: map[int]*regexp.Regexp{}}
	var errs []exprErr
	for i, e := range exprs {
		if parsed, err := syntax.Parse(e, syntax.Perl); err == nil {
			parsed = parsed.Simplify()
			// A literal holding U+FFFD also matches an invalid byte, as
			// regexp decodes one: the trie compares decoded characters,
			// the map would compare bytes.
			if name, ok := literalOf(parsed); ok && !strings.ContainsRune(name, utf8.RuneError) {
				if _, dup := s.literal[name]; !dup {
					s.literal[name] = i
				}
				continue
			}
			if steps, ok := trieSteps(parsed, nil); ok {
				// Topic names written with unescaped dots, the usual
				// shape of a long list: they share short literal
				// prefixes ("orders"), so the prefix index would try
				// each of them in turn.
				s.names.insert(steps, i)
				continue
			}
			pre := prefixOf(parsed)
			if k := strings.IndexRune(pre, utf8.RuneError); k >= 0 {
				pre = pre[:k] // as above: a name need not hold these bytes
			}
			re, err := anchor(e)
			if err != nil {
				errs = append(errs, exprErr{i, err})
				continue
			}
			s.byPrefix[pre] = append(s.byPrefix[pre], i)
			s.re[i] = re
			continue
		}
		_, err := anchor(e) // the error as regexp words it
		if err == nil {
			err = fmt.Errorf("cannot parse %q", e)
		}
		errs = append(errs, exprErr{i, err})
	}
	return s, errs
}

// match returns the lowest index of an expression that matches the whole
// name.
func (s *exprSet) match(name string) (int, bool) {
	best := -1
	if i, ok := s.literal[name]; ok {
		best = i
	}
	best = s.names.match(name, best)
	for k := 0; k <= len(name); k++ {
		for _, i := range s.byPrefix[name[:k]] {
			if best >= 0 && i >= best {
				break // ascending: nothing lower remains under this prefix
			}
			if s.re[i].MatchString(name) {
				best = i
				break
			}
		}
	}
	return best, best >= 0
}

// Steps of an expression filed in a runeTrie, besides literal characters.
const (
	stepAny  rune = -1 // ".": any one character but a newline
	stepRest rune = -2 // ".*" at the end: any run of characters but a newline
)

// trieSteps flattens a parsed expression into literal characters and
// stepAny, with stepRest only as the last step, appending to steps; ok is
// false for any other shape (classes, alternations, case folding, "(?s).",
// anchors, counted repeats).
func trieSteps(re *syntax.Regexp, steps []rune) ([]rune, bool) {
	if n := len(steps); n > 0 && steps[n-1] == stepRest {
		return nil, false // something follows ".*"
	}
	switch re.Op {
	case syntax.OpEmptyMatch:
		return steps, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return append(steps, re.Rune...), true
	case syntax.OpAnyCharNotNL:
		return append(steps, stepAny), true
	case syntax.OpStar:
		if re.Sub[0].Op == syntax.OpAnyCharNotNL {
			return append(steps, stepRest), true
		}
	case syntax.OpPlus:
		if re.Sub[0].Op == syntax.OpAnyCharNotNL {
			return append(steps, stepAny, stepRest), true
		}
	case syntax.OpCapture:
		return trieSteps(re.Sub[0], steps)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			var ok bool
			if steps, ok = trieSteps(sub, steps); !ok {
				return nil, false
			}
		}
		return steps, true
	}
	return nil, false
}

// runeTrie files expressions given as steps (see trieSteps) by their
// characters, "." being one more kind of edge. Matching walks the name down
// the literal edge and the "." edge of each node it reaches; a node stands
// for one position in the name, so the walk reaches each node at most once
// and, for lists of topic names, reaches few nodes beyond the name's own
// path. It compares decoded characters as regexp does (an invalid byte is
// U+FFFD), so it agrees with the anchored regular expressions exactly.
type runeTrie struct {
	nodes []trieNode
	edges map[trieEdge]int32 // (node, literal character) -> child
}

type trieNode struct {
	any  int32 // child through ".", 0 when none (the root is nobody's child)
	end  int32 // lowest index of an expression ending here, -1 when none
	rest int32 // lowest index of an expression that is this path then ".*", -1 when none
}

type trieEdge struct {
	from int32
	r    rune
}

func newRuneTrie() runeTrie {
	return runeTrie{nodes: []trieNode{{end: -1, rest: -1}}, edges: map[trieEdge]int32{}}
}

// insert files expression i; expressions come in ascending index order, so
// the first to reach a node's end or rest is the lowest.
func (t *runeTrie) insert(steps []rune, i int) {
	n := int32(0)
	for _, r := range steps {
		if r == stepRest {
			if t.nodes[n].rest < 0 {
				t.nodes[n].rest = int32(i)
			}
			return
		}
		next := t.nodes[n].any
		if r != stepAny {
			next = t.edges[trieEdge{n, r}]
		}
		if next == 0 {
			next = int32(len(t.nodes))
			t.nodes = append(t.nodes, trieNode{end: -1, rest: -1})
			if r == stepAny {
				t.nodes[n].any = next
			} else {
				t.edges[trieEdge{n, r}] = next
			}
		}
		n = next
	}
	if t.nodes[n].end < 0 {
		t.nodes[n].end = int32(i)
	}
}

// match returns the lower of best and the lowest index of an expression
// in t matching the whole name (best < 0: none yet).
func (t *runeTrie) match(name string, best int) int {
	if root := t.nodes[0]; len(t.nodes) == 1 && root.end < 0 && root.rest < 0 {
		return best
	}
	lower := func(i int32) {
		if i >= 0 && (best < 0 || int(i) < best) {
			best = int(i)
		}
	}
	lastNL := strings.LastIndexByte(name, '\n')
	type at struct {
		n   int32
		pos int
	}
	stack := []at{{0, 0}}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		node := &t.nodes[cur.n]
		if cur.pos > lastNL {
			lower(node.rest)
		}
		if cur.pos == len(name) {
			lower(node.end)
			continue
		}
		r, w := utf8.DecodeRuneInString(name[cur.pos:])
		if next, ok := t.edges[trieEdge{cur.n, r}]; ok {
			stack = append(stack, at{next, cur.pos + w})
		}
		if node.any != 0 && r != '\n' {
			stack = append(stack, at{node.any, cur.pos + w})
		}
	}
	return best
}

// literalOf reports whether a parsed expression matches exactly one name,
// and which.
func literalOf(re *syntax.Regexp) (string, bool) {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	switch {
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		return string(re.Rune), true
	case re.Op == syntax.OpEmptyMatch:
		return "", true
	}
	return "", false
}

// prefixOf is literal text every string a parsed expression matches starts
// with ("" when it cannot tell).
func prefixOf(re *syntax.Regexp) string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			return string(re.Rune)
		}
	case syntax.OpConcat:
		out := ""
		for _, sub := range re.Sub {
			lit, whole := literalOf(sub)
			if !whole {
				return out + prefixOf(sub)
			}
			out += lit
		}
		return out
	}
	return ""
}
