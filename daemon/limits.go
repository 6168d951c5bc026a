package daemon

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// maxRequestBody bounds what the admin API reads of a request body. No
// route takes a body (pause, resume and reload are named by their path), so
// the bound only stops a client from streaming into the server.
const maxRequestBody = 64 << 10

// limitListener accepts at most n connections at a time: Accept waits for a
// slot, so further clients wait in the kernel's backlog instead of each
// holding a goroutine and buffers in the server.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// limitConn gives its slot back once, on its first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// loopbackNames are the host names a browser uses for this host's
// loopback interface.
var loopbackNames = map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true}

// sameHostOnly refuses, with the reason, a request that a page in a browser
// could have sent on behalf of another site: one whose Host is not a
// loopback name with the admin port (DNS rebinding: the attacker's name
// resolving to 127.0.0.1), or that carries an Origin other than the admin
// address itself (a cross-site form or fetch). port is the admin listener's
// port, "" when it is not known (then any port is accepted).
func sameHostOnly(r *http.Request, port string) string {
	host, hport, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, hport = strings.Trim(r.Host, "[]"), "80"
	}
	if !loopbackNames[strings.ToLower(host)] || (port != "" && hport != port) {
		return "state-changing requests without a token must name this host's loopback address and admin port in Host (got " + quoteOrEmpty(r.Host) + "); set a token to use the admin API from elsewhere"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" {
		return "foreign Origin " + quoteOrEmpty(origin) + " refused"
	}
	oport := u.Port()
	if oport == "" {
		oport = "80"
	}
	if !loopbackNames[strings.ToLower(u.Hostname())] || (port != "" && oport != port) {
		return "foreign Origin " + quoteOrEmpty(origin) + " refused"
	}
	return ""
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return "nothing"
	}
	return `"` + s + `"`
}
