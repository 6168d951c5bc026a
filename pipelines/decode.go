package pipelines

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns one file's YAML node tree into typed values. It walks the
// tree itself, rather than using yaml.v3's Decode, so that it can report
// every mistake with its position (Decode stops at the first type error
// and does not catch unknown fields in nodes), and so that it knows which
// fields were written, which defaults.go needs to tell "unset" from "0".
type decoder struct {
	file   string
	errs   Errors
	lookup func(string) (string, bool)

	// pos maps a pointer to a decoded field (or a struct) to the position
	// of its value in the file; a field is "set" iff it has an entry.
	pos map[any]Position
	// elem maps (pointer to a slice field, index) to the element's position.
	elem map[elemKey]Position
	// failed holds fields whose value was rejected, so that semantic
	// checks do not pile a second, confusing error on the same field.
	failed map[any]bool
	// partial holds structs with an unknown (likely misspelled) field: a
	// "required" check on them would only repeat that mistake.
	partial map[any]bool
	// merged counts key/value pairs copied by merge keys; aliases can
	// multiply them (a "billion laughs" file), so it is bounded.
	merged int
}

// maxMerged bounds the pairs merge keys may copy in one file.
const maxMerged = 100000

type elemKey struct {
	slice any
	i     int
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:    file,
		lookup:  lookup,
		pos:     map[any]Position{},
		elem:    map[elemKey]Position{},
		failed:  map[any]bool{},
		partial: map[any]bool{},
	}
}

func (d *decoder) at(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.at(n), Msg: fmt.Sprintf(format, args...)})
}

// yamlLine finds the line number yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are yaml.v3's parser (as opposed to scanner) messages.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
}

// parseFile reads one document into cfg. Syntax errors end the file's
// decoding (there is no tree to walk); everything else is collected.
func (d *decoder) parseFile(data []byte, cfg *Config) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file defines nothing
		}
		d.syntaxError(err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "a second YAML document in one file; put each configuration in its own file")
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
}

func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if parserProblems[msg] {
			// yaml.v3 prints the 0-based line of the collection a parser
			// (not scanner) error is in; make it the usual 1-based line.
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.errs = append(d.errs, &Error{Pos: Position{File: d.file, Line: line, Column: 1}, Msg: "invalid YAML: " + msg})
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
	startType    = reflect.TypeFor[Start]()
	modeType     = reflect.TypeFor[Mode]()
)

// kindName names a node's kind for "expected X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean " + n.Value
		case "!!int", "!!float":
			return "a number " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func label(path string) string {
	if path == "" {
		return "the configuration"
	}
	return path
}

// value decodes n into v (addressable) and records its position. It
// reports whether the value was accepted.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	ptr := v.Addr().Interface()
	ok := d.decodeValue(n, v, path)
	if ok {
		d.pos[ptr] = d.at(n)
	} else {
		d.failed[ptr] = true
	}
	return ok
}

func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	switch t {
	case secretType:
		s, ok := d.str(n, path, true)
		v.SetString(s)
		return ok
	case durationType, sizeType, startType, modeType:
		s, ok := d.str(n, path, false)
		if !ok {
			return false
		}
		var err error
		switch t {
		case durationType:
			var x Duration
			x, err = ParseDuration(s)
			v.Set(reflect.ValueOf(x))
		case sizeType:
			var x Size
			x, err = ParseSize(s)
			v.Set(reflect.ValueOf(x))
		case startType:
			var x Start
			x, err = ParseStart(s)
			v.Set(reflect.ValueOf(x))
		case modeType:
			switch Mode(s) {
			case ModeBatch, ModeRecord:
				v.SetString(s)
			default:
				err = fmt.Errorf("expected batch or record, got %q", s)
			}
		}
		if err != nil {
			d.errorf(n, "%s: %v", path, err)
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := d.str(n, path, true)
		v.SetString(s)
		return ok
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorf(n, "%s: expected true or false, got %s", path, kindName(n))
			return false
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			// YAML 1.1 spellings (yes, on) carry the bool tag too; refuse
			// them rather than guess.
			d.errorf(n, "%s: expected true or false, got %q", path, n.Value)
			return false
		}
		v.SetBool(b)
		return true
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
			d.errorf(n, "%s: expected a number, got %s", path, kindName(n))
			return false
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.errorf(n, "%s: expected a number, got %q", path, n.Value)
			return false
		}
		v.SetFloat(f)
		return true
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.value(n, v.Elem(), path)
	case reflect.Struct:
		return d.mapping(n, v, path)
	case reflect.Slice:
		return d.sequence(n, v, path)
	case reflect.Map:
		return d.dict(n, v, path)
	}
	d.errorf(n, "%s: cannot decode into %s", path, t)
	return false
}

