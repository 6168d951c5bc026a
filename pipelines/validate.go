package pipelines

import (
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The session timeouts Kafka brokers accept with their default
// group.min.session.timeout.ms and group.max.session.timeout.ms.
const (
	minBrokerSession = Duration(6 * time.Second)
	maxBrokerSession = Duration(30 * time.Minute)
)

// nameRE is what cluster and pipeline names may hold: they appear in
// rename templates ({source}), checkpoint keys, metrics and group ids.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

const nameRule = `letters, digits, ".", "_" or "-"`

// placeholderRE finds {...} in rename templates.
var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// validate runs the semantic checks on a defaulted configuration.
func (st *state) validate(c *Config) {
	for _, name := range sortedKeys(c.Clusters) {
		st.checkCluster(name, c.Clusters[name])
	}
	st.checkCheckpoints(c)
	seen := map[string]*Pipeline{}
	for _, p := range c.Pipelines {
		if p == nil {
			continue
		}
		st.checkPipeline(c, p)
		if p.Name == "" || st.failed[p] {
			continue
		}
		if prev, ok := seen[p.Name]; ok {
			st.errorf(p.Pos, "pipeline %q is defined twice: here and at %s", p.Name, prev.Pos)
			continue
		}
		seen[p.Name] = p
	}
	st.checkDestinations(c)
	st.checkLoops(c)
	st.checkCheckpointTopic(c)
	st.checkWorkers(c)
}

// groupRE is what a workers group id may hold: Kafka accepts almost any
// string, but the id appears in metrics, logs and kadm commands, so it
// keeps to the characters of a topic name.
var groupRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// maxKafkaTimeout is the longest timeout JoinGroup carries (int32 ms).
const maxKafkaTimeout = Duration(math.MaxInt32 * time.Millisecond)

// checkWorkers checks the workers: section. The heartbeat must come well
// within the session: at or past session_timeout a daemon that is alive
// loses its membership (an error); past a third of it one lost heartbeat
// is enough (a warning, see warnings).
func (st *state) checkWorkers(c *Config) {
	w := c.Workers
	if w == nil || st.failed[w] {
		return
	}
	if !st.failed[&w.Group] && !groupRE.MatchString(w.Group) {
		st.errorf(st.at(&w.Group, w.Pos), "workers.group: %q is not a group id: 1 to 249 of %s", w.Group, nameRule)
	}
	if !st.failed[&w.Cluster] && !st.failed[&c.Clusters] {
		switch {
		case w.Cluster == "" && st.set(&w.Cluster):
			st.errorf(st.at(&w.Cluster, w.Pos), "workers.cluster: expected the name of a cluster")
		case w.Cluster != "" && c.Cluster(w.Cluster) == nil:
			st.errorf(st.at(&w.Cluster, w.Pos), "workers.cluster: cluster %q is not defined (clusters: %s)", w.Cluster, strings.Join(sortedKeys(c.Clusters), ", "))
		}
	}
	ok := true
	for _, d := range []struct {
		field string
		val   *Duration
	}{{"session_timeout", &w.SessionTimeout}, {"rebalance_timeout", &w.RebalanceTimeout}, {"heartbeat_interval", &w.HeartbeatInterval}} {
		if st.failed[d.val] {
			ok = false
			continue
		}
		at := st.at(d.val, w.Pos)
		switch {
		case *d.val <= 0:
			st.errorf(at, "workers.%s: expected a positive duration", d.field)
			ok = false
		case *d.val < Duration(time.Millisecond):
			st.errorf(at, "workers.%s: %s is below a millisecond, the unit Kafka's group protocol counts in", d.field, *d.val)
			ok = false
		case *d.val > maxKafkaTimeout:
			st.errorf(at, "workers.%s: %s is longer than Kafka's group protocol carries (%s)", d.field, *d.val, maxKafkaTimeout)
			ok = false
		}
	}
	if ok && w.HeartbeatInterval >= w.SessionTimeout {
		st.errorf(st.at(&w.HeartbeatInterval, w.Pos), "workers.heartbeat_interval: %s is not shorter than session_timeout (%s): a daemon would lose its membership between two heartbeats; Kafka advises at most a third of the session", w.HeartbeatInterval, w.SessionTimeout)
	}
}

func (st *state) checkCluster(name string, cl *Cluster) {
	if cl == nil {
		return
	}
	path := "clusters." + name
	if !nameRE.MatchString(name) {
		st.errorf(cl.Pos, "clusters: name %q may only hold %s", name, nameRule)
		path = fmt.Sprintf("clusters[%q]", name)
	}
	if st.failed[cl] && len(cl.Bootstrap) == 0 {
		return // rejected while decoding (e.g. null); nothing more to say
	}
	if !st.failed[&cl.Bootstrap] {
		if len(cl.Bootstrap) == 0 && !st.partial[cl] {
			st.errorf(st.at(&cl.Bootstrap, cl.Pos), "%s.bootstrap: expected at least one host:port address", path)
		}
		for i, b := range cl.Bootstrap {
			at := st.elemAt(&cl.Bootstrap, i, st.at(&cl.Bootstrap, cl.Pos))
			if len(seeds([]string{b})) == 0 {
				st.errorf(at, "%s.bootstrap[%d]: expected host:port, got an empty string", path, i)
			}
			for _, s := range seeds([]string{b}) {
				if err := checkAddr(s); err != nil {
					st.errorf(at, "%s.bootstrap[%d]: %v", path, i, err)
				}
			}
		}
	}
	if t := cl.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		st.errorf(st.at(t, cl.Pos), "%s.tls: cert_file and key_file go together: give both or neither", path)
	}
	if s := cl.SASL; s != nil {
		sp := st.at(s, cl.Pos)
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			if !st.failed[&s.Mechanism] {
				st.errorf(st.at(&s.Mechanism, sp), "%s.sasl.mechanism: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", path, s.Mechanism)
			}
		}
		if s.Username == "" && !st.failed[&s.Username] && !st.partial[s] {
			st.errorf(st.at(&s.Username, sp), "%s.sasl.username: expected a user name", path)
		}
		if s.Password == "" && !st.failed[&s.Password] && !st.partial[s] {
			st.errorf(st.at(&s.Password, sp), "%s.sasl.password: expected a password (e.g. \"${KAFKA_PASSWORD}\")", path)
		}
	}
}

