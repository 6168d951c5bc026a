package pipelines

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strings"
)

// ErrTopicName is returned by CheckTopicName for a name Kafka refuses.
var ErrTopicName = errors.New("pipelines: invalid topic name")

// MaxTopicName is the longest topic name Kafka accepts.
const MaxTopicName = 249

// CheckTopicName reports whether Kafka accepts name as a topic name: 1 to
// 249 characters from [a-zA-Z0-9._-], and neither "." nor "..".
func CheckTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrTopicName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrTopicName, name)
	case len(name) > MaxTopicName:
		return fmt.Errorf("%w: %d characters, the limit is %d", ErrTopicName, len(name), MaxTopicName)
	}
	for _, r := range name {
		if !topicRune(r) {
			return fmt.Errorf("%w: %q is not allowed (letters, digits, '.', '_', '-')", ErrTopicName, r)
		}
	}
	return nil
}

func topicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// sampleLimit bounds how many example names one expression yields, so a
// pathological expression cannot make validation slow.
const sampleLimit = 32

// samples returns example topic names the pipeline would mirror: for each
// include expression, a few short strings it matches (each optional part
// left out and put in once, the first character of each class). Checks that
// cannot be decided for all names (rename validity, overlapping
// destinations, loops) are decided on these.
func (p *Pipeline) samples() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range p.Topics.Include {
		re, err := syntax.Parse(e, syntax.Perl)
		if err != nil {
			continue
		}
		for _, s := range gen(re.Simplify(), 0) {
			if !seen[s] && CheckTopicName(s) == nil && p.Matches(s) {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// literal reports whether an include expression names exactly one topic.
func literal(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0
}

// literalText is the one name a literal expression matches.
func literalText(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return string(re.Rune)
}

// gen lists up to sampleLimit strings matched by re.
func gen(re *syntax.Regexp, depth int) []string {
	if depth > 50 {
		return nil
	}
	switch re.Op {
	case syntax.OpNoMatch:
		return nil
	case syntax.OpLiteral:
		return []string{string(re.Rune)}
	case syntax.OpCharClass:
		if len(re.Rune) < 2 {
			return nil
		}
		// Prefer a character a topic name may hold.
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && r < re.Rune[i]+128; r++ {
				if topicRune(r) {
					return []string{string(r)}
				}
			}
		}
		return []string{string(re.Rune[0])}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return []string{"x"}
	case syntax.OpCapture:
		return gen(re.Sub[0], depth+1)
	case syntax.OpStar, syntax.OpQuest:
		return union([]string{""}, gen(re.Sub[0], depth+1))
	case syntax.OpPlus:
		return gen(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		n := re.Min
		if n > MaxTopicName+1 {
			n = MaxTopicName + 1 // long enough to show the name is too long
		}
		sub := gen(re.Sub[0], depth+1)
		if len(sub) == 0 {
			if n == 0 {
				return []string{""}
			}
			return nil
		}
		return []string{strings.Repeat(sub[0], n)}
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			part := gen(s, depth+1)
			var next []string
			for _, a := range out {
				for _, b := range part {
					if len(next) < sampleLimit && len(a)+len(b) <= 2*MaxTopicName {
						next = append(next, a+b)
					}
				}
			}
			out = next
			if len(out) == 0 {
				return nil
			}
		}
		return out
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			out = union(out, gen(s, depth+1))
		}
		return out
	default:
		// Anchors and word boundaries match the empty string.
		return []string{""}
	}
}

func union(a, b []string) []string {
	for _, s := range b {
		if len(a) >= sampleLimit {
			break
		}
		if !hasString(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// sourceFor inverts the rename template: the source topic the pipeline
// would write to dest under, if any. any is true when the template has no
// {topic}, so every matched topic goes to that one name.
func (p *Pipeline) sourceFor(dest string) (src string, any, ok bool) {
	tmpl := p.Rename
	if tmpl == "" {
		tmpl = DefaultRename
	}
	tmpl = strings.ReplaceAll(tmpl, "{source}", p.Source)
	parts := strings.Split(tmpl, "{topic}")
	if len(parts) == 1 {
		return "", true, tmpl == dest
	}
	fixed := 0
	for _, s := range parts {
		fixed += len(s)
	}
	k := len(parts) - 1
	if len(dest) < fixed || (len(dest)-fixed)%k != 0 {
		return "", false, false
	}
	n := (len(dest) - fixed) / k
	if !strings.HasPrefix(dest, parts[0]) {
		return "", false, false
	}
	src = dest[len(parts[0]) : len(parts[0])+n]
	if p.DestTopic(src) != dest {
		return "", false, false
	}
	return src, false, true
}