// str reads a scalar string. expand says whether ${...} references are
// allowed (string fields) or refused (typed fields such as durations).
func (d *decoder) str(n *yaml.Node, path string, expand bool) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s: expected a string, got %s", path, kindName(n))
		return "", false
	}
	if !expand {
		if strings.Contains(n.Value, "${") {
			d.errorf(n, "%s: ${...} is only allowed in string fields", path)
			return "", false
		}
		return n.Value, true
	}
	s, err := expandVars(n.Value, d.lookup, filepath.Dir(d.file))
	if err != nil {
		d.errorf(n, "%s: %v", path, err)
		return "", false
	}
	return s, true
}

// fieldInfo is one YAML-visible field of a struct.
type fieldInfo struct {
	name  string
	index int
}

func fields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldInfo{name, i})
	}
	return out
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", label(path), kindName(n))
		return false
	}
	fs := fields(v.Type())
	seen := map[string]*yaml.Node{}
	pairs := d.withMerges(n, path, 0)
	if d.merged > maxMerged {
		d.partial[v.Addr().Interface()] = true
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		k, val := pairs[i], pairs[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: expected a field name, got %s", label(path), kindName(k))
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			d.errorf(k, "%s: duplicate key %q (first at line %d)", label(path), k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		if path == "" && strings.HasPrefix(k.Value, "x-") {
			// Top-level x-... keys are ignored: a place to define YAML
			// anchors for shared settings (as docker compose does).
			continue
		}
		var fi *fieldInfo
		for j := range fs {
			if fs[j].name == k.Value {
				fi = &fs[j]
			}
		}
		sub := join(path, k.Value)
		if fi == nil {
			names := make([]string, len(fs))
			for j, f := range fs {
				names[j] = f.name
			}
			if near := closest(k.Value, names); near != "" {
				d.errorf(k, "%s: unknown field %q; did you mean %q?", label(path), k.Value, near)
			} else {
				d.errorf(k, "%s: unknown field %q; expected one of %s", label(path), k.Value, strings.Join(names, ", "))
			}
			d.partial[v.Addr().Interface()] = true
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			// "field:" with no value leaves the field unset (and defaulted).
			continue
		}
		d.value(val, v.Field(fi.index), sub)
	}
	// A mapping is accepted when it is a mapping: its fields' own
	// failures are recorded on the fields, not here.
	return true
}

// isMerge reports whether a key is YAML's merge key "<<".
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// withMerges returns a mapping's key/value pairs with the fields of "<<:
// *anchor" (or "<<: [*a, *b]") merged in, so shared settings can be
// written once: keys written in the mapping win, then earlier merges.
func (d *decoder) withMerges(n *yaml.Node, path string, level int) []*yaml.Node {
	var out, merges []*yaml.Node
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merges = append(merges, val)
			continue
		}
		explicit[k.Value] = true
		out = append(out, k, val)
	}
	var add func(m *yaml.Node, depth int)
	add = func(m *yaml.Node, depth int) {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		switch {
		case d.merged > maxMerged:
			return // reported once, below
		case level > 10:
			// Also stops an anchor that merges itself (&a {<<: *a}).
			d.errorf(m, "%s: merge keys nested too deep (does an anchor merge itself?)", label(path))
		case m.Kind == yaml.SequenceNode && depth == 0:
			for _, e := range m.Content {
				add(e, depth+1)
			}
		case m.Kind == yaml.MappingNode:
			flat := d.withMerges(m, path, level+1)
			for i := 0; i+1 < len(flat); i += 2 {
				// Every copied pair counts, so a file whose aliases
				// multiply through merges stops early.
				if d.merged++; d.merged > maxMerged {
					if d.merged == maxMerged+1 {
						d.errorf(m, "%s: merge keys expand to more than %d fields", label(path), maxMerged)
					}
					return
				}
				if !explicit[flat[i].Value] {
					explicit[flat[i].Value] = true
					out = append(out, flat[i], flat[i+1])
				}
			}
		default:
			d.errorf(m, "%s: << expects a mapping or a list of mappings, got %s", label(path), kindName(m))
		}
	}
	for _, m := range merges {
		add(m, 0)
	}
	return out
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.SequenceNode {
		what := "a list"
		if v.Type().Elem().Kind() == reflect.String {
			what = "a list of strings"
		}
		d.errorf(n, "%s: expected %s, got %s", path, what, kindName(n))
		return false
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	ok := true
	for i, e := range n.Content {
		if e.Kind == yaml.AliasNode {
			e = e.Alias
		}
		if !d.value(e, s.Index(i), elemPath(path, i, e)) {
			ok = false
		}
		d.elem[elemKey{v.Addr().Interface(), i}] = d.at(e)
	}
	v.Set(s)
	return ok
}

