package brokerd

// Limits: what one client, or many, can make the broker hold. Every limit
// has a Kafka equivalent where Kafka has one (docs/broker.md, "Limits").
//
// Memory per connection is bounded by what the client has actually sent:
// a frame's buffer grows as its bytes arrive (readFrame), never to the
// size its header announces; before SASL authentication a frame may not
// exceed MaxUnauthRequestBytes and only ApiVersions and SASL requests are
// decoded; no request is decoded whose decoded size could exceed
// MaxDecodedRequestBytes (checkBody). Responses queued on a connection are bounded in number (the
// reader stops reading while the writer's queue is full, Kafka's muted
// channel) and in memory: fetch responses hold file spans, which the
// writer sends with sendfile or copies through one pooled chunk at a time.
// Connections are bounded in number (per cluster and per client address)
// and in time (idle, frame and SASL deadlines).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"strait/brokerd/plog"
)

// Limits bounds what clients can make the cluster hold. Zero values take
// the defaults noted on each field (Limits.withDefaults).
type Limits struct {
	// MaxConnections bounds open client connections over every broker of
	// the cluster (Kafka's max.connections). Default: 10,000, or half the
	// process's descriptor limit when that is lower; negative: no limit.
	// A connection over the limit is closed as soon as it is accepted.
	MaxConnections int
	// MaxConnectionsPerIP bounds open connections from one client address
	// (Kafka's max.connections.per.ip). Default 1,000 (at most
	// MaxConnections); negative: no limit.
	MaxConnectionsPerIP int
	// IdleTimeout closes a connection that sends no request for this long,
	// and one whose responses the client does not read for this long
	// (Kafka's connections.max.idle.ms). Default 10 minutes; negative:
	// never.
	IdleTimeout time.Duration
	// FrameTimeout is how long a client has to send the rest of a request
	// once its first byte has arrived; a slow sender (slowloris) is
	// closed. It also bounds the TLS handshake. Default 30 seconds;
	// negative: no deadline.
	FrameTimeout time.Duration
	// SASLTimeout is how long a connection has, from its accept, to
	// complete SASL authentication when SASL is on. Default 30 seconds;
	// negative: no deadline.
	SASLTimeout time.Duration
	// MaxUnauthRequestBytes bounds a request sent before SASL
	// authentication (Kafka's sasl.server.max.receive.size). Default
	// 512 KiB.
	MaxUnauthRequestBytes int32
	// FetchMaxBytes caps a fetch response's record bytes, whatever the
	// request's MaxBytes (Kafka's fetch.max.bytes); the first partition
	// with data still returns one whole batch (KIP-74). Default 55 MiB.
	FetchMaxBytes int32
	// MessageMaxBytes is the largest record batch a topic accepts unless
	// its max.message.bytes says otherwise (Kafka's message.max.bytes);
	// a larger one gets MESSAGE_TOO_LARGE. Default 1048588.
	MessageMaxBytes int32
	// MaxMetadataTopics bounds the topic names one Metadata request may
	// list; a longer list closes the connection before it is decoded.
	// Names are deduplicated, so the response is bounded too. Kafka has
	// no such limit (its request size limit bounds it); default 100,000.
	MaxMetadataTopics int
	// MaxDecodedRequestBytes bounds what decoding one request may
	// allocate, checked before it is decoded: its bytes times the most
	// any one of its bytes can decode to (requestDecodeBound). A request
	// over it closes the connection. Produce counts its bytes but its
	// record batches, which are not copied; Metadata is bounded by
	// MaxMetadataTopics instead. Kafka has no such limit; default 128 MiB,
	// which lets a Fetch or OffsetCommit request be about a megabyte
	// (tens of thousands of partitions).
	MaxDecodedRequestBytes int64
	// MaxACLBindings bounds the ACL bindings the authorizer holds (in
	// memory and in acls.json). A CreateAcls whose new bindings would
	// take the count over it stores none of them and answers
	// POLICY_VIOLATION for each. Kafka has no such limit; default 100,000.
	MaxACLBindings int
	// MaxTransactionalIDs bounds the transactional ids the transaction
	// coordinator holds; once it holds that many, InitProducerId for a new
	// id gets POLICY_VIOLATION while ids already held keep working. Kafka
	// has no such limit (it expires idle ids after
	// transactional.id.expiration.ms, which strait does not); default
	// 100,000; negative: no limit.
	MaxTransactionalIDs int
}