// checkAddr checks one host:port bootstrap address.
func checkAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("expected host:port, got %q", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("expected a port from 1 to 65535 in %q", s)
	}
	return nil
}

func (st *state) checkCheckpoints(c *Config) {
	cp := &c.Checkpoints
	var first Position
	if len(c.Files) > 0 {
		first = Position{File: c.Files[0], Line: 1, Column: 1}
	}
	at := st.at(cp, first)
	switch cp.Store {
	case "kafka":
		if st.set(&cp.Dir) {
			st.errorf(st.at(&cp.Dir, at), "checkpoints.dir: only used with store: file")
		}
		if !st.failed[&cp.Topic] {
			if err := CheckTopicName(cp.Topic); err != nil {
				st.errorf(st.at(&cp.Topic, at), "checkpoints.topic: %q is not a valid topic name: %s", cp.Topic, topicErr(err))
			}
		}
	case "file":
		if cp.Dir == "" && !st.failed[&cp.Dir] && !st.partial[cp] {
			st.errorf(at, "checkpoints: store: file needs dir: a folder for the checkpoint files")
		}
		if st.set(&cp.Topic) {
			st.errorf(st.at(&cp.Topic, at), "checkpoints.topic: only used with store: kafka")
		}
	default:
		if !st.failed[&cp.Store] {
			st.errorf(st.at(&cp.Store, at), "checkpoints.store: expected kafka or file, got %q", cp.Store)
		}
	}
	if cp.Interval <= 0 && !st.failed[&cp.Interval] {
		st.errorf(st.at(&cp.Interval, at), "checkpoints.interval: expected a positive duration")
	}
}

func plabel(p *Pipeline) string {
	if p.Name == "" {
		return "pipeline"
	}
	return fmt.Sprintf("pipeline %q", p.Name)
}

