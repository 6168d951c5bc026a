package pipelines

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads a YAML file or a folder of them (every *.yaml and *.yml file
// directly in it, merged), applies defaults and validates. ${NAME} reads
// the process environment. On failure the error is an Errors list holding
// every problem found, each printed as file:line:col: message.
func Load(path string) (*Config, error) {
	return LoadEnv(path, os.LookupEnv)
}

// LoadEnv is Load with another source of ${NAME} values.
func LoadEnv(path string, lookup func(string) (string, bool)) (*Config, error) {
	files, err := configFiles(path)
	if err != nil {
		return nil, err
	}
	var srcs []source
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, Errors{{Pos: Position{File: f}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), sentinel: ErrRead}}
		}
		srcs = append(srcs, source{f, data})
	}
	return load(srcs, lookup)
}

// Parse loads a configuration from memory; name stands for the file in
// positions and is the base for relative paths.
func Parse(name string, data []byte) (*Config, error) {
	return load([]source{{name, data}}, os.LookupEnv)
}

type source struct {
	name string
	data []byte
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// configFiles lists the files a path stands for: the file itself, or the
// YAML files of a folder in name order (hidden files skipped).
func configFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, Errors{{Pos: Position{File: path}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), sentinel: ErrRead}}
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, Errors{{Pos: Position{File: path}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), sentinel: ErrRead}}
	}
	var files []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if ext := filepath.Ext(n); ext == ".yaml" || ext == ".yml" {
			files = append(files, filepath.Join(path, n))
		}
	}
	if len(files) == 0 {
		return nil, Errors{{Pos: Position{File: path}, Msg: "no .yaml or .yml files in this folder", sentinel: ErrRead}}
	}
	sort.Strings(files)
	return files, nil
}

// load decodes every file, merges them, applies defaults and validates.
func load(srcs []source, lookup func(string) (string, bool)) (*Config, error) {
	st := &state{
		pos:     map[any]Position{},
		elem:    map[elemKey]Position{},
		failed:  map[any]bool{},
		partial: map[any]bool{},
	}
	cfg := &Config{Clusters: map[string]*Cluster{}}
	var checkpointsAt *Position
	for _, src := range srcs {
		d := newDecoder(src.name, lookup)
		var part Config
		d.parseFile(src.data, &part)
		st.errs = append(st.errs, d.errs...)
		for k, v := range d.pos {
			st.pos[k] = v
		}
		for k, v := range d.elem {
			st.elem[k] = v
		}
		for k := range d.failed {
			st.failed[k] = true
		}
		for k := range d.partial {
			st.partial[k] = true
		}
		cfg.Files = append(cfg.Files, src.name)
		st.merge(cfg, &part, &checkpointsAt)
	}
	if len(cfg.Pipelines) == 0 && len(srcs) > 0 && len(st.errs) == 0 {
		st.errs = append(st.errs, &Error{Pos: Position{File: srcs[0].name, Line: 1, Column: 1}, Msg: "no pipelines defined; expected a pipelines: list"})
	}
	applyDefaults(cfg, st.set)
	st.validate(cfg)
	if len(st.errs) > 0 {
		return nil, sortErrors(st.errs)
	}
	cfg.Warnings = sortErrors(warnings(cfg, st))
	finish(cfg, st)
	return cfg, nil
}

// state is what validation knows about the decoded files: where each value
// was written and which values were rejected while decoding.
type state struct {
	errs    Errors
	pos     map[any]Position
	elem    map[elemKey]Position
	failed  map[any]bool
	partial map[any]bool
}

// set reports whether the field ptr points to was written in a file.
func (st *state) set(ptr any) bool {
	if st == nil {
		return false
	}
	_, ok := st.pos[ptr]
	return ok
}

// at is the position of a field's value, or of fallback when the field was
// not written (a missing field is reported where its parent is).
func (st *state) at(ptr any, fallback Position) Position {
	if p, ok := st.pos[ptr]; ok {
		return p
	}
	return fallback
}

func (st *state) elemAt(slice any, i int, fallback Position) Position {
	if p, ok := st.elem[elemKey{slice, i}]; ok {
		return p
	}
	return fallback
}

