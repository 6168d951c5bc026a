package brokerd

// The authorizer: Kafka's ACLs (AclAuthorizer / StandardAuthorizer rules).
//
// Off by default (Config.Authorizer false): every request is allowed, as
// before. On, each request is checked against the ACL bindings:
//
//   - a binding is (resource type, resource name, pattern type, principal,
//     host, operation, ALLOW|DENY); resource types are topic, group,
//     cluster and transactional id; patterns are literal (the name "*"
//     matches every resource) or prefixed; principals are "User:<name>"
//     or "User:*"; hosts are an address or "*";
//   - super users (Config.SuperUsers) are allowed everything;
//   - a DENY binding that matches wins over any ALLOW;
//   - an ALLOW of ALL allows every operation; ALLOW of READ, WRITE, DELETE
//     or ALTER implies DESCRIBE, and ALLOW of ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS;
//   - a resource that no binding matches at all is allowed only with
//     Config.AllowEveryoneIfNoACL (allow.everyone.if.no.acl.found, false
//     by default).
//
// The principal is "User:" + the SASL user, or User:ANONYMOUS on a
// connection that did not authenticate. Bindings are persisted in
// acls.json (written atomically) and managed with CreateAcls, DescribeAcls
// and DeleteAcls (29_, 30_, 31_).

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclsFile persists the ACL bindings.
const aclsFile = "acls.json"