func (st *state) checkPipeline(c *Config, p *Pipeline) {
	if st.failed[p] {
		return // not a mapping at all; decoding said so
	}
	pl := plabel(p)
	if !st.failed[&p.Name] {
		switch {
		case p.Name == "" && st.partial[p]:
		case p.Name == "":
			st.errorf(p.Pos, "pipeline: name is required")
		case !nameRE.MatchString(p.Name):
			st.errorf(st.at(&p.Name, p.Pos), "%s: names may only hold %s", pl, nameRule)
		}
	}
	clustersOK := true
	for _, f := range []struct {
		field string
		val   *string
	}{{"source", &p.Source}, {"destination", &p.Destination}} {
		if st.failed[f.val] {
			clustersOK = false
			continue
		}
		if *f.val == "" {
			if !st.partial[p] {
				st.errorf(p.Pos, "%s: %s is required: the name of a cluster", pl, f.field)
			}
			clustersOK = false
			continue
		}
		if c.Cluster(*f.val) == nil {
			if st.failed[&c.Clusters] {
				clustersOK = false
				continue
			}
			st.errorf(st.at(f.val, p.Pos), "%s: %s: cluster %q is not defined (clusters: %s)", pl, f.field, *f.val, strings.Join(sortedKeys(c.Clusters), ", "))
			clustersOK = false
		}
	}
	if clustersOK && p.Source == p.Destination {
		st.errorf(st.at(&p.Destination, p.Pos), "%s: source and destination are both %q; a pipeline copies between two clusters", pl, p.Source)
	} else if clustersOK {
		if addr := sharedAddr(c.Cluster(p.Source), c.Cluster(p.Destination)); addr != "" {
			st.errorf(st.at(&p.Destination, p.Pos), "%s: clusters %q and %q share the bootstrap address %s; a pipeline copies between two clusters", pl, p.Source, p.Destination, addr)
		}
	}

	regexOK := !st.failed[&p.Topics.Include] && !st.failed[&p.Topics.Exclude] && !st.failed[&p.Topics]
	if len(p.Topics.Include) == 0 && !st.failed[&p.Topics.Include] && !st.failed[&p.Topics] && !st.partial[&p.Topics] && !st.partial[p] {
		st.errorf(st.at(&p.Topics, p.Pos), "%s: topics.include: expected at least one topic expression", pl)
		regexOK = false
	}
	// Each expression is compiled once, here; the sets become the
	// pipeline's matchers when all of them compile.
	m := &Matchers{}
	for _, list := range []struct {
		field string
		exprs *[]string
		set   *exprSet
	}{{"include", &p.Topics.Include, &m.include}, {"exclude", &p.Topics.Exclude, &m.exclude}} {
		if n := len(*list.exprs); n > MaxTopicExpressions {
			st.errorf(st.elemAt(list.exprs, MaxTopicExpressions, p.Pos), "%s: topics.%s: %d expressions, the limit is %d; match many topics with one expression (orders\\..*) instead of listing each", pl, list.field, n, MaxTopicExpressions)
			regexOK = false
			continue
		}
		var errs []exprErr
		*list.set, errs = compileSet(*list.exprs)
		for _, e := range errs {
			st.errorf(st.elemAt(list.exprs, e.i, p.Pos), "%s: topics.%s[%d]: invalid regular expression %s: %v", pl, list.field, e.i, quoteExpr((*list.exprs)[e.i]), reErr(e.err))
			regexOK = false
		}
	}
	for i, e := range p.Sync.Groups {
		if _, err := anchor(e); err != nil {
			st.errorf(st.elemAt(&p.Sync.Groups, i, p.Pos), "%s: sync.groups[%d]: invalid regular expression %s: %v", pl, i, quoteExpr(e), reErr(err))
		}
	}
	if regexOK {
		p.Compiled = m
		st.checkLiteralIncludes(p)
	}
	if !st.failed[&p.Rename] {
		st.checkRename(p, regexOK)
	}

	for _, d := range []struct {
		field string
		val   *Duration
	}{{"sync.interval", &p.Sync.Interval}, {"refresh", &p.Refresh}} {
		if *d.val <= 0 && !st.failed[d.val] {
			st.errorf(st.at(d.val, p.Pos), "%s: %s: expected a positive duration", pl, d.field)
		}
	}
	pr := &p.Producer
	switch pr.Acks {
	case "all":
	case "leader", "none":
		if p.Mode == ModeBatch {
			st.errorf(st.at(&pr.Acks, p.Pos), "%s: producer.acks: batch mode needs acks: all (restarts without duplicates rely on the idempotent producer)", pl)
		}
	default:
		if !st.failed[&pr.Acks] {
			st.errorf(st.at(&pr.Acks, p.Pos), "%s: producer.acks: expected all, leader or none, got %q", pl, pr.Acks)
		}
	}
	switch pr.Compression {
	case "none":
	case "gzip", "snappy", "lz4", "zstd":
		if p.Mode == ModeBatch {
			st.errorf(st.at(&pr.Compression, p.Pos), "%s: producer.compression: batch mode forwards batches as the source compressed them; compression needs mode: record", pl)
		}
	default:
		if !st.failed[&pr.Compression] {
			st.errorf(st.at(&pr.Compression, p.Pos), "%s: producer.compression: expected none, gzip, snappy, lz4 or zstd, got %q", pl, pr.Compression)
		}
	}
	if p.Audit.Bucket <= 0 && !st.failed[&p.Audit.Bucket] {
		st.errorf(st.at(&p.Audit.Bucket, p.Pos), "%s: audit.bucket: expected a positive duration", pl)
	}
	if (p.Audit.Sample <= 0 || p.Audit.Sample > 1) && !st.failed[&p.Audit.Sample] {
		st.errorf(st.at(&p.Audit.Sample, p.Pos), "%s: audit.sample: expected a share of the records in (0, 1], got %g", pl, p.Audit.Sample)
	}
	if pr.BatchSize <= 0 && !st.failed[&pr.BatchSize] {
		st.errorf(st.at(&pr.BatchSize, p.Pos), "%s: producer.batch_size: expected a positive size", pl)
	} else if p.Limits.Buffer < pr.BatchSize && !st.failed[&p.Limits.Buffer] {
		st.errorf(st.at(&p.Limits.Buffer, p.Pos), "%s: limits.buffer: %s is smaller than producer.batch_size (%s); the buffer must hold at least one batch", pl, p.Limits.Buffer, pr.BatchSize)
	}
}

