package brokerd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/plog"
)

type broker struct {
	c    *Cluster
	id   int32
	ln   net.Listener
	host string
	port int32
	// sessions are the fetch sessions this broker made.
	sessions *fetchSessions

	// acceptLog and refuseLog pace the log lines of failed accepts and
	// of connections refused by a limit.
	acceptLog, refuseLog logLimiter

	mu struct {
		sync.Mutex
		conns map[*conn]struct{}
	}
}

func (b *broker) addr() string { return net.JoinHostPort(b.host, strconv.Itoa(int(b.port))) }

// acceptLoop accepts until the listener closes. A failed accept (out of
// descriptors, EMFILE/ENFILE, or any other error but a closed listener)
// is waited out with a backoff and logged at most once per interval: the
// listener keeps accepting, so clients can connect again as soon as
// descriptors free up.
func (b *broker) acceptLoop() {
	var backoff time.Duration
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = acceptBackoff(backoff)
			if ok, held := b.acceptLog.allow(time.Now(), 10*time.Second); ok {
				b.c.log.Warn("accept failed; retrying", "broker", b.id, "err", err, "retry_in", backoff, "suppressed", held)
			}
			select {
			case <-time.After(backoff):
			case <-b.c.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		ip := remoteIP(nc)
		if err := b.c.conns.admit(b.c.cfg.Limits, ip); err != nil {
			nc.Close()
			if ok, held := b.refuseLog.allow(time.Now(), 10*time.Second); ok {
				b.c.log.Warn("connection refused", "broker", b.id, "remote", ip, "err", err, "suppressed", held)
			}
			continue
		}
		cc := newConn(b, nc)
		cc.ip = ip
		b.mu.Lock()
		if b.c.ctx.Err() != nil {
			b.mu.Unlock()
			nc.Close()
			b.c.conns.release(ip)
			return
		}
		b.mu.conns[cc] = struct{}{}
		b.mu.Unlock()
		b.c.goTracked(cc.readLoop)
		b.c.goTracked(cc.writeLoop)
	}
}

func (b *broker) closeConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for cc := range b.mu.conns {
		cc.nc.Close()
	}
}

func (b *broker) dropConn(cc *conn) {
	b.mu.Lock()
	delete(b.mu.conns, cc)
	b.mu.Unlock()
	b.c.conns.release(cc.ip)
}

// part is one piece of a response on the wire: either bytes, or a file
// span sent with sendfile (or copied on the copy path).
type part struct {
	bytes []byte
	span  plog.Span
}

// response is everything the writer sends for one request, in order.
type response struct {
	parts   []part
	release func() // called once the parts are written (or dropped)
}

// conn is one client connection. The reader goroutine decodes a request,
// handles it and queues its response; the writer goroutine sends queued
// responses in order. Handling one request at a time on the reader keeps
// responses ordered without bookkeeping, as Kafka requires.
type conn struct {
	b      *broker
	nc     net.Conn
	tcp    *net.TCPConn    // nil when not TCP (sendfile unavailable)
	raw    syscall.RawConn // tcp's raw connection, for sendfile and sendmsg
	out    chan *response
	ctx    context.Context
	cancel context.CancelFunc
	// wake is signalled by partitions this connection's long poll waits on.
	wake chan struct{}
	sasl saslState // touched by the reader goroutine only
	ip   string    // the client address, counted by Cluster.conns
	// saslBy is when SASL authentication must be complete (zero: SASL off).
	saslBy time.Time
	// Quota state, touched by the reader goroutine only: the reader takes
	// no request before mutedUntil (KIP-219); waited is the time the
	// request being served spent waiting (long poll, cold data), which
	// request_percentage does not charge.
	mutedUntil time.Time
	waited     time.Duration
}

func newConn(b *broker, nc net.Conn) *conn {
	// A short queue is the backpressure: a client that stops reading stops
	// being read, so queued responses (copied fetch data included) stay few.
	cc := &conn{b: b, nc: nc, out: make(chan *response, 4), wake: make(chan struct{}, 1)}
	cc.tcp, _ = nc.(*net.TCPConn)
	if cc.tcp != nil {
		if raw, err := cc.tcp.SyscallConn(); err == nil {
			cc.raw = raw
		} else {
			cc.tcp = nil
		}
	}
	cc.ctx, cc.cancel = context.WithCancel(b.c.ctx)
	if l := b.c.cfg.Limits; len(b.c.cfg.SASLUsers) > 0 && l.SASLTimeout > 0 {
		cc.saslBy = time.Now().Add(l.SASLTimeout)
	}
	return cc
}