// Operations the handlers check, named as Kafka names them.
const (
	aclOpRead            = kmsg.ACLOperationRead
	aclOpWrite           = kmsg.ACLOperationWrite
	aclOpCreate          = kmsg.ACLOperationCreate
	aclOpDelete          = kmsg.ACLOperationDelete
	aclOpAlter           = kmsg.ACLOperationAlter
	aclOpDescribe        = kmsg.ACLOperationDescribe
	aclOpClusterAction   = kmsg.ACLOperationClusterAction
	aclOpDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	aclOpAlterConfigs    = kmsg.ACLOperationAlterConfigs
	aclOpIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

// clusterResource is the name of the one cluster resource.
const clusterResource = "kafka-cluster"

// aclBinding is one ACL, as stored.
type aclBinding struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// aclFilter matches bindings: a nil field or an ANY value matches all;
// PatternType MATCH matches the bindings that would apply to the named
// resource (literal equal, literal "*", prefixed).
type aclFilter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

func (f aclFilter) matches(b aclBinding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		if f.ResourceName != nil && *f.ResourceName != b.ResourceName {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName != nil && !resourceMatches(b, *f.ResourceName) {
			return false
		}
	default:
		if f.PatternType != b.PatternType || f.ResourceName != nil && *f.ResourceName != b.ResourceName {
			return false
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != b.Permission {
		return false
	}
	return true
}

// resourceMatches reports whether binding b applies to the resource name.
func resourceMatches(b aclBinding, name string) bool {
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.ResourceName == name || b.ResourceName == "*"
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// implies reports whether a binding for op covers the operation want.
func implies(op, want kmsg.ACLOperation) bool {
	switch {
	case op == want, op == kmsg.ACLOperationAll:
		return true
	case want == aclOpDescribe:
		return op == aclOpRead || op == aclOpWrite || op == aclOpDelete || op == aclOpAlter
	case want == aclOpDescribeConfigs:
		return op == aclOpAlterConfigs
	}
	return false
}

// authorizer holds the bindings; nil when the authorizer is off.
type authorizer struct {
	dir        string
	superUsers map[string]bool
	allowIfNo  bool
	max        int // Limits.MaxACLBindings
	mu         struct {
		sync.RWMutex
		bindings []aclBinding // sorted, no duplicates
	}
}

func loadAuthorizer(dir string, cfg Config) (*authorizer, error) {
	a := &authorizer{dir: dir, superUsers: map[string]bool{}, allowIfNo: cfg.AllowEveryoneIfNoACL, max: cfg.Limits.MaxACLBindings}
	for _, u := range cfg.SuperUsers {
		a.superUsers[u] = true
	}
	if err := loadJSON(dir, aclsFile, &a.mu.bindings); err != nil {
		return nil, err
	}
	return a, nil
}

// allowed decides one operation of principal from host on a resource.
func (a *authorizer) allowed(principal, host string, rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) bool {
	if a == nil || a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	any, allow := false, false
	for _, b := range a.mu.bindings {
		if b.ResourceType != rt || !resourceMatches(b, name) {
			continue
		}
		any = true
		if b.Principal != principal && b.Principal != "User:*" || b.Host != "*" && b.Host != host {
			continue
		}
		switch b.Permission {
		case kmsg.ACLPermissionTypeDeny:
			// DENY of ALL or of the operation itself; a DENY of READ
			// does not deny DESCRIBE (Kafka's rule).
			if b.Operation == op || b.Operation == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			if implies(b.Operation, op) {
				allow = true
			}
		}
	}
	if !any {
		return a.allowIfNo
	}
	return allow
}

// list returns the bindings f matches, in order.
func (a *authorizer) list(f aclFilter) []aclBinding {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []aclBinding
	for _, b := range a.mu.bindings {
		if f.matches(b) {
			out = append(out, b)
		}
	}
	return out
}

// ACLBinding is one ACL as Cluster.ACLs reports it.
type ACLBinding struct {
	ResourceType kmsg.ACLResourceType
	ResourceName string
	PatternType  kmsg.ACLResourcePatternType
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// ACLs returns every stored binding (none when the authorizer is off).
func (c *Cluster) ACLs() []ACLBinding {
	if c.authz == nil {
		return nil
	}
	var out []ACLBinding
	for _, b := range c.authz.list(aclFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}) {
		out = append(out, ACLBinding(b))
	}
	return out
}

func bindingLess(x, y aclBinding) bool {
	switch {
	case x.ResourceType != y.ResourceType:
		return x.ResourceType < y.ResourceType
	case x.ResourceName != y.ResourceName:
		return x.ResourceName < y.ResourceName
	case x.PatternType != y.PatternType:
		return x.PatternType < y.PatternType
	case x.Principal != y.Principal:
		return x.Principal < y.Principal
	case x.Host != y.Host:
		return x.Host < y.Host
	case x.Operation != y.Operation:
		return x.Operation < y.Operation
	}
	return x.Permission < y.Permission
}

// errTooManyACLs refuses a change that would hold more bindings than
// Limits.MaxACLBindings.
var errTooManyACLs = errors.New("too many ACL bindings")

// change adds add and removes what drop matches, persists, and returns
// the removed bindings per filter. On a write error, or when the result
// would hold more than a.max bindings (errTooManyACLs), nothing changes.
func (a *authorizer) change(add []aclBinding, drop []aclFilter) ([][]aclBinding, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := make([]aclBinding, 0, len(a.mu.bindings)+len(add))
	removed := make([][]aclBinding, len(drop))
	for _, b := range a.mu.bindings {
		keep := true
		for i, f := range drop {
			if f.matches(b) {
				removed[i] = append(removed[i], b)
				keep = false
			}
		}
		if keep {
			next = append(next, b)
		}
	}
	have := map[aclBinding]bool{}
	for _, b := range next {
		have[b] = true
	}
	for _, b := range add {
		if !have[b] {
			have[b] = true
			next = append(next, b)
		}
	}
	if a.max > 0 && len(next) > a.max && len(next) > len(a.mu.bindings) {
		return nil, fmt.Errorf("%w: the change would hold %d bindings, limit %d (Limits.MaxACLBindings)", errTooManyACLs, len(next), a.max)
	}
	sort.Slice(next, func(i, j int) bool { return bindingLess(next[i], next[j]) })
	if err := saveJSON(a.dir, aclsFile, next); err != nil {
		return nil, err
	}
	a.mu.bindings = next
	return removed, nil
}

// aclAdminRefusal is the error, and its message, for one entry of a
// CreateAcls or DeleteAcls request: SECURITY_DISABLED with the authorizer
// off, CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster, and
// INVALID_REQUEST with problem, the entry's check, when it is not ""; nil when the
// entry may go ahead.
func aclAdminRefusal(a *authorizer, authorized bool, problem string) (*kerr.Error, string) {
	switch {
	case a == nil:
		return kerr.SecurityDisabled, "no authorizer is configured (strait broker --authorizer)"
	case !authorized:
		return kerr.ClusterAuthorizationFailed, "ALTER on the cluster is required"
	}
	if problem != "" {
		return kerr.InvalidRequest, problem
	}
	return nil, ""
}

// principal is this connection's principal for ACLs.
func (cc *conn) principal() string { return "User:" + cc.principalUser() }

func (cc *conn) host() string {
	host, _, err := net.SplitHostPort(cc.nc.RemoteAddr().String())
	if err != nil {
		return cc.nc.RemoteAddr().String()
	}
	return host
}

// allowed reports whether this connection may do op on a resource; always
// true with the authorizer off.
func (cc *conn) allowed(rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) bool {
	a := cc.b.c.authz
	if a == nil {
		return true
	}
	return a.allowed(cc.principal(), cc.host(), rt, name, op)
}

func (cc *conn) allowedTopic(name string, op kmsg.ACLOperation) bool {
	return cc.allowed(kmsg.ACLResourceTypeTopic, name, op)
}

func (cc *conn) allowedGroup(name string, op kmsg.ACLOperation) bool {
	return cc.allowed(kmsg.ACLResourceTypeGroup, name, op)
}

func (cc *conn) authorizeCluster(op kmsg.ACLOperation) bool {
	return cc.allowed(kmsg.ACLResourceTypeCluster, clusterResource, op)
}

// authorizeConfigs checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a
// config resource: a topic, or a broker (the cluster resource, as in
// Kafka). It returns the error for the resource, or nil.
func (cc *conn) authorizeConfigs(rt kmsg.ConfigResourceType, name string, op kmsg.ACLOperation) *kafkaErr {
	switch rt {
	case resourceTopic:
		if !cc.allowedTopic(name, op) {
			return kErr(kerr.TopicAuthorizationFailed, "%s on topic %q is required", op, name)
		}
	default:
		if !cc.authorizeCluster(op) {
			return kErr(kerr.ClusterAuthorizationFailed, "%s on the cluster is required", op)
		}
	}
	return nil
}

// mayWriteSomeTopic reports whether the principal is allowed WRITE on some
// topic, which lets an idempotent producer get a producer id without
// IDEMPOTENT_WRITE on the cluster (KIP-679).
func (cc *conn) mayWriteSomeTopic() bool {
	a := cc.b.c.authz
	if a == nil {
		return true
	}
	principal, host := cc.principal(), cc.host()
	if a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, b := range a.mu.bindings {
		if b.ResourceType == kmsg.ACLResourceTypeTopic && b.Permission == kmsg.ACLPermissionTypeAllow &&
			(b.Principal == principal || b.Principal == "User:*") && (b.Host == "*" || b.Host == host) &&
			(b.Operation == aclOpWrite || b.Operation == kmsg.ACLOperationAll) {
			return true
		}
	}
	return false
}
