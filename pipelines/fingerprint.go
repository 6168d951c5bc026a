package pipelines

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// DefaultGroup is the workers group id a configuration gets when its
// workers: section names none: "strait-" and the first 12 hex digits of
// a SHA-256 over the sorted pipeline names, each with its source and
// destination cluster names. Daemons started with the same pipelines find
// each other without a setting; adding, removing or renaming a pipeline,
// or pointing one at another cluster, makes a new group. Everything else
// (topics, modes, bootstrap addresses) may change without changing the
// group: the daemons then meet in the group and the fingerprint check
// keeps a daemon with another configuration from taking work. A group id
// written in the file never changes; production setups should write one.
func DefaultGroup(c *Config) string {
	var lines []string
	for _, p := range c.Pipelines {
		if p == nil {
			continue
		}
		lines = append(lines, p.Name+"\x00"+p.Source+"\x00"+p.Destination)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return "strait-" + hex.EncodeToString(sum[:6])
}

// Fingerprint is a stable hash (64 hex digits of SHA-256) of what the
// daemons of a workers group must agree on before they share work: every
// pipeline's settings (sorted by name; expression lists sorted), the
// identity of every cluster a pipeline or the group uses (its name and
// its sorted, lower-cased bootstrap addresses), the checkpoint store and
// topic, and the group id and cluster. It leaves out what may differ from
// host to host or does not change what is written where: client ids, TLS
// files, SASL settings (and so every secret), checkpoints.dir and
// interval, the order of pipelines and of files, and the workers'
// timeouts. Call it on a loaded (defaulted, validated) configuration;
// two daemons whose fingerprints differ must not share partitions.
func (c *Config) Fingerprint() string {
	type cluster struct {
		Name      string   `json:"name"`
		Bootstrap []string `json:"bootstrap"`
	}
	type pipeline struct {
		Name           string   `json:"name"`
		Source         string   `json:"source"`
		Destination    string   `json:"destination"`
		Include        []string `json:"include"`
		Exclude        []string `json:"exclude"`
		Rename         string   `json:"rename"`
		Mode           Mode     `json:"mode"`
		Start          string   `json:"start"`
		TopicConfigs   bool     `json:"topic_configs"`
		Partitions     bool     `json:"partitions"`
		Groups         []string `json:"groups"`
		SyncInterval   Duration `json:"sync_interval"`
		SyncACLs       bool     `json:"sync_acls,omitempty"`
		Acks           string   `json:"acks"`
		Compression    string   `json:"compression"`
		Linger         Duration `json:"linger"`
		BatchSize      Size     `json:"batch_size"`
		BytesPerSecond Size     `json:"bytes_per_second"`
		Buffer         Size     `json:"buffer"`
		Refresh        Duration `json:"refresh"`
		Paused         bool     `json:"paused"`
		LoopProtection bool     `json:"loop_protection"`
	}
	var canon struct {
		Version         int        `json:"version"`
		Clusters        []cluster  `json:"clusters"`
		Pipelines       []pipeline `json:"pipelines"`
		CheckpointStore string     `json:"checkpoint_store"`
		CheckpointTopic string     `json:"checkpoint_topic"`
		Group           string     `json:"group"`
		GroupCluster    string     `json:"group_cluster"`
	}
	canon.Version = 1
	used := map[string]bool{}
	for _, p := range c.Pipelines {
		if p == nil {
			continue
		}
		used[p.Source], used[p.Destination] = true, true
		canon.Pipelines = append(canon.Pipelines, pipeline{
			Name: p.Name, Source: p.Source, Destination: p.Destination,
			Include: sortedCopy(p.Topics.Include), Exclude: sortedCopy(p.Topics.Exclude),
			Rename: p.Rename, Mode: p.Mode, Start: startKey(p.Start),
			TopicConfigs: p.Sync.TopicConfigs, Partitions: p.Sync.Partitions,
			Groups: sortedCopy(p.Sync.Groups), SyncInterval: p.Sync.Interval, SyncACLs: p.Sync.ACLs,
			Acks: p.Producer.Acks, Compression: p.Producer.Compression,
			Linger: p.Producer.Linger, BatchSize: p.Producer.BatchSize,
			BytesPerSecond: p.Limits.BytesPerSecond, Buffer: p.Limits.Buffer,
			Refresh: p.Refresh, Paused: p.Paused, LoopProtection: p.LoopProtection,
		})
	}
	slices.SortFunc(canon.Pipelines, func(a, b pipeline) int { return strings.Compare(a.Name, b.Name) })
	if w := c.Workers; w != nil {
		canon.Group, canon.GroupCluster = w.Group, w.Cluster
		used[w.Cluster] = true
	}
	for _, name := range sortedKeys(c.Clusters) {
		cl := c.Clusters[name]
		if cl == nil || !used[name] {
			continue
		}
		var addrs []string
		for _, a := range seeds(cl.Bootstrap) {
			addrs = append(addrs, strings.ToLower(a))
		}
		slices.Sort(addrs)
		canon.Clusters = append(canon.Clusters, cluster{Name: name, Bootstrap: slices.Compact(addrs)})
	}
	canon.CheckpointStore = c.Checkpoints.Store
	if c.Checkpoints.Store == "kafka" {
		canon.CheckpointTopic = c.Checkpoints.Topic
	}
	// Marshalling plain structs, slices and strings cannot fail, and
	// encoding/json writes struct fields in declaration order.
	data, _ := json.Marshal(&canon)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// startKey writes a start time in UTC: the same instant written with
// another zone offset is the same setting.
func startKey(s Start) string {
	if s.Kind == StartTime {
		s.Time = s.Time.UTC()
	}
	return s.String()
}

// sortedCopy returns s sorted without duplicates (never nil, so an empty
// list and an unset one hash alike).
func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return slices.Compact(out)
}
