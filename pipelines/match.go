package pipelines

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// MaxTopicExpressions bounds each of a pipeline's topics.include and
// topics.exclude lists. Matching and validation cost grows with the list
// (linearly: see exprSet); the bound keeps a configuration's memory
// predictable, and a longer list is refused with its position.
const MaxTopicExpressions = 100_000

// exprSet is a list of anchored expressions, indexed so that matching a
// name costs at most one map lookup per prefix of the name plus the
// expressions sharing a literal prefix with it, not one regular expression
// per entry: an include list may name tens of thousands of topics.
//
// Invariant: every expression is in exactly one of literal (it matches one
// name, kept as a string, never compiled) or byPrefix (compiled in re, filed
// under the literal text every name it matches starts with, possibly "").
type exprSet struct {
	n        int
	literal  map[string]int         // the one name an expression matches -> its lowest index
	byPrefix map[string][]int       // literal prefix -> indexes, ascending
	re       map[int]*regexp.Regexp // index -> anchored, compiled expression
	// prefixOnly marks an expression that is its literal prefix followed by
	// ".*": the prefix lookup decides it, given no newline follows.
	prefixOnly map[int]bool
}

// exprErr is an expression that does not compile, by index.
type exprErr struct {
	i   int
	err error
}

// compileSet compiles exprs; it returns every expression that does not
// compile, with its index.
func compileSet(exprs []string) (exprSet, []exprErr) {
	s := exprSet{n: len(exprs), literal: map[string]int{}, byPrefix: map[string][]int{}, re: map[int]*regexp.Regexp{}, prefixOnly: map[int]bool{}}
	var errs []exprErr
	for i, e := range exprs {
		if parsed, err := syntax.Parse(e, syntax.Perl); err == nil {
			parsed = parsed.Simplify()
			if name, ok := literalOf(parsed); ok {
				if _, dup := s.literal[name]; !dup {
					s.literal[name] = i
				}
				continue
			}
			pre := prefixOf(parsed)
			s.byPrefix[pre] = append(s.byPrefix[pre], i)
			if prefixAny(parsed) {
				// "orders\..*", the usual shape of a long list: the
				// prefix says it all, no program is kept.
				s.prefixOnly[i] = true
				continue
			}
			re, err := anchor(e)
			if err != nil {
				errs = append(errs, exprErr{i, err})
				continue
			}
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
	for k := 0; k <= len(name); k++ {
		for _, i := range s.byPrefix[name[:k]] {
			if best >= 0 && i >= best {
				break // ascending: nothing lower remains under this prefix
			}
			if s.prefixOnly[i] && !strings.Contains(name[k:], "\n") || s.re[i] != nil && s.re[i].MatchString(name) {
				best = i
				break
			}
		}
	}
	return best, best >= 0
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

// prefixAny reports whether a parsed expression is literal text followed by
// ".*" (any run of characters but a newline) and nothing else.
func prefixAny(re *syntax.Regexp) bool {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return false
	}
	for _, sub := range re.Sub[:len(re.Sub)-1] {
		if _, ok := literalOf(sub); !ok {
			return false
		}
	}
	last := re.Sub[len(re.Sub)-1]
	return last.Op == syntax.OpStar && last.Sub[0].Op == syntax.OpAnyCharNotNL
}