func (cc *conn) logf(msg string, args ...any) {
	cc.b.c.log.Warn(msg, append([]any{"broker", cc.b.id, "remote", cc.nc.RemoteAddr().String()}, args...)...)
}

// readLoop reads frames until the connection ends or a frame is bad.
//
// Deadlines: waiting for a frame's first byte is bounded by IdleTimeout;
// once it has come the rest must follow within FrameTimeout; until SASL
// authentication completes, both are also bounded by the SASL deadline.
// Frames are at most MaxRequestBytes, or MaxUnauthRequestBytes before
// authentication, and their buffers grow only as their bytes arrive.
func (cc *conn) readLoop() {
	defer func() {
		cc.cancel()
		close(cc.out) // the writer drains what is queued, then exits
		cc.b.dropConn(cc)
	}()
	l := cc.b.c.cfg.Limits
	if tc, ok := cc.nc.(*tls.Conn); ok {
		cc.setReadDeadline(l.FrameTimeout)
		if err := tc.HandshakeContext(cc.ctx); err != nil {
			cc.readFailed("TLS handshake", err)
			return
		}
	}
	br := bufio.NewReaderSize(cc.nc, 16<<10)
	var sizeBuf [4]byte
	for {
		if !cc.waitMuted() {
			return
		}
		cc.setReadDeadline(l.IdleTimeout)
		if _, err := br.Peek(1); err != nil {
			cc.readFailed("idle", err)
			return
		}
		cc.setReadDeadline(l.FrameTimeout)
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			cc.readFailed("frame", err)
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		limit := cc.b.c.cfg.MaxRequestBytes
		if cc.needsAuth() {
			limit = min(limit, l.MaxUnauthRequestBytes)
		}
		if size < 0 || size > limit {
			cc.logf("closing connection", "err", fmt.Errorf("%w: %d bytes, limit %d", ErrTooBig, size, limit))
			return
		}
		frame, pooled, err := readFrame(br, size)
		if err != nil {
			cc.readFailed("frame", fmt.Errorf("%w: truncated frame: %w", ErrFrame, err))
			return
		}
		var resp *response
		if cc.sasl.raw {
			resp, err = cc.serveRawSASL(frame)
		} else {
			resp, err = cc.serve(frame)
		}
		if pooled != nil {
			producePool.put(pooled)
		}
		if err != nil {
			cc.logf("closing connection", "err", err)
			return
		}
		if resp == nil {
			continue // acks=0 produce: no response
		}
		// A full queue blocks here, so a client that does not read its
		// responses is not read either (Kafka's muted channel).
		select {
		case cc.out <- resp:
		case <-cc.ctx.Done():
			if resp.release != nil {
				resp.release()
			}
			return
		}
	}
}

// needsAuth reports whether the connection must still authenticate.
func (cc *conn) needsAuth() bool {
	return len(cc.b.c.cfg.SASLUsers) > 0 && !cc.sasl.authed
}

// setReadDeadline bounds the next reads by d from now (none if d <= 0),
// and by the SASL deadline while the connection is not authenticated.
func (cc *conn) setReadDeadline(d time.Duration) {
	var dl time.Time
	if d > 0 {
		dl = time.Now().Add(d)
	}
	if !cc.saslBy.IsZero() && cc.needsAuth() && (dl.IsZero() || cc.saslBy.Before(dl)) {
		dl = cc.saslBy
	}
	cc.nc.SetReadDeadline(dl)
}

// readFailed logs why reading stopped, unless the client simply left or
// the cluster is closing.
func (cc *conn) readFailed(what string, err error) {
	if cc.ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if errors.Is(err, io.EOF) && what == "idle" {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		switch {
		case cc.needsAuth() && !cc.saslBy.IsZero() && !time.Now().Before(cc.saslBy):
			err = fmt.Errorf("%w: SASL authentication not complete after %v", ErrLimit, cc.b.c.cfg.Limits.SASLTimeout)
		case what == "idle":
			err = fmt.Errorf("%w: idle for %v", ErrLimit, cc.b.c.cfg.Limits.IdleTimeout)
		default:
			err = fmt.Errorf("%w: %s not complete after %v", ErrLimit, what, cc.b.c.cfg.Limits.FrameTimeout)
		}
	}
	cc.logf("closing connection", "err", err)
}

