package mirror

import (
	"context"
	"regexp"

	"strait/checkpoint"
)

// syncGroupOffsets runs one round of consumer group offset sync for the
// pipeline's sync.groups, translating committed source offsets through the
// live tasks' offset maps and positions (exact; see package checkpoint).
func (p *pipeline) syncGroupOffsets(ctx context.Context) {
	if len(p.cfg.Sync.Groups) == 0 {
		return
	}
	res := make([]*regexp.Regexp, 0, len(p.cfg.Sync.Groups))
	for _, g := range p.cfg.Sync.Groups {
		re, err := regexp.Compile(`^(?:` + g + `)$`)
		if err != nil {
			p.log.Warn("bad sync.groups expression", "expr", g, "err", err)
			continue
		}
		res = append(res, re)
	}
	p.loadFleetCheckpoints(ctx)
	rep, err := checkpoint.SyncGroups(ctx, p.sadm, p.dadm, res, p.translate)
	if err != nil {
		p.log.Warn("group offset sync failed", "err", err)
		p.errs.Add(1)
		return
	}
	for _, g := range rep.Groups {
		if g.Err != nil {
			p.log.Warn("group offset sync failed for a group", "group", g.Group, "err", g.Err)
		} else if len(g.Committed) > 0 {
			p.log.Debug("group offsets synced", "group", g.Group, "committed", len(g.Committed))
		}
	}
}

// translate maps a committed source offset to the destination.
func (p *pipeline) translate(tp checkpoint.TP, offset int64) (string, int64, bool) {
	t := p.task(tp.Topic, tp.Partition)
	if t == nil {
		return p.translateFromCheckpoint(tp, offset)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.haveStart {
		return "", 0, false
	}
	d, ok := t.omap.Translate(offset, t.mu.pos)
	return t.dest, d, ok
}

// Translate maps a committed source offset of a mirrored partition to the
// destination topic and offset where a consumer must resume, from the
// running engine's live state.
func (e *Engine) Translate(pipeline string, tp checkpoint.TP, offset int64) (string, int64, bool) {
	r := e.run(pipeline)
	if r == nil {
		return "", 0, false
	}
	return r.p.translate(tp, offset)
}
