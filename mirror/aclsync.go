package mirror

// ACL sync (sync.acls): the destination gets the source's ACLs for the
// mirrored topics and synced groups, as MirrorMaker 2 copies topic ACLs.
//
// At every sync interval the source's topic and group bindings are read
// and translated:
//
//   - a LITERAL topic binding of a mirrored topic is renamed with the
//     topic (rename template); a PREFIXED one is copied when some mirrored
//     topic has the prefix and the rename is a plain prefix ("east.{topic}"
//     turns prefix "ord" into "east.ord"); other renames cannot carry a
//     prefix and the binding is reported as skipped, as is the literal
//     wildcard "*" (it would cover every destination topic);
//   - a LITERAL group binding is copied when sync.groups names the group
//     (groups keep their names); prefixed group bindings are reported;
//   - access is never widened (MM2's documented rule): ALLOW WRITE is
//     never copied, only the mirror writes mirrored topics; ALLOW ALL is
//     copied as ALLOW READ, and reported, never narrowed silently; DENY
//     bindings are copied as they are.
//
// The sync is incremental: when the translated set is the one the last
// sync applied, nothing is sent; otherwise the destination's bindings are
// read once, the missing ones created, and the ones an earlier sync
// created that no longer follow from the source deleted. Bindings created
// by anyone else on the destination are never deleted.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclKey is one binding, comparable.
type aclKey struct {
	ResourceType kmsg.ACLResourceType
	Name         string
	Pattern      kmsg.ACLResourcePatternType
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

func (k aclKey) String() string {
	return fmt.Sprintf("%s %s:%s %s %s %s@%s", k.Permission, k.ResourceType, k.Pattern, k.Name, k.Operation, k.Principal, k.Host)
}

// ACLSyncStatus reports a pipeline's ACL sync.
type ACLSyncStatus struct {
	Copied    int      `json:"copied"`               // bindings the last sync left on the destination
	Narrowed  []string `json:"narrowed,omitempty"`   // ALLOW ALL copied as ALLOW READ
	Skipped   []string `json:"skipped,omitempty"`    // source bindings not copied, with the reason
	LastError string   `json:"last_error,omitempty"` // the last sync's failure, if it failed
}

// aclSync is a pipeline's ACL sync state; the sync runs on the pipeline's
// loop, status reads it from elsewhere.
type aclSync struct {
	mu struct {
		sync.Mutex
		applied map[aclKey]bool // what the last successful sync made true
		created map[aclKey]bool // bindings this pipeline created on the destination
		status  ACLSyncStatus
	}
}

func (s *aclSync) snapshot() *ACLSyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mu.status
	st.Narrowed = append([]string(nil), st.Narrowed...)
	st.Skipped = append([]string(nil), st.Skipped...)
	return &st
}

// translateACLs turns the source's bindings into the destination's, and
// says what it skipped or narrowed. mirrored lists the source topics being
// mirrored now.
func (p *pipeline) translateACLs(src []aclKey, mirrored []string) (want map[aclKey]bool, narrowed, skipped []string) {
	want = map[aclKey]bool{}
	prefix, prefixOK := p.cfg.RenamePrefix()
	for _, b := range src {
		out := b
		switch b.ResourceType {
		case kmsg.ACLResourceTypeTopic:
			switch {
			case b.Pattern == kmsg.ACLResourcePatternTypeLiteral && b.Name == "*":
				skipped = append(skipped, b.String()+": a wildcard would cover every destination topic")
				continue
			case b.Pattern == kmsg.ACLResourcePatternTypeLiteral:
				if !p.cfg.Matches(b.Name) {
					continue // not mirrored
				}
				out.Name = p.cfg.DestTopic(b.Name)
			case b.Pattern == kmsg.ACLResourcePatternTypePrefixed:
				if !anyHasPrefix(mirrored, b.Name) {
					continue
				}
				if !prefixOK {
					skipped = append(skipped, b.String()+": rename "+p.cfg.Rename+" cannot carry a prefix")
					continue
				}
				out.Name = prefix + b.Name
			default:
				continue
			}
		case kmsg.ACLResourceTypeGroup:
			if b.Pattern != kmsg.ACLResourcePatternTypeLiteral {
				if len(p.cfg.Sync.Groups) > 0 {
					skipped = append(skipped, b.String()+": only literal group bindings are copied")
				}
				continue
			}
			if !p.cfg.SyncsGroup(b.Name) {
				continue
			}
		default:
			continue
		}
		if b.Permission == kmsg.ACLPermissionTypeAllow {
			switch b.Operation {
			case kmsg.ACLOperationWrite:
				skipped = append(skipped, b.String()+": ALLOW WRITE is never copied, only the mirror writes mirrored topics")
				continue
			case kmsg.ACLOperationAll:
				out.Operation = kmsg.ACLOperationRead
				narrowed = append(narrowed, b.String()+": copied as ALLOW READ")
			}
		}
		want[out] = true
	}
	sort.Strings(narrowed)
	sort.Strings(skipped)
	return want, narrowed, skipped
}

func anyHasPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// describeAllACLs lists every topic and group binding of a cluster.
func describeAllACLs(ctx context.Context, r kmsg.Requestor) ([]aclKey, error) {
	var out []aclKey
	for _, rt := range []kmsg.ACLResourceType{kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup} {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType = rt
		req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
		req.Operation = kmsg.ACLOperationAny
		req.PermissionType = kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, err
		}
		for _, res := range resp.Resources {
			for _, a := range res.ACLs {
				out = append(out, aclKey{res.ResourceType, res.ResourceName, res.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType})
			}
		}
	}
	return out, nil
}

// syncACLs runs one ACL sync (see the top of this file).
func (p *pipeline) syncACLs(ctx context.Context) {
	if !p.cfg.Sync.ACLs || ctx.Err() != nil {
		return
	}
	s := &p.acls
	fail := func(what string, err error) {
		s.mu.Lock()
		s.mu.status.LastError = what + ": " + err.Error()
		s.mu.Unlock()
		p.log.Warn("acl sync", "step", what, "err", err)
	}
	src, err := describeAllACLs(ctx, p.src)
	if err != nil {
		fail("describe source acls", err)
		return
	}
	var mirrored []string
	p.mu.Lock()
	for tp := range p.mu.tasks {
		mirrored = append(mirrored, tp.Topic)
	}
	p.mu.Unlock()
	want, narrowed, skipped := p.translateACLs(src, mirrored)

	s.mu.Lock()
	for _, line := range skipped {
		if !contains(s.mu.status.Skipped, line) {
			p.log.Warn("acl sync skipped a binding", "binding", line)
		}
	}
	s.mu.status.Narrowed, s.mu.status.Skipped = narrowed, skipped
	same := s.mu.applied != nil && equalSets(s.mu.applied, want)
	created := map[aclKey]bool{}
	for k := range s.mu.created {
		created[k] = true
	}
	s.mu.Unlock()
	if same {
		return // incremental: nothing changed since the last sync
	}

	dst, err := describeAllACLs(ctx, p.dst)
	if err != nil {
		fail("describe destination acls", err)
		return
	}
	have := map[aclKey]bool{}
	for _, b := range dst {
		have[b] = true
	}
	create := kmsg.NewPtrCreateACLsRequest()
	var adds []aclKey
	for b := range want {
		if have[b] {
			continue
		}
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = b.ResourceType, b.Name, b.Pattern
		c.Principal, c.Host, c.Operation, c.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		create.Creations = append(create.Creations, c)
		adds = append(adds, b)
	}
	if len(adds) > 0 {
		resp, err := create.RequestWith(ctx, p.dst)
		if err != nil {
			fail("create destination acls", err)
			return
		}
		for i, r := range resp.Results {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				fail("create "+adds[i].String(), err)
				return
			}
			created[adds[i]] = true
		}
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	var drops []aclKey
	for b := range created {
		if want[b] {
			continue
		}
		f := kmsg.NewDeleteACLsRequestFilter()
		name, principal, host := b.Name, b.Principal, b.Host
		f.ResourceType, f.ResourceName, f.ResourcePatternType = b.ResourceType, &name, b.Pattern
		f.Principal, f.Host, f.Operation, f.PermissionType = &principal, &host, b.Operation, b.Permission
		del.Filters = append(del.Filters, f)
		drops = append(drops, b)
	}
	if len(drops) > 0 {
		resp, err := del.RequestWith(ctx, p.dst)
		if err != nil {
			fail("delete destination acls", err)
			return
		}
		for i, r := range resp.Results {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				fail("delete "+drops[i].String(), err)
				return
			}
			delete(created, drops[i])
		}
	}
	s.mu.Lock()
	s.mu.applied, s.mu.created = want, created
	s.mu.status.Copied = len(want)
	s.mu.status.LastError = ""
	s.mu.Unlock()
	if len(adds)+len(drops) > 0 {
		p.log.Info("acl sync", "created", len(adds), "deleted", len(drops), "skipped", len(skipped), "narrowed", len(narrowed))
	}
}

func equalSets(a, b map[aclKey]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