// producePool holds frame buffers for Produce requests. A produce frame is
// the largest and most frequent request, and nothing of it outlives serve:
// kmsg copies strings, plog.Append writes the record bytes to the segment
// and keeps no reference, and the response is encoded into its own buffer.
// Other requests may keep slices of their frame (group metadata,
// assignments), so they get a fresh one.
var producePool bufPool

// readFrame reads a size-byte frame. Its buffer grows as bytes arrive
// (readBody), except that a Produce frame (key 0) reuses a pooled buffer
// when one is large enough; a Produce frame's buffer is returned as pooled,
// for producePool.put once the request has been served.
func readFrame(br *bufio.Reader, size int32) (frame []byte, pooled *[]byte, err error) {
	if size < 2 || size > maxPooledBuf {
		frame, err = readBody(br, size, nil)
		return frame, nil, err
	}
	key, err := br.Peek(2)
	if err != nil {
		return nil, nil, err
	}
	if kmsg.Key(binary.BigEndian.Uint16(key)) != kmsg.Produce {
		frame, err = readBody(br, size, nil)
		return frame, nil, err
	}
	pooled = producePool.tryGet(int(size))
	if pooled != nil {
		frame = *pooled
		if _, err := io.ReadFull(br, frame); err != nil {
			producePool.put(pooled)
			return nil, nil, err
		}
		return frame, pooled, nil
	}
	if frame, err = readBody(br, size, nil); err != nil {
		return nil, nil, err
	}
	return frame, &frame, nil
}

// header is a decoded request header.
type header struct {
	key, version int16
	corr         int32
	clientID     *string
}

// parseRequest decodes a frame (without its size prefix) into its header
// and request. An unsupported key or version returns ErrUnsupported with
// the header filled in; anything malformed returns ErrFrame.
func parseRequest(frame []byte) (header, kmsg.Request, error) {
	h, req, body, err := parseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	return h, req, decodeBody(h, req, body)
}

// parseHeader decodes a frame's request header and returns an empty
// request of its key and version, and the undecoded body.
func parseHeader(frame []byte) (header, kmsg.Request, []byte, error) {
	var h header
	r := kbin.Reader{Src: frame}
	h.key = r.Int16()
	h.version = r.Int16()
	h.corr = r.Int32()
	h.clientID = r.NullableString()
	if !r.Ok() {
		return h, nil, nil, fmt.Errorf("%w: short header", ErrFrame)
	}
	max, ok := maxVersion(h.key)
	if !ok || h.version < minVersion(h.key) || h.version > max {
		return h, nil, nil, fmt.Errorf("%w: key %d (%s) version %d", ErrUnsupported, h.key, kmsg.NameForKey(h.key), h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return h, nil, nil, fmt.Errorf("%w: bad header tags", ErrFrame)
		}
	}
	return h, req, r.Src, nil
}

// decodeBody decodes a request's body into req.
func decodeBody(h header, req kmsg.Request, body []byte) error {
	if err := req.ReadFrom(body); err != nil {
		return fmt.Errorf("%w: %s v%d: %v", ErrFrame, kmsg.NameForKey(h.key), h.version, err)
	}
	return nil
}

// serve handles one frame. A nil response with a nil error means nothing
// is sent back; an error closes the connection. Before SASL
// authentication only ApiVersions and SASL requests are decoded, and
// array-heavy requests are checked (Limits.checkBody) before they are.
func (cc *conn) serve(frame []byte) (resp *response, err error) {
	h, req, body, err := parseHeader(frame)
	if err == nil && cc.needsAuth() && !preAuthKey(h.key) {
		return nil, fmt.Errorf("%w: %s before SASL authentication", ErrUnauthenticated, kmsg.NameForKey(h.key))
	}
	if err == nil {
		err = cc.b.c.cfg.Limits.checkBody(h, req.IsFlexible(), body)
	}
	if err == nil {
		err = decodeBody(h, req, body)
	}
	if err != nil {
		if errors.Is(err, ErrUnsupported) && kmsg.Key(h.key) == kmsg.ApiVersions {
			// Kafka answers a too-new ApiVersions with its v0 body and
			// UNSUPPORTED_VERSION so the client can downgrade.
			r := apiVersionsResponse(0, len(cc.b.c.cfg.SASLUsers) > 0)
			r.ErrorCode = kerr.UnsupportedVersion.Code
			return frameResponse(h.corr, r), nil
		}
		return nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, fmt.Errorf("brokerd: panic serving %s v%d: %v\n%s", kmsg.NameForKey(h.key), h.version, v, debug.Stack())
		}
	}()
	return cc.dispatch(h, req)
}

