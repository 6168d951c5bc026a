package group

import (
	"time"
)

// Offset retention defaults, Kafka's offsets.retention.minutes (7 days)
// and offsets.retention.check.interval.ms (10 minutes).
const (
	defaultOffsetsRetention = 7 * 24 * time.Hour
	defaultRetentionCheck   = 10 * time.Minute
)

// expiryBase tells sweep where an offset's retention starts counting, or
// false when the group's offsets cannot expire in its present state. The
// rules are Kafka's (KIP-211):
//   - a group with a protocol type (it had members) that is Empty: from the
//     moment it became Empty, or from each commit when that moment is
//     unknown (a record from before the field existed);
//   - a Stable consumer group: only offsets of topics no member subscribes
//     to, from each commit;
//   - a group that never had members (simple commits only): from each
//     commit;
//   - a group in a rebalance: never.
func expiryBase(g *group) (base func(offset) int64, skipTopic func(string) bool, ok bool) {
	byCommit := func(o offset) int64 { return o.commitMillis }
	none := func(string) bool { return false }
	switch {
	case g.protocolType == "":
		return byCommit, none, true
	case g.state == stateEmpty:
		if g.emptySince >= 0 {
			since := g.emptySince
			return func(offset) int64 { return since }, none, true
		}
		return byCommit, none, true
	case g.state == stateStable && g.protocolType == "consumer":
		return byCommit, g.subscribed, true
	}
	return nil, nil, false
}

// sweep expires committed offsets whose retention has passed at now and
// removes groups left Empty with no offsets, as Kafka's periodic offset
// cleanup does. Each group's tombstones (offsets first, then the group's
// metadata key when it goes) are one journal append, applied in memory
// only once written: a failed append leaves the group for the next sweep.
func (s *state) sweep(now time.Time) {
	if s.retention < 0 {
		return
	}
	nowMillis, keep := now.UnixMilli(), s.retention.Milliseconds()
	type tp struct {
		topic     string
		partition int32
	}
	for name, g := range s.groups {
		base, skipTopic, ok := expiryBase(g)
		if !ok {
			continue
		}
		var (
			kvs   []KV
			gone  []tp
			total int
		)
		for t, ps := range g.offsets {
			total += len(ps)
			if skipTopic(t) {
				continue
			}
			for p, o := range ps {
				if nowMillis-base(o) >= keep {
					kvs = append(kvs, KV{Key: offsetKey(name, t, p)})
					gone = append(gone, tp{t, p})
				}
			}
		}
		remove := len(gone) == total && g.state == stateEmpty && !g.live()
		if remove {
			kvs = append(kvs, KV{Key: groupKey(name)})
		}
		if len(kvs) == 0 {
			continue
		}
		if err := s.append(kvs); err != nil {
			continue
		}
		for _, d := range gone {
			s.dropOffset(name, d.topic, d.partition)
		}
		if remove {
			delete(s.groups, name)
			delete(s.live, name)
		}
		s.log.Info("group: offsets expired", "group", name, "offsets", len(gone), "group_removed", remove)
	}
}