// Defaults, and the reserve of descriptors kept for segment files,
// listeners and the rest when MaxConnections follows the descriptor limit.
const (
	defaultMaxConnections      = 10_000
	defaultMaxConnectionsPerIP = 1_000
	defaultIdleTimeout         = 10 * time.Minute
	defaultFrameTimeout        = 30 * time.Second
	defaultSASLTimeout         = 30 * time.Second
	defaultMaxUnauthRequest    = 512 << 10
	defaultFetchMaxBytes       = 55 << 20
	defaultMessageMaxBytes     = 1048588
	defaultMaxMetadataTopics   = 100_000
	defaultMaxDecodedRequest   = 128 << 20
	defaultMaxACLBindings      = 100_000
	defaultMaxTransactionalIDs = 100_000
)

// withDefaults fills zero fields. nofile is the process's descriptor
// limit (0 when unknown).
func (l Limits) withDefaults(nofile uint64) Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = defaultMaxConnections
		if nofile > 0 && nofile/2 < uint64(l.MaxConnections) {
			l.MaxConnections = max(int(nofile/2), 1)
		}
	}
	if l.MaxConnectionsPerIP == 0 {
		l.MaxConnectionsPerIP = defaultMaxConnectionsPerIP
		if l.MaxConnections > 0 {
			l.MaxConnectionsPerIP = min(l.MaxConnectionsPerIP, l.MaxConnections)
		}
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	if l.FrameTimeout == 0 {
		l.FrameTimeout = defaultFrameTimeout
	}
	if l.SASLTimeout == 0 {
		l.SASLTimeout = defaultSASLTimeout
	}
	if l.MaxUnauthRequestBytes <= 0 {
		l.MaxUnauthRequestBytes = defaultMaxUnauthRequest
	}
	if l.FetchMaxBytes <= 0 {
		l.FetchMaxBytes = defaultFetchMaxBytes
	}
	if l.MessageMaxBytes <= 0 {
		l.MessageMaxBytes = defaultMessageMaxBytes
	}
	if l.MaxMetadataTopics <= 0 {
		l.MaxMetadataTopics = defaultMaxMetadataTopics
	}
	if l.MaxDecodedRequestBytes <= 0 {
		l.MaxDecodedRequestBytes = defaultMaxDecodedRequest
	}
	if l.MaxACLBindings <= 0 {
		l.MaxACLBindings = defaultMaxACLBindings
	}
	if l.MaxTransactionalIDs == 0 {
		l.MaxTransactionalIDs = defaultMaxTransactionalIDs
	}
	return l
}

// descriptorLimit returns the process's soft RLIMIT_NOFILE, 0 if unknown.
func descriptorLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return rl.Cur
}

// ErrLimit reports a connection or request refused by a limit of Limits;
// the connection is closed.
var ErrLimit = errors.New("brokerd: limit exceeded")

// connCounter counts open connections, in all and per client address.
type connCounter struct {
	mu    sync.Mutex
	total int
	perIP map[string]int
}

// admit counts a new connection from ip, or reports which limit refuses it.
func (cn *connCounter) admit(l Limits, ip string) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if l.MaxConnections > 0 && cn.total >= l.MaxConnections {
		return fmt.Errorf("%w: %d connections (max connections)", ErrLimit, cn.total)
	}
	if l.MaxConnectionsPerIP > 0 && cn.perIP[ip] >= l.MaxConnectionsPerIP {
		return fmt.Errorf("%w: %d connections from %s (max connections per IP)", ErrLimit, cn.perIP[ip], ip)
	}
	if cn.perIP == nil {
		cn.perIP = make(map[string]int)
	}
	cn.total++
	cn.perIP[ip]++
	return nil
}