// frameResponse encodes a kmsg response with its size and header.
func frameResponse(corr int32, r kmsg.Response) *response {
	buf := make([]byte, 8, 256)
	// ApiVersions keeps the v0 response header even when flexible, so a
	// client can read it before knowing what the broker speaks.
	if r.IsFlexible() && r.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = r.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:8], uint32(corr))
	return &response{parts: []part{{bytes: buf}}}
}

// writeLoop sends queued responses, coalescing byte parts of consecutive
// responses into one writev and file spans into sendfile calls.
func (cc *conn) writeLoop() {
	defer func() {
		cc.nc.Close()
		// Release what is still queued so spans' files are let go.
		for r := range cc.out {
			if r.release != nil {
				r.release()
			}
		}
	}()
	var (
		pending  net.Buffers
		releases []func()
		failed   bool
		corked   bool
	)
	// flush writes the pending bytes; more says a file span follows them.
	flush := func(more bool) error {
		if len(pending) == 0 {
			return nil
		}
		// Both writers consume the slice they are given; a copy keeps
		// pending's backing array for reuse.
		bufs := pending
		var err error
		if more && cc.raw != nil {
			err = writevMore(cc.raw, bufs)
		} else {
			_, err = bufs.WriteTo(cc.nc)
		}
		clear(pending)
		pending = pending[:0]
		return err
	}
	idle := cc.b.c.cfg.Limits.IdleTimeout
	for {
		r, ok := <-cc.out
		if !ok {
			return
		}
		// A client that reads none of its responses for IdleTimeout is
		// gone as far as the broker cares; the deadline also holds for
		// sendfile and sendmsg, which wait on the same poller.
		if idle > 0 {
			cc.nc.SetWriteDeadline(time.Now().Add(idle))
		}
		for {
			for i, p := range r.parts {
				if failed {
					break
				}
				if p.span.File == nil {
					pending = append(pending, p.bytes)
					continue
				}
				// sendfile pushes what it sent when it returns; bytes or
				// spans after this one would go out as separate segments,
				// each a wake-up for the client. Corking until the final
				// flush sends the response whole.
				if !corked && cc.raw != nil && moreFollows(r.parts[i+1:]) {
					if err := setCork(cc.raw, true); err != nil {
						failed = true
						break
					}
					corked = true
				}
				if err := flush(true); err != nil {
					failed = true
					break
				}
				if err := cc.sendSpan(p.span); err != nil {
					failed = true
					break
				}
			}
			if r.release != nil {
				releases = append(releases, r.release)
			}
			// Coalesce whatever else is already queued into this write.
			select {
			case r, ok = <-cc.out:
				if ok {
					continue
				}
			default:
			}
			break
		}
		if !failed {
			if err := flush(false); err != nil {
				failed = true
			}
		}
		if corked && !failed {
			if err := setCork(cc.raw, false); err != nil {
				failed = true
			}
		}
		corked = false
		for _, rel := range releases {
			rel()
		}
		releases = releases[:0]
		if failed || !ok {
			if failed {
				cc.cancel()
			}
			return
		}
	}
}

// moreFollows reports whether any of parts puts bytes on the wire.
func moreFollows(parts []part) bool {
	for _, p := range parts {
		if p.span.File != nil || len(p.bytes) > 0 {
			return true
		}
	}
	return false
}

// sendSpan writes one file span to the connection: sendfile on TCP, a
// positioned copy through one pooled chunk otherwise (TLS, or
// Config.CopyFetch), so a copied fetch response never sits in memory whole.
func (cc *conn) sendSpan(s plog.Span) error {
	if cc.raw != nil && !cc.b.c.cfg.CopyFetch {
		n, err := sendfileRaw(cc.raw, s.File, s.Pos, s.Len)
		cc.b.c.sendfileBytes.Add(n)
		return err
	}
	n, err := copySpan(cc.nc, s)
	cc.b.c.copyBytes.Add(n)
	return err
}