// reErr drops the "error parsing regexp: " prefix Go puts on every error.
func reErr(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return se.Code.String()
	}
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// checkRename checks the template itself, then the names it makes from the
// include expressions' sample topics.
func (st *state) checkRename(p *Pipeline, regexOK bool) {
	pl := plabel(p)
	at := st.at(&p.Rename, p.Pos)
	if p.Rename == "" {
		st.errorf(at, "%s: rename: expected a template such as \"{topic}\" or \"east.{topic}\"", pl)
		return
	}
	for _, ph := range placeholderRE.FindAllString(p.Rename, -1) {
		if ph != "{topic}" && ph != "{source}" {
			st.errorf(at, "%s: rename: unknown placeholder %s; expected {topic} or {source}", pl, ph)
			return
		}
	}
	rest := placeholderRE.ReplaceAllString(p.Rename, "")
	for _, r := range rest {
		if !topicRune(r) {
			st.errorf(at, "%s: rename: %q cannot appear in a topic name (letters, digits, '.', '_', '-')", pl, r)
			return
		}
	}
	if !strings.Contains(p.Rename, "{topic}") && regexOK {
		n := 0
		for _, e := range p.Topics.Include {
			if !literal(e) {
				n = 2
				break
			}
			n++
		}
		if n > 1 {
			st.errorf(at, "%s: rename: without {topic} every matching topic would be written to the one topic %q; use {topic}, or include a single literal topic", pl, p.DestTopic(""))
			return
		}
	}
	if !regexOK {
		return
	}
	for _, s := range p.samples() {
		d := p.DestTopic(s)
		if err := CheckTopicName(d); err != nil {
			st.errorf(at, "%s: rename: topic %q would become %q: %s", pl, s, d, topicErr(err))
			return
		}
		if strings.HasPrefix(d, "__") {
			st.errorf(at, "%s: rename: topic %q would become %q, an internal topic name (names starting with \"__\" are reserved)", pl, s, d)
			return
		}
	}
}

// usable reports whether a pipeline passed the checks that cross-pipeline
// checks rely on (known clusters, compiled expressions).
func usable(c *Config, p *Pipeline) bool {
	return p != nil && p.Compiled != nil && c.Cluster(p.Source) != nil && c.Cluster(p.Destination) != nil && p.Source != p.Destination
}

// checkDestinations refuses two pipelines that could write the same topic
// of the same cluster: the mirror must be the only writer of a destination
// partition for its exactly-once restart.
func (st *state) checkDestinations(c *Config) {
	for i, p := range c.Pipelines {
		if !usable(c, p) {
			continue
		}
		for _, q := range c.Pipelines[:i] {
			if !usable(c, q) || q.Destination != p.Destination || q.Name == p.Name {
				continue
			}
			if topic, ok := overlap(p, q); ok {
				st.errorf(st.at(&p.Rename, p.Pos), "pipelines %q and %q both write topic %q on cluster %q (defined at %s); a destination topic has one writer", q.Name, p.Name, topic, p.Destination, q.Pos)
			}
		}
	}
}

