package drill

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy forwards every TCP connection it accepts to one target address and
// injects the faults of a network partition on demand:
//
//   - cut: every open connection is reset, and connections accepted while
//     the cut lasts are reset at once (the peer sees "connection reset",
//     as across a failed link or a restarted firewall);
//   - delay: every chunk is held this long before it is forwarded, both
//     ways (a congested or long link);
//   - resetResponses(n): the next n chunks coming back from the target are
//     forwarded half, then the connection is reset (a response cut in the
//     middle).
//
// A connection costs two goroutines, one per direction; at most
// proxyMaxConns
// connections are open at once and the accept loop waits for a slot, so
// the goroutines are bounded. close stops accepting, resets every
// connection and waits for every goroutine.
type proxy struct {
	ln     net.Listener
	target string
	slots  chan struct{} // one token per open connection
	quit   chan struct{} // closed by close
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[*proxyConn]struct{}
		down   bool
		delay  time.Duration
		resets int // responses still to cut
		closed bool
		stats  proxyStats
	}
}

// proxyStats count the faults that hit connections, so a scenario can
// tell a fault that landed from one that found nothing to break.
type proxyStats struct {
	Reset     int // open connections reset by a cut
	Refused   int // connections accepted and reset during a cut
	CutMidway int // responses cut halfway
}

// proxyConn is one forwarded connection: the client's side and the
// target's side.
type proxyConn struct {
	client, server net.Conn
	left           atomic.Int32 // directions still pumping
	once           sync.Once
}

// reset closes both sides with an RST rather than a FIN: a linger of 0
// drops what is unsent, as a broken link would.
func (c *proxyConn) reset() {
	c.once.Do(func() {
		resetConn(c.client)
		resetConn(c.server)
	})
}

func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

const proxyMaxConns = 64

// startProxy forwards connections accepted on ln to target until close.
func startProxy(ln net.Listener, target string) *proxy {
	p := &proxy{ln: ln, target: target, slots: make(chan struct{}, proxyMaxConns), quit: make(chan struct{})}
	p.mu.conns = make(map[*proxyConn]struct{})
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

// addr is where clients reach the target through the proxy.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		select {
		case p.slots <- struct{}{}:
		case <-p.quit:
			return
		}
		nc, err := p.ln.Accept()
		if err != nil {
			<-p.slots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: wait a little, not spin.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-p.quit:
				return
			}
			continue
		}
		c, ok := p.open(nc)
		if !ok {
			p.mu.Lock()
			p.mu.stats.Refused++
			p.mu.Unlock()
			resetConn(nc)
			<-p.slots
			continue
		}
		c.left.Store(2)
		p.wg.Add(2)
		go p.pump(c, c.server, c.client, false)
		go p.pump(c, c.client, c.server, true)
	}
}

// open dials the target for a connection the proxy accepted and registers
// the pair; false while cut or closed, or when the target does not answer.
// The dial runs on the accept loop: one at a time, so a target that does
// not answer holds only the loop, not goroutines.
func (p *proxy) open(nc net.Conn) (*proxyConn, bool) {
	if p.isDown() {
		return nil, false
	}
	srv, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return nil, false
	}
	c := &proxyConn{client: nc, server: srv}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.down || p.mu.closed {
		resetConn(srv)
		return nil, false
	}
	p.mu.conns[c] = struct{}{}
	return c, true
}

func (p *proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.down || p.mu.closed
}

// done is called by each direction's pump as it ends; the last one closes
// the connection and frees its slot.
func (p *proxy) done(c *proxyConn) {
	if c.left.Add(-1) > 0 {
		return
	}
	c.once.Do(func() { _ = c.client.Close(); _ = c.server.Close() })
	p.mu.Lock()
	delete(p.mu.conns, c)
	p.mu.Unlock()
	<-p.slots
}

// pump copies src to dst. At src's end it passes the end on (a half
// close, as TCP would); on any other failure, or a cut, it resets the
// connection so the other direction ends too. response marks the
// target-to-client direction, where resetResponses cuts.
func (p *proxy) pump(c *proxyConn, dst, src net.Conn, response bool) {
	defer p.wg.Done()
	defer p.done(c)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			delay := p.mu.delay
			cut := response && n > 1 && p.mu.resets > 0
			if cut {
				p.mu.resets--
				p.mu.stats.CutMidway++
			}
			p.mu.Unlock()
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-p.quit:
					t.Stop()
					c.reset()
					return
				}
			}
			if cut {
				_, _ = dst.Write(buf[:n/2])
				c.reset()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.reset()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
		if err != nil {
			c.reset()
			return
		}
	}
}

// cut resets every connection and refuses new ones until heal.
func (p *proxy) cut() {
	p.mu.Lock()
	p.mu.down = true
	conns := make([]*proxyConn, 0, len(p.mu.conns))
	for c := range p.mu.conns {
		conns = append(conns, c)
	}
	if !p.mu.closed {
		p.mu.stats.Reset += len(conns)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// heal ends a cut: new connections are forwarded again.
func (p *proxy) heal() {
	p.mu.Lock()
	p.mu.down = false
	p.mu.Unlock()
}

// setDelay holds every forwarded chunk d before writing it (0: none).
func (p *proxy) setDelay(d time.Duration) {
	p.mu.Lock()
	p.mu.delay = d
	p.mu.Unlock()
}

// resetResponses cuts the next n chunks from the target halfway and resets
// their connections.
func (p *proxy) resetResponses(n int) {
	p.mu.Lock()
	p.mu.resets += n
	p.mu.Unlock()
}

// stats returns the faults counted so far.
func (p *proxy) stats() proxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.stats
}

// pendingResets is how many response cuts are still to happen.
func (p *proxy) pendingResets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.resets
}

// close stops accepting, resets every connection and waits for every
// goroutine the proxy started.
func (p *proxy) close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	p.mu.Unlock()
	close(p.quit)
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}