// release uncounts a connection admitted from ip.
func (cn *connCounter) release(ip string) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.total--
	if cn.perIP[ip]--; cn.perIP[ip] <= 0 {
		delete(cn.perIP, ip)
	}
}

// remoteIP is the address part of a connection's remote address, the key
// of the per-IP limit.
func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}

// logLimiter lets one log line through per interval and counts the ones it
// held back, so a flood of refused connections or accept errors leaves a
// trace without filling the log.
type logLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether a line may be logged now, and how many were held
// back since the last one.
func (ll *logLimiter) allow(now time.Time, every time.Duration) (ok bool, suppressed int) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if now.Before(ll.next) {
		ll.suppressed++
		return false, 0
	}
	ll.next = now.Add(every)
	suppressed, ll.suppressed = ll.suppressed, 0
	return true, suppressed
}

// acceptBackoff is the wait after a failed accept: from 5ms, doubling to
// at most a second, so a listener out of descriptors tries again at least
// once a second and accepts soon after descriptors free up.
func acceptBackoff(prev time.Duration) time.Duration {
	if prev <= 0 {
		return 5 * time.Millisecond
	}
	return min(2*prev, time.Second)
}

// preAuthKeys are the requests decoded before SASL authentication.
func preAuthKey(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return true
	}
	return false
}

// checkBody refuses, before decoding, a request whose arrays would decode
// to far more memory than its bytes: a Metadata request listing more
// topics than MaxMetadataTopics (an empty name is two bytes on the wire,
// and decodes to a struct of ten times that), and any other request whose
// decoded size could exceed MaxDecodedRequestBytes (requestDecodeBound).
func (l Limits) checkBody(h header, flexible bool, body []byte) error {
	key := kmsg.Key(h.key)
	if key == kmsg.Metadata {
		r := kbin.Reader{Src: body}
		var n int32
		if flexible {
			n = r.CompactArrayLen()
		} else {
			n = r.ArrayLen()
		}
		if r.Ok() && int(n) > l.MaxMetadataTopics {
			return fmt.Errorf("%w: Metadata request lists %d topics, limit %d", ErrLimit, n, l.MaxMetadataTopics)
		}
		return nil
	}
	n := int64(len(body))
	if key == kmsg.Produce {
		n -= produceRecordBytes(h.version, flexible, body)
	}
	if bound := n * requestDecodeBound(key, flexible); bound > l.MaxDecodedRequestBytes {
		return fmt.Errorf("%w: %s request of %d bytes could decode to %d MiB, limit %d MiB", ErrLimit, key.Name(), len(body), bound>>20, l.MaxDecodedRequestBytes>>20)
	}
	return nil
}

// requestDecodeBound is the most memory one byte of a request of this key
// can make kmsg allocate. kmsg refuses an array whose count exceeds the
// bytes left, so every element costs at least one byte; an element
// allocates its struct twice (the array is built with an append of a
// fresh slice) plus whatever its pointer fields point to; a string's
// bytes are copied (one byte per byte). In a flexible version one byte of
// unknown tagged fields can cost about tagBytesPerByte (each element's
// tags are a map of their own). The bound is taken from the kmsg types
// themselves, so it follows the kmsg version without a second codec.
func requestDecodeBound(key kmsg.Key, flexible bool) int64 {
	per := elemCosts()[key]
	if flexible {
		per = max(per, tagBytesPerByte)
	}
	return per + 1
}

// tagBytesPerByte bounds the memory per byte of unknown tagged fields: a
// map with its first group (about 300 bytes) for the three bytes of one
// empty tag, or a map entry and its share of growth for each further two.
const tagBytesPerByte = 128

// elemCosts is, per request key, the most one element of any array the
// request type holds can allocate (see requestDecodeBound).
var elemCosts = sync.OnceValue(func() []int64 {
	costs := make([]int64, kmsg.MaxKey+1)
	for k := range costs {
		if req := kmsg.RequestForKey(int16(k)); req != nil {
			costs[k] = maxElemCost(reflect.TypeOf(req).Elem(), 0)
		}
	}
	return costs
})