func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping of names, got %s", path, kindName(n))
		return false
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" || k.Value == "" {
			d.errorf(k, "%s: expected a name, got %s", path, kindName(k))
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			d.errorf(k, "%s: duplicate key %q (first at line %d)", path, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		sub := path + "." + k.Value
		e := reflect.New(v.Type().Elem()).Elem()
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			d.errorf(val, "%s: expected a mapping, got null", sub)
			// Keep the name defined, so that references to it do not
			// cascade into "not defined" errors.
			if e.Kind() == reflect.Pointer {
				e.Set(reflect.New(e.Type().Elem()))
				d.failed[e.Interface()] = true
				d.pos[e.Interface()] = d.at(k)
			}
			v.SetMapIndex(reflect.ValueOf(k.Value), e)
			continue
		}
		d.value(val, e, sub)
		if e.Kind() == reflect.Pointer && !e.IsNil() {
			// Key positions name a map entry in errors about the entry.
			d.pos[e.Interface()] = d.at(k)
		}
		v.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	return true
}

// envName is what ${NAME} accepts, as POSIX shells do.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandVars replaces ${NAME} with the environment variable NAME and
// ${file:PATH} with the trimmed content of PATH (relative paths are taken
// from dir, the configuration file's folder). "$${" writes a literal "${".
// A "$" not followed by "{" is kept as is, so passwords with "$" survive.
func expandVars(s string, lookup func(string) (string, bool), dir string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		if p, ok := strings.CutPrefix(ref, "file:"); ok {
			if p == "" {
				return "", fmt.Errorf("${file:} needs a path")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			data, err := readSmallFile(p)
			if err != nil {
				return "", fmt.Errorf("cannot read ${file:%s}: %v", p, err)
			}
			b.WriteString(strings.TrimSpace(string(data)))
			continue
		}
		if !envName.MatchString(ref) {
			return "", fmt.Errorf("${%s}: expected ${NAME} (letters, digits, _) or ${file:PATH}", ref)
		}
		val, ok := lookup(ref)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", ref)
		}
		b.WriteString(val)
	}
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// elemPath names a list element in messages: a pipeline by its name when it
// has one (pipeline "east-to-west"), anything else by index (include[2]).
func elemPath(path string, i int, n *yaml.Node) string {
	if path == "pipelines" && n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			if k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" && v.Tag != "!!null" {
				return fmt.Sprintf("pipeline %q", v.Value)
			}
		}
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

// join extends a message path: pipeline "a" + mode gives
// `pipeline "a": mode`, sync + interval gives sync.interval.
func join(path, key string) string {
	switch {
	case path == "":
		return key
	case strings.HasSuffix(path, `"`):
		return path + ": " + key
	}
	return path + "." + key
}

// closest returns the name within edit distance 2 of s (a likely typo), or
// "" when none is that close.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// maxRefFile bounds what ${file:...} reads: it holds a password or a
// certificate, never a large file.
const maxRefFile = 1 << 20

// readSmallFile reads a regular file of at most maxRefFile bytes; a device
// or pipe (which could block or never end) is refused.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRefFile+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxRefFile {
		return nil, fmt.Errorf("larger than %d bytes", maxRefFile)
	}
	return data, nil
}