func (st *state) errorf(p Position, format string, args ...any) {
	st.errs = append(st.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// merge adds one file's part to cfg. A cluster or pipeline name defined
// twice, or checkpoints set in two files, is an error naming both places.
func (st *state) merge(cfg, part *Config, checkpointsAt **Position) {
	if st.failed[&part.Clusters] {
		st.failed[&cfg.Clusters] = true
	}
	for _, name := range sortedKeys(part.Clusters) {
		c := part.Clusters[name]
		c.Name = name
		c.Pos = st.pos[c]
		if prev, ok := cfg.Clusters[name]; ok {
			st.errorf(c.Pos, "cluster %q is defined twice: here and at %s", name, prev.Pos)
			continue
		}
		cfg.Clusters[name] = c
	}
	if p, ok := st.pos[&part.Checkpoints]; ok {
		if *checkpointsAt != nil {
			st.errorf(p, "checkpoints are defined twice: here and at %s", **checkpointsAt)
		} else {
			*checkpointsAt = &p
			cfg.Checkpoints = part.Checkpoints
			// Positions are keyed by field address: move them to the
			// merged copy so validation still finds them.
			st.rekey(&part.Checkpoints, &cfg.Checkpoints)
		}
	}
	if w := part.Workers; w != nil {
		w.Pos = st.at(w, st.pos[&part.Workers])
		if cfg.Workers != nil {
			st.errorf(w.Pos, "workers are defined twice: here and at %s", cfg.Workers.Pos)
		} else {
			// A pointer: the positions of its fields stay valid.
			cfg.Workers = w
		}
	}
	for i, p := range part.Pipelines {
		if p == nil {
			continue
		}
		p.Pos = st.elemAt(&part.Pipelines, i, Position{})
		cfg.Pipelines = append(cfg.Pipelines, p)
	}
}

// rekey moves recorded positions from the fields of one Checkpoints value
// to another's.
func (st *state) rekey(from, to *Checkpoints) {
	pairs := [][2]any{
		{from, to}, {&from.Store, &to.Store}, {&from.Dir, &to.Dir},
		{&from.Topic, &to.Topic}, {&from.Interval, &to.Interval},
	}
	for _, pr := range pairs {
		if p, ok := st.pos[pr[0]]; ok {
			st.pos[pr[1]] = p
		}
		if st.failed[pr[0]] {
			st.failed[pr[1]] = true
		}
		if st.partial[pr[0]] {
			st.partial[pr[1]] = true
		}
	}
}

// Cluster returns the named cluster or nil.
func (c *Config) Cluster(name string) *Cluster {
	if c == nil {
		return nil
	}
	return c.Clusters[name]
}

// Pipeline returns the named pipeline or nil.
func (c *Config) Pipeline(name string) *Pipeline {
	if c == nil {
		return nil
	}
	for _, p := range c.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Normalize applies defaults to a configuration built in code and
// validates it, as Load does for files. Fields left at their zero value
// count as unset.
func (c *Config) Normalize() error {
	if c.Clusters == nil {
		c.Clusters = map[string]*Cluster{}
	}
	for name, cl := range c.Clusters {
		if cl != nil && cl.Name == "" {
			cl.Name = name
		}
	}
	st := &state{pos: map[any]Position{}, elem: map[elemKey]Position{}, failed: map[any]bool{}, partial: map[any]bool{}}
	// Nothing was written in a file: a field counts as set when it holds
	// a value other than its zero value.
	applyDefaults(c, func(ptr any) bool { return !reflect.ValueOf(ptr).Elem().IsZero() })
	st.validate(c)
	if len(st.errs) > 0 {
		return sortErrors(st.errs)
	}
	c.Warnings = sortErrors(warnings(c, st))
	finish(c, st)
	return nil
}

// anchor wraps an expression so it must match a whole name: "orders" does
// not match "orders-old".
func anchor(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// Compile compiles the pipeline's include and exclude expressions into
// Compiled. Load does it; code that builds a Pipeline may call it so that
// Matches need not compile on every call.
func (p *Pipeline) Compile() error {
	m, err := p.compile()
	if err != nil {
		return err
	}
	p.Compiled = m
	return nil
}

func (p *Pipeline) compile() (*Matchers, error) {
	m := &Matchers{}
	var errs []exprErr
	if m.include, errs = compileSet(p.Topics.Include); len(errs) > 0 {
		return nil, fmt.Errorf("%w: include %q: %v", ErrInvalid, p.Topics.Include[errs[0].i], errs[0].err)
	}
	if m.exclude, errs = compileSet(p.Topics.Exclude); len(errs) > 0 {
		return nil, fmt.Errorf("%w: exclude %q: %v", ErrInvalid, p.Topics.Exclude[errs[0].i], errs[0].err)
	}
	return m, nil
}

// Matches reports whether the pipeline mirrors the source topic: an include
// expression matches the whole name and no exclude does. Internal topics
// (names starting with "__") never match.
func (p *Pipeline) Matches(topic string) bool {
	if topic == "" || strings.HasPrefix(topic, "__") {
		return false
	}
	m := p.Compiled
	if m == nil {
		var err error
		if m, err = p.compile(); err != nil {
			return false
		}
	}
	if _, in := m.include.match(topic); !in {
		return false
	}
	_, out := m.exclude.match(topic)
	return !out
}

// DestTopic is the destination name of a source topic: the rename template
// with {topic} replaced by the source topic and {source} by the source
// cluster's name. An empty template means "{topic}".
func (p *Pipeline) DestTopic(source string) string {
	if p.Rename == "" {
		return source
	}
	// Neither a topic nor a cluster name holds a brace, so replacing one
	// placeholder cannot create the other: two plain replacements do what
	// a single-pass Replacer would, without building one per call.
	return strings.ReplaceAll(strings.ReplaceAll(p.Rename, "{source}", p.Source), "{topic}", source)
}

// SyncsGroup reports whether the pipeline keeps the consumer group's
// offsets in step (a sync.groups expression matches the whole name).
func (p *Pipeline) SyncsGroup(group string) bool {
	for _, e := range p.Sync.Groups {
		re, err := anchor(e)
		if err == nil && re.MatchString(group) {
			return true
		}
	}
	return false
}

// WriteYAML writes the configuration as YAML, defaults included and
// secrets masked: what `strait validate --print` shows.
// Relative paths print as resolved (relative to the working folder); a
// literal "${" prints as "$${" so the output loads back unchanged.
func (c *Config) WriteYAML(w io.Writer) error {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return err
	}
	escapeRefs(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	return enc.Close()
}

func escapeRefs(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = strings.ReplaceAll(n.Value, "${", "$${")
	}
	for _, c := range n.Content {
		escapeRefs(c)
	}
}
