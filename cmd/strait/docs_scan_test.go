package main

// The scanner behind TestDocsCommandLines: where the docs write command
// lines, and what is wrong with one.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// mention is one strait command line found in a document.
type mention struct {
	where string   // file:line
	words []string // what follows "strait", up to a shell operator
}

var (
	// commandStart matches a command line: strait, ./strait, a path to
	// strait, or go run ./cmd/strait, then the arguments.
	commandStart = regexp.MustCompile(`^(?:\$\s+)?(?:go run \S*cmd/strait|(?:\S*/)?strait)\s+(.+)$`)
	inlineCode   = regexp.MustCompile("`([^`]+)`")
	// flagToken finds flags in a token: --name, -v, [--name, a|--name.
	flagToken   = regexp.MustCompile(`(?:^|[\[(|])(--?[a-zA-Z][a-zA-Z0-9-]*)`)
	commandWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// commandWords splits the arguments of a command line and cuts them at the
// first shell operator or comment.
func commandWords(args string) []string {
	var words []string
	for _, w := range strings.Fields(args) {
		if slices.Contains([]string{"&", "&&", "|", "||", ";", "\\"}, w) || strings.HasPrefix(w, "#") ||
			strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") || strings.HasPrefix(w, "2>") {
			break
		}
		words = append(words, w)
	}
	return words
}

// mentions finds the strait command lines of a Markdown document: lines of
// fenced code blocks (joined with their continuation lines, a "$ " prompt
// allowed) and inline code spans (within a paragraph, across line breaks)
// that start with the command.
func mentions(file, text string) []mention {
	var out []mention
	add := func(line int, s string) {
		s = strings.TrimSpace(strings.ReplaceAll(s, "\n", " ")) // a span wrapped across lines
		if m := commandStart.FindStringSubmatch(s); m != nil {
			out = append(out, mention{where: fmt.Sprintf("%s:%d", file, line), words: commandWords(m[1])})
		}
	}
	lines := strings.Split(text, "\n")
	inCode := false
	var para strings.Builder
	paraLine := 0
	flush := func() {
		text := para.String()
		for _, m := range inlineCode.FindAllStringSubmatchIndex(text, -1) {
			add(paraLine+strings.Count(text[:m[0]], "\n"), text[m[2]:m[3]])
		}
		para.Reset()
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			flush()
			inCode = !inCode
			continue
		}
		if inCode {
			start := i
			for strings.HasSuffix(strings.TrimRight(l, " "), "\\") && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(strings.TrimRight(l, " "), "\\") + " " + lines[i]
			}
			add(start+1, l)
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if para.Len() == 0 {
			paraLine = i + 1
		}
		para.WriteString(l + "\n")
	}
	flush()
	return out
}

// check reports what is wrong with one mention.
func (m mention) check(cmds map[string]map[string]bool) []string {
	if len(m.words) == 0 {
		return nil
	}
	hasSub := func(key string) bool {
		for k := range cmds {
			if strings.HasPrefix(k, key+" ") {
				return true
			}
		}
		return false
	}
	key, rest := "", m.words
	switch w := m.words[0]; {
	case strings.HasPrefix(w, "-"):
		key = "" // strait -h
	case !commandWord.MatchString(w):
		return nil // a placeholder: strait <command>
	case cmds[w] == nil && !hasSub(w):
		return []string{fmt.Sprintf("%s: strait %s: no such command", m.where, w)}
	default:
		key, rest = w, m.words[1:]
	}
	if key == "help" {
		return nil
	}
	if key != "" && hasSub(key) && len(rest) > 0 && commandWord.MatchString(rest[0]) {
		if cmds[key+" "+rest[0]] == nil {
			return []string{fmt.Sprintf("%s: strait %s %s: no such command", m.where, key, rest[0])}
		}
		key, rest = key+" "+rest[0], rest[1:]
	}
	flags := cmds[key]
	if key == "" {
		flags = map[string]bool{"-h": true, "--help": true}
	}
	var problems []string
	for _, w := range rest {
		for _, f := range flagToken.FindAllStringSubmatch(w, -1) {
			switch {
			case flags == nil:
				problems = append(problems, fmt.Sprintf("%s: strait %s %s: strait %s needs a sub-command before its flags", m.where, key, f[1], key))
			case !flags[f[1]]:
				problems = append(problems, fmt.Sprintf("%s: strait %s: no flag %s", m.where, key, f[1]))
			}
		}
	}
	return problems
}

// checkReference reports every flag the reference leaves out: each command
// with flags needs a section whose heading names it ("## strait broker"),
// and the section (down to the next heading as high or higher) names each
// flag.
func checkReference(file, text string, cmds map[string]map[string]bool) []string {
	type section struct {
		key, text string
	}
	var sections []section
	lines := strings.Split(text, "\n")
	inCode := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode = !inCode
		}
		level := len(l) - len(strings.TrimLeft(l, "#"))
		if inCode || level == 0 || !strings.HasPrefix(l[level:], " ") {
			continue
		}
		key := ""
		for k := range cmds {
			if regexp.MustCompile(`strait `+regexp.QuoteMeta(k)+`\b`).MatchString(l) && len(k) > len(key) {
				key = k
			}
		}
		if key == "" {
			continue
		}
		end := len(lines)
		for j := i + 1; j < len(lines); j++ {
			if n := len(lines[j]) - len(strings.TrimLeft(lines[j], "#")); n > 0 && n <= level && strings.HasPrefix(lines[j][n:], " ") {
				end = j
				break
			}
		}
		sections = append(sections, section{key, strings.Join(lines[i:end], "\n")})
	}
	var problems []string
	for key, flags := range cmds {
		var names []string
		for f := range flags {
			if strings.HasPrefix(f, "--") && f != "--help" {
				names = append(names, strings.TrimPrefix(f, "--"))
			}
		}
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		var body strings.Builder
		for _, s := range sections {
			if s.key == key {
				body.WriteString(s.text + "\n")
			}
		}
		if body.Len() == 0 {
			problems = append(problems, fmt.Sprintf("%s: no section for strait %s (a heading naming it)", file, key))
			continue
		}
		for _, n := range names {
			if !regexp.MustCompile(`(?:^|[^\w-])--?` + regexp.QuoteMeta(n) + `(?:[^\w-]|$)`).MatchString(body.String()) {
				problems = append(problems, fmt.Sprintf("%s: the section for strait %s does not mention --%s", file, key, n))
			}
		}
	}
	slices.Sort(problems)
	return problems
}