// overlap finds a destination topic both pipelines would write.
func overlap(p, q *Pipeline) (string, bool) {
	try := func(a, b *Pipeline) (string, bool) {
		for _, s := range a.samples() {
			d := a.DestTopic(s)
			src, any, ok := b.sourceFor(d)
			if ok && (any || b.Matches(src)) {
				return d, true
			}
		}
		return "", false
	}
	if d, ok := try(p, q); ok {
		return d, true
	}
	return try(q, p)
}

// checkLoops refuses a configuration in which a record can come back to the
// cluster it started on (A→B→A, or a longer cycle), unless every pipeline
// on the way has loop_protection: such a record would be copied again and
// again, under the same name (an echo) or under ever longer names.
func (st *state) checkLoops(c *Config) {
	reported := map[string]bool{}
	for _, p := range c.Pipelines {
		if !usable(c, p) {
			continue
		}
		for _, s := range p.samples() {
			cycle, back := findLoop(c, p, s)
			if cycle == nil {
				continue
			}
			names := make([]string, len(cycle))
			protected := true
			for i, q := range cycle {
				names[i] = q.Name
				protected = protected && q.LoopProtection
			}
			sorted := append([]string(nil), names...)
			sort.Strings(sorted)
			key := strings.Join(sorted, "\x00")
			if protected || reported[key] {
				continue
			}
			reported[key] = true
			st.errorf(p.Pos, "pipelines %s form a loop: topic %q on cluster %q comes back to %q as %q; set loop_protection: true on each of them", quoteList(names), s, p.Source, p.Source, back)
			break
		}
	}
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// findLoop follows topic from start's source through every pipeline that
// would mirror it, and returns the pipelines of the first path that brings
// it back to start's source cluster, and the name it comes back under.
func findLoop(c *Config, start *Pipeline, topic string) ([]*Pipeline, string) {
	type node struct{ cluster, topic string }
	visited := map[node]bool{}
	var walk func(at node, path []*Pipeline) ([]*Pipeline, string)
	walk = func(at node, path []*Pipeline) ([]*Pipeline, string) {
		if at.cluster == start.Source {
			return path, at.topic
		}
		if visited[at] || len(path) > len(c.Pipelines) {
			return nil, ""
		}
		visited[at] = true
		for _, q := range c.Pipelines {
			if !usable(c, q) || q.Source != at.cluster || !q.Matches(at.topic) {
				continue
			}
			if cyc, back := walk(node{q.Destination, q.DestTopic(at.topic)}, append(path, q)); cyc != nil {
				return cyc, back
			}
		}
		return nil, ""
	}
	return walk(node{start.Destination, start.DestTopic(topic)}, []*Pipeline{start})
}

// checkCheckpointTopic keeps pipelines away from the kafka store's topic: a
// pipeline that mirrored it would copy another pipeline's progress, and one
// that wrote into it would corrupt its own. The default name starts with
// "__", which never mirrors; a custom name needs this check.
func (st *state) checkCheckpointTopic(c *Config) {
	cp := &c.Checkpoints
	if cp.Store != "kafka" || CheckTopicName(cp.Topic) != nil || strings.HasPrefix(cp.Topic, "__") {
		return
	}
	for _, p := range c.Pipelines {
		if !usable(c, p) {
			continue
		}
		if p.Matches(cp.Topic) {
			st.errorf(st.at(&p.Topics, p.Pos), "%s: topics match the checkpoint topic %q; add it to topics.exclude", plabel(p), cp.Topic)
			continue
		}
		if src, any, ok := p.sourceFor(cp.Topic); ok && (any || p.Matches(src)) {
			st.errorf(st.at(&p.Rename, p.Pos), "%s: rename would write topic %q into the checkpoint topic %q", plabel(p), src, cp.Topic)
		}
	}
}

// topicErr is CheckTopicName's reason without the sentinel's prefix.
func topicErr(err error) string {
	return strings.TrimPrefix(err.Error(), ErrTopicName.Error()+": ")
}

// sharedAddr returns a bootstrap address two clusters have in common: two
// names for one cluster would make a pipeline copy a cluster into itself.
func sharedAddr(a, b *Cluster) string {
	in := map[string]bool{}
	for _, s := range seeds(a.Bootstrap) {
		in[strings.ToLower(s)] = true
	}
	for _, s := range seeds(b.Bootstrap) {
		if in[strings.ToLower(s)] {
			return s
		}
	}
	return ""
}

// checkLiteralIncludes catches an include naming one topic that can never
// mirror: an internal topic, or one an exclude expression removes.
func (st *state) checkLiteralIncludes(p *Pipeline) {
	for i, e := range p.Topics.Include {
		if !literal(e) {
			continue
		}
		at := st.elemAt(&p.Topics.Include, i, p.Pos)
		name := literalText(e)
		if strings.HasPrefix(name, "__") {
			st.errorf(at, "%s: topics.include[%d]: %q is an internal topic; internal topics never mirror", plabel(p), i, name)
			continue
		}
		if j, ok := p.Compiled.exclude.match(name); ok {
			st.errorf(at, "%s: topics.include[%d]: %q is excluded by topics.exclude[%d] %s", plabel(p), i, name, j, quoteExpr(p.Topics.Exclude[j]))
		}
	}
}

// quoteExpr quotes a regular expression without Go's escaping, so that
// orders\..* prints as the user wrote it in YAML single quotes.
func quoteExpr(e string) string { return "'" + e + "'" }

// warnings lists settings that load but are probably not what the user
// wants. They never fail a load.
func warnings(c *Config, st *state) Errors {
	var ws Errors
	warn := func(p Position, format string, args ...any) {
		ws = append(ws, &Error{Pos: p, Msg: "warning: " + fmt.Sprintf(format, args...)})
	}
	used := map[string]bool{}
	for _, p := range c.Pipelines {
		used[p.Source], used[p.Destination] = true, true
		if _, ok := p.RenamePrefix(); p.Sync.ACLs && !ok {
			warn(st.at(&p.Sync.ACLs, p.Pos), "pipeline %q: sync.acls: rename %q adds more than a prefix, so PREFIXED topic ACLs cannot follow the topics; they are skipped and reported in the pipeline's status", p.Name, p.Rename)
		}
	}
	if w := c.Workers; w != nil {
		used[w.Cluster] = true
		if w.HeartbeatInterval*3 > w.SessionTimeout {
			warn(st.at(&w.HeartbeatInterval, w.Pos), "workers.heartbeat_interval: %s is more than a third of session_timeout (%s); Kafka advises at most a third, so that one late heartbeat does not end a membership", w.HeartbeatInterval, w.SessionTimeout)
		}
		if w.SessionTimeout < minBrokerSession || w.SessionTimeout > maxBrokerSession {
			warn(st.at(&w.SessionTimeout, w.Pos), "workers.session_timeout: %s is outside %s to %s, the range Kafka brokers accept by default (group.min.session.timeout.ms, group.max.session.timeout.ms)", w.SessionTimeout, minBrokerSession, maxBrokerSession)
		}
		if c.Checkpoints.Store == "file" {
			warn(st.at(&c.Checkpoints.Store, w.Pos), "checkpoints.store: file keeps progress on one host; the daemons of workers group %q must share checkpoints.dir, or a partition that moves to another daemon starts over (use store: kafka)", w.Group)
		}
	}
	for _, name := range sortedKeys(c.Clusters) {
		cl := c.Clusters[name]
		if !used[name] {
			warn(cl.Pos, "cluster %q is not used by any pipeline", name)
		}
		if cl.SASL != nil && cl.SASL.Mechanism == "PLAIN" && cl.TLS == nil {
			warn(cl.Pos, "cluster %q: sasl PLAIN without tls sends the password in clear text", name)
		}
		if cl.TLS != nil && cl.TLS.InsecureSkipVerify {
			warn(cl.Pos, "cluster %q: tls insecure_skip_verify accepts any server certificate", name)
		}
	}
	return ws
}

// RenamePrefix reports whether the pipeline's rename only puts a prefix
// before the topic name (so a prefixed ACL pattern can be renamed too),
// and which prefix.
func (p *Pipeline) RenamePrefix() (string, bool) {
	const mark = "\x00"
	r := p.DestTopic(mark)
	if strings.Count(r, mark) != 1 || !strings.HasSuffix(r, mark) {
		return "", false
	}
	return strings.TrimSuffix(r, mark), true
}
