package brokerd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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

	mu struct {
		sync.Mutex
		conns map[*conn]struct{}
	}
}

func (b *broker) addr() string { return net.JoinHostPort(b.host, strconv.Itoa(int(b.port))) }

func (b *broker) acceptLoop() {
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.c.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				b.c.log.Warn("accept", "broker", b.id, "err", err)
			}
			return
		}
		cc := newConn(b, nc)
		b.mu.Lock()
		if b.c.ctx.Err() != nil {
			b.mu.Unlock()
			nc.Close()
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
	return cc
}

func (cc *conn) logf(msg string, args ...any) {
	cc.b.c.log.Warn(msg, append([]any{"broker", cc.b.id, "remote", cc.nc.RemoteAddr().String()}, args...)...)
}

// readLoop reads frames until the connection ends or a frame is bad.
func (cc *conn) readLoop() {
	defer func() {
		cc.cancel()
		close(cc.out) // the writer drains what is queued, then exits
		cc.b.dropConn(cc)
	}()
	br := bufio.NewReaderSize(cc.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if !cc.waitMuted() {
			return
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if !errors.Is(err, io.EOF) && cc.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				cc.logf("read", "err", err)
			}
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 0 || size > cc.b.c.cfg.MaxRequestBytes {
			cc.logf("closing connection", "err", fmt.Errorf("%w: %d bytes, limit %d", ErrTooBig, size, cc.b.c.cfg.MaxRequestBytes))
			return
		}
		frame, pooled, err := readFrame(br, size)
		if err != nil {
			cc.logf("closing connection", "err", fmt.Errorf("%w: truncated frame: %v", ErrFrame, err))
			return
		}
		resp, err := cc.serve(frame)
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

// producePool holds frame buffers for Produce requests. A produce frame is
// the largest and most frequent request, and nothing of it outlives serve:
// kmsg copies strings, plog.Append writes the record bytes to the segment
// and keeps no reference, and the response is encoded into its own buffer.
// Other requests may keep slices of their frame (group metadata,
// assignments), so they get a fresh one.
var producePool bufPool

// readFrame reads a size-byte frame. For a Produce request (key 0) the
// bytes land in a pooled buffer, returned as pooled for producePool.put
// once the request has been served; otherwise pooled is nil.
func readFrame(br *bufio.Reader, size int32) (frame []byte, pooled *[]byte, err error) {
	if size < 2 || size > maxPooledBuf {
		frame = make([]byte, size)
		_, err = io.ReadFull(br, frame)
		return frame, nil, err
	}
	var key [2]byte
	if _, err := io.ReadFull(br, key[:]); err != nil {
		return nil, nil, err
	}
	if key != [2]byte{0, 0} {
		frame = make([]byte, size)
	} else {
		pooled = producePool.get(int(size))
		frame = *pooled
	}
	copy(frame, key[:])
	if _, err := io.ReadFull(br, frame[2:]); err != nil {
		if pooled != nil {
			producePool.put(pooled)
		}
		return nil, nil, err
	}
	return frame, pooled, nil
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
	var h header
	r := kbin.Reader{Src: frame}
	h.key = r.Int16()
	h.version = r.Int16()
	h.corr = r.Int32()
	h.clientID = r.NullableString()
	if !r.Ok() {
		return h, nil, fmt.Errorf("%w: short header", ErrFrame)
	}
	max, ok := maxVersion(h.key)
	if !ok || h.version < minVersion(h.key) || h.version > max {
		return h, nil, fmt.Errorf("%w: key %d (%s) version %d", ErrUnsupported, h.key, kmsg.NameForKey(h.key), h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return h, nil, fmt.Errorf("%w: bad header tags", ErrFrame)
		}
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d: %v", ErrFrame, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// serve handles one frame. A nil response with a nil error means nothing
// is sent back; an error closes the connection.
func (cc *conn) serve(frame []byte) (resp *response, err error) {
	h, req, err := parseRequest(frame)
	if err != nil {
		if errors.Is(err, ErrUnsupported) && h.key == int16(kmsg.ApiVersions) {
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
	for {
		r, ok := <-cc.out
		if !ok {
			return
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
// positioned copy otherwise.
func (cc *conn) sendSpan(s plog.Span) error {
	if cc.raw != nil {
		n, err := sendfileRaw(cc.raw, s.File, s.Pos, s.Len)
		cc.b.c.sendfileBytes.Add(n)
		return err
	}
	n, err := copySpan(cc.nc, s)
	cc.b.c.copyBytes.Add(n)
	return err
}