// maxElemCost is the most one element of an array within struct type t
// allocates: twice its size plus what its pointer fields point to.
func maxElemCost(t reflect.Type, depth int) int64 {
	var worst int64
	if t.Kind() != reflect.Struct || depth > 16 {
		return 0
	}
	for i := range t.NumField() {
		ft := t.Field(i).Type
		switch ft.Kind() {
		case reflect.Slice:
			e := ft.Elem()
			worst = max(worst, 2*int64(e.Size())+pointees(e), maxElemCost(e, depth+1))
		case reflect.Pointer:
			worst = max(worst, maxElemCost(ft.Elem(), depth+1))
		case reflect.Struct:
			worst = max(worst, maxElemCost(ft, depth+1))
		}
	}
	return worst
}

// pointees is what the pointer fields of a struct type point to, in bytes.
func pointees(t reflect.Type) int64 {
	var n int64
	if t.Kind() != reflect.Struct {
		return 0
	}
	for i := range t.NumField() {
		if ft := t.Field(i).Type; ft.Kind() == reflect.Pointer {
			n += int64(ft.Elem().Size())
		}
	}
	return n
}

// produceRecordBytes is how many of a Produce request's bytes are record
// batches: kmsg keeps them as slices of the frame, so they cost nothing
// to decode. It skims the request with kbin (transactional id, acks,
// timeout, then per topic its name and per partition its index and
// records) and returns 0 when the request does not parse; decoding then
// refuses it.
func produceRecordBytes(version int16, flexible bool, body []byte) int64 {
	r := kbin.Reader{Src: body}
	skipString := func() {
		var n int
		if flexible {
			n = int(r.Uvarint()) - 1
		} else {
			n = int(r.Int16())
		}
		if n > 0 {
			r.Span(n)
		}
	}
	arrayLen := func() int32 {
		if flexible {
			return r.CompactArrayLen()
		}
		return r.ArrayLen()
	}
	if version >= 3 {
		skipString() // transactional id
	}
	r.Int16() // acks
	r.Int32() // timeout
	var records int64
	for range max(arrayLen(), 0) {
		skipString() // topic
		for range max(arrayLen(), 0) {
			r.Int32() // partition
			var n int
			if flexible {
				n = int(r.Uvarint()) - 1
			} else {
				n = int(r.Int32())
			}
			if n > 0 {
				records += int64(len(r.Span(n)))
			}
			if flexible {
				kmsg.SkipTags(&r)
			}
			if !r.Ok() {
				return 0
			}
		}
		if flexible {
			kmsg.SkipTags(&r)
		}
	}
	if !r.Ok() {
		return 0
	}
	return records
}

// frameChunk is the first buffer of a frame; it doubles as bytes arrive.
const frameChunk = 64 << 10

// readBody reads size bytes, growing the buffer only as they arrive: a
// header announcing 100 MiB followed by two bytes costs one frameChunk.
func readBody(br io.Reader, size int32, buf []byte) ([]byte, error) {
	if cap(buf) < int(min(size, frameChunk)) {
		buf = make([]byte, 0, min(size, frameChunk))
	}
	buf = buf[:0]
	for len(buf) < int(size) {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), int(size)))
			copy(nb, buf)
			buf = nb
		}
		n, err := br.Read(buf[len(buf):min(cap(buf), int(size))])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < int(size) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// rawSASLFrame encodes a SASL token for the raw framing that follows a
// SaslHandshake v0: a 4-byte length, then the token, no Kafka header.
func rawSASLFrame(token []byte) *response {
	buf := make([]byte, 4, 4+len(token))
	binary.BigEndian.PutUint32(buf, uint32(len(token)))
	return &response{parts: []part{{bytes: append(buf, token...)}}}
}

// logConfig is a topic's log configuration, its max.message.bytes
// defaulting to Limits.MessageMaxBytes as Kafka's defaults to
// message.max.bytes.
func (c *Cluster) logConfig(cfgs map[string]string) plog.Config {
	lc := logConfig(cfgs)
	if _, ok := cfgs["max.message.bytes"]; !ok {
		lc.MaxMessageBytes = c.cfg.Limits.MessageMaxBytes
	}
	return lc
}
