package pipelines

import (
	"path/filepath"
	"strings"
	"time"
)

// Defaults, in the one place they are applied. `strait validate --print`
// shows a configuration with all of them filled in.
const (
	DefaultClientID             = "strait"
	DefaultCheckpointStore      = "kafka"
	DefaultCheckpointTopic      = "__strait_checkpoints"
	DefaultCheckpointEvery      = Duration(time.Second)
	DefaultRename               = "{topic}"
	DefaultMode                 = ModeBatch
	DefaultSyncInterval         = Duration(5 * time.Second)
	DefaultRefresh              = Duration(10 * time.Second)
	DefaultAcks                 = "all"
	DefaultCompression          = "none"
	DefaultBatchSize       Size = 1 << 20
	DefaultBuffer          Size = 64 << 20
	DefaultAuditBucket          = Duration(time.Minute)
	DefaultAuditSample          = 0.01
	// Workers (fleet) defaults follow Kafka Connect's: a daemon that has
	// not heartbeated for 10s leaves the group, a rebalance waits up to
	// 60s for every member to rejoin, and heartbeats go every 3s (a third
	// of the session, Kafka's advice). The group id defaults to
	// DefaultGroup(c), the cluster to the first pipeline's destination.
	DefaultSessionTimeout    = Duration(10 * time.Second)
	DefaultRebalanceTimeout  = Duration(60 * time.Second)
	DefaultHeartbeatInterval = Duration(3 * time.Second)
	// InternalTopics is always excluded: Kafka's own topics (consumer
	// offsets, transaction state) and strait's checkpoints never mirror.
	InternalTopics = "__.*"
)

// applyDefaults fills every unset field. set reports whether a field was
// written in a file (a written zero is kept, so validation can refuse it
// instead of silently replacing it).
func applyDefaults(c *Config, set func(any) bool) {
	for _, cl := range c.Clusters {
		if cl == nil {
			continue
		}
		if !set(&cl.ClientID) {
			cl.ClientID = DefaultClientID
		}
		if cl.SASL != nil {
			cl.SASL.Mechanism = strings.ToUpper(cl.SASL.Mechanism)
		}
	}
	cp := &c.Checkpoints
	if !set(&cp.Store) {
		cp.Store = DefaultCheckpointStore
	}
	if cp.Store == "kafka" && !set(&cp.Topic) {
		cp.Topic = DefaultCheckpointTopic
	}
	if !set(&cp.Interval) {
		cp.Interval = DefaultCheckpointEvery
	}
	if w := c.Workers; w != nil {
		if !set(&w.Group) {
			w.Group = DefaultGroup(c)
		}
		if !set(&w.Cluster) {
			for _, p := range c.Pipelines {
				if p != nil {
					w.Cluster = p.Destination
					break
				}
			}
		}
		if !set(&w.SessionTimeout) {
			w.SessionTimeout = DefaultSessionTimeout
		}
		if !set(&w.RebalanceTimeout) {
			w.RebalanceTimeout = DefaultRebalanceTimeout
		}
		if !set(&w.HeartbeatInterval) {
			w.HeartbeatInterval = DefaultHeartbeatInterval
		}
	}
	for _, p := range c.Pipelines {
		if p == nil {
			continue
		}
		if !set(&p.Rename) {
			p.Rename = DefaultRename
		}
		if !set(&p.Mode) {
			p.Mode = DefaultMode
		}
		if !hasString(p.Topics.Exclude, InternalTopics) {
			// Appending to a copy keeps the positions of the written
			// entries (keyed by the slice field) valid.
			p.Topics.Exclude = append(append([]string(nil), p.Topics.Exclude...), InternalTopics)
		}
		if !set(&p.Sync.TopicConfigs) {
			p.Sync.TopicConfigs = true
		}
		if !set(&p.Sync.Partitions) {
			p.Sync.Partitions = true
		}
		if p.Sync.Groups == nil {
			p.Sync.Groups = []string{}
		}
		if !set(&p.Sync.Interval) {
			p.Sync.Interval = DefaultSyncInterval
		}
		if !set(&p.Refresh) {
			p.Refresh = DefaultRefresh
		}
		if !set(&p.Producer.Acks) {
			p.Producer.Acks = DefaultAcks
		}
		if !set(&p.Producer.Compression) {
			p.Producer.Compression = DefaultCompression
		}
		if !set(&p.Producer.BatchSize) {
			p.Producer.BatchSize = DefaultBatchSize
		}
		if !set(&p.Limits.Buffer) {
			p.Limits.Buffer = DefaultBuffer
		}
		if !set(&p.Audit.Bucket) {
			p.Audit.Bucket = DefaultAuditBucket
		}
		if !set(&p.Audit.Sample) {
			p.Audit.Sample = DefaultAuditSample
		}
	}
}

func hasString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// finish puts a valid configuration in the form its users read: one
// address per bootstrap entry (an entry may hold a comma-separated list, so
// one ${VAR} can carry all seeds) and relative paths made relative to the
// file that holds them, so a configuration folder can be moved as a whole.
// It runs after validation, which reports problems where they were written.
func finish(c *Config, st *state) {
	for _, cl := range c.Clusters {
		if cl == nil {
			continue
		}
		cl.Bootstrap = seeds(cl.Bootstrap)
		if cl.TLS == nil {
			continue
		}
		dir := filepath.Dir(cl.Pos.File)
		for _, f := range []*string{&cl.TLS.CAFile, &cl.TLS.CertFile, &cl.TLS.KeyFile} {
			if *f != "" && !filepath.IsAbs(*f) {
				*f = filepath.Join(dir, *f)
			}
		}
	}
	if cp := &c.Checkpoints; cp.Dir != "" && !filepath.IsAbs(cp.Dir) {
		if p, ok := st.pos[&cp.Dir]; ok {
			cp.Dir = filepath.Join(filepath.Dir(p.File), cp.Dir)
		}
	}
}

func seeds(entries []string) []string {
	var out []string
	for _, b := range entries {
		for _, s := range strings.Split(b, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
