package brokerd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"strait/brokerd/plog"
)

// Topic configuration. brokerd honours the keys in honouredConfigs (they
// reach plog.Config); the keys in storedConfigs are valid Kafka topic
// configs that are accepted, validated loosely, stored and described back
// but have no effect (so a mirror can copy a real Kafka topic's configs);
// any other key is refused with INVALID_CONFIG, as Kafka refuses unknown
// topic configs.

type configKind int

const (
	kindLong configKind = iota
	kindInt
	kindDouble
	kindPolicy
	kindString
	kindBool
)

type configDef struct {
	def  string
	kind configKind
}

var honouredConfigs = map[string]configDef{
	"retention.ms":              {"604800000", kindLong},
	"retention.bytes":           {"-1", kindLong},
	"cleanup.policy":            {"delete", kindPolicy},
	"max.message.bytes":         {"1048588", kindInt},
	"segment.bytes":             {"1073741824", kindInt},
	"segment.ms":                {"604800000", kindLong},
	"delete.retention.ms":       {"86400000", kindLong},
	"flush.messages":            {"9223372036854775807", kindLong},
	"min.cleanable.dirty.ratio": {"0.5", kindDouble},
	"index.interval.bytes":      {"4096", kindInt},
}

var storedConfigs = map[string]configDef{
	"compression.type":     {"producer", kindString},
	"file.delete.delay.ms": {"60000", kindLong},
	"flush.ms":             {"9223372036854775807", kindLong},
	"follower.replication.throttled.replicas": {"", kindString},
	"leader.replication.throttled.replicas":   {"", kindString},
	"local.retention.bytes":                   {"-2", kindLong},
	"local.retention.ms":                      {"-2", kindLong},
	"max.compaction.lag.ms":                   {"9223372036854775807", kindLong},
	"message.downconversion.enable":           {"true", kindBool},
	"message.format.version":                  {"3.0-IV1", kindString},
	"message.timestamp.after.max.ms":          {"9223372036854775807", kindLong},
	"message.timestamp.before.max.ms":         {"9223372036854775807", kindLong},
	"message.timestamp.difference.max.ms":     {"9223372036854775807", kindLong},
	"message.timestamp.type":                  {"CreateTime", kindString},
	"min.compaction.lag.ms":                   {"0", kindLong},
	"min.insync.replicas":                     {"1", kindInt},
	"preallocate":                             {"false", kindBool},
	"remote.storage.enable":                   {"false", kindBool},
	"segment.index.bytes":                     {"10485760", kindInt},
	"segment.jitter.ms":                       {"0", kindLong},
	"unclean.leader.election.enable":          {"false", kindBool},
	"compression.gzip.level":                  {"-1", kindInt},
	"compression.lz4.level":                   {"9", kindInt},
	"compression.zstd.level":                  {"3", kindInt},
}

// topicConfigNames lists every topic config brokerd knows, sorted, for
// DescribeConfigs.
var topicConfigNames = func() []string {
	var names []string
	for k := range honouredConfigs {
		names = append(names, k)
	}
	for k := range storedConfigs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

func lookupConfig(name string) (configDef, bool) {
	if d, ok := honouredConfigs[name]; ok {
		return d, true
	}
	d, ok := storedConfigs[name]
	return d, ok
}

// validateConfig checks one topic config; the error text goes back to the
// client as the error message.
func validateConfig(name string, value *string) error {
	d, ok := lookupConfig(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	if value == nil {
		return fmt.Errorf("config %q: null value", name)
	}
	v := *value
	switch d.kind {
	case kindLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("config %q: %q is not a long", name, v)
		}
	case kindInt:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fmt.Errorf("config %q: %q is not an int", name, v)
		}
	case kindDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("config %q: %q is not a ratio in [0,1]", name, v)
		}
	case kindBool:
		if v != "true" && v != "false" {
			return fmt.Errorf("config %q: %q is not a boolean", name, v)
		}
	case kindPolicy:
		if _, _, err := parsePolicy(v); err != nil {
			return fmt.Errorf("config %q: %v", name, err)
		}
	}
	switch name {
	case "segment.bytes":
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < 14 {
			return fmt.Errorf("config %q: must be at least 14", name)
		}
	case "max.message.bytes", "index.interval.bytes", "segment.ms", "min.insync.replicas":
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < 0 {
			return fmt.Errorf("config %q: must not be negative", name)
		}
	}
	return nil
}

func parsePolicy(v string) (compact, del bool, err error) {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			del = true
		default:
			return false, false, fmt.Errorf("%q is not delete, compact or both", v)
		}
	}
	return compact, del, nil
}

// logConfig converts stored topic configs (already validated) into what
// the partition log honours; absent keys stay zero so plog applies its
// own defaults.
func logConfig(cfgs map[string]string) plog.Config {
	var c plog.Config
	geti := func(k string) int64 {
		n, _ := strconv.ParseInt(cfgs[k], 10, 64)
		return n
	}
	if _, ok := cfgs["segment.bytes"]; ok {
		c.SegmentBytes = geti("segment.bytes")
	}
	if _, ok := cfgs["segment.ms"]; ok {
		c.SegmentMs = geti("segment.ms")
	}
	if _, ok := cfgs["retention.ms"]; ok {
		c.RetentionMs = geti("retention.ms")
	}
	if _, ok := cfgs["retention.bytes"]; ok {
		c.RetentionBytes = geti("retention.bytes")
	} else {
		c.RetentionBytes = -1
	}
	if _, ok := cfgs["max.message.bytes"]; ok {
		c.MaxMessageBytes = int32(geti("max.message.bytes"))
	}
	if _, ok := cfgs["index.interval.bytes"]; ok {
		c.IndexIntervalBytes = int32(geti("index.interval.bytes"))
	}
	if _, ok := cfgs["flush.messages"]; ok {
		c.FlushMessages = geti("flush.messages")
	}
	if _, ok := cfgs["delete.retention.ms"]; ok {
		c.DeleteRetentionMs = geti("delete.retention.ms")
	}
	if v, ok := cfgs["min.cleanable.dirty.ratio"]; ok {
		c.MinCleanableRatio, _ = strconv.ParseFloat(v, 64)
	}
	c.Delete = true
	if v, ok := cfgs["cleanup.policy"]; ok {
		c.Compact, c.Delete, _ = parsePolicy(v)
	}
	return c
}
