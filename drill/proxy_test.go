package drill

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads, until the test
// ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func testProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(ln, target)
	t.Cleanup(p.close)
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// roundTrip writes msg and reads as many bytes back; the error is the
// read's.
func roundTrip(c net.Conn, msg []byte) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	n, err := io.ReadFull(c, got)
	return got[:n], err
}

func TestProxyForwardsWithDelay(t *testing.T) {
	p := testProxy(t, echoServer(t))
	c := dial(t, p.addr())
	msg := bytes.Repeat([]byte("strait"), 10_000) // several chunks
	if got, err := roundTrip(c, msg); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
	p.setDelay(20 * time.Millisecond)
	if got, err := roundTrip(c, []byte("late")); err != nil || string(got) != "late" {
		t.Fatalf("delayed round trip: %q, %v", got, err)
	}
}

// TestProxyCut: a cut resets open connections and refuses new ones; after
// heal new connections work again.
func TestProxyCut(t *testing.T) {
	p := testProxy(t, echoServer(t))
	c := dial(t, p.addr())
	if _, err := roundTrip(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	p.cut()
	if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
		t.Fatal("read on a cut connection succeeded")
	}
	// The reset may come before the dial returns (it fails then) or after
	// (the round trip fails): either way nothing is forwarded.
	if refused, err := net.Dial("tcp", p.addr()); err == nil {
		_ = refused.SetDeadline(time.Now().Add(20 * time.Second))
		got, err := roundTrip(refused, []byte("y"))
		refused.Close()
		if err == nil {
			t.Fatalf("a connection made during the cut echoed %q", got)
		}
	}
	waitUntil(t, func() bool { return p.stats().Refused == 1 })
	p.heal()
	if got, err := roundTrip(dial(t, p.addr()), []byte("z")); err != nil || string(got) != "z" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
	if st := p.stats(); st.Reset != 1 || st.Refused != 1 || st.CutMidway != 0 {
		t.Fatalf("stats %+v, want 1 reset and 1 refused", st)
	}
}

// TestProxyResetMidResponse: the next response is forwarded half, then the
// connection is reset; the one after goes through whole.
func TestProxyResetMidResponse(t *testing.T) {
	p := testProxy(t, echoServer(t))
	p.resetResponses(1)
	c := dial(t, p.addr())
	got, err := roundTrip(c, []byte("0123456789"))
	if err == nil || len(got) >= 10 {
		t.Fatalf("cut response: %q, %v; want a part and an error", got, err)
	}
	if p.pendingResets() != 0 || p.stats().CutMidway != 1 {
		t.Fatalf("%d resets pending, stats %+v", p.pendingResets(), p.stats())
	}
	if got, err := roundTrip(dial(t, p.addr()), []byte("0123456789")); err != nil || string(got) != "0123456789" {
		t.Fatalf("next response: %q, %v", got, err)
	}
}

// TestProxyBoundedAndClosed: more connections than the proxy serves at once
// cost no more goroutines than its bound, and close ends every goroutine
// it started.
func TestProxyBoundedAndClosed(t *testing.T) {
	target := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	p := startProxy(ln, target)
	for range proxyMaxConns + 20 {
		dial(t, p.addr())
	}
	// Wait until the proxy has taken every slot it can.
	waitUntil(t, func() bool { return len(p.slots) == proxyMaxConns })
	// The proxy's own: the accept loop and two per served connection.
	// The echo server's: one per connection the proxy opened to it.
	if n := runtime.NumGoroutine() - before; n > 1+3*proxyMaxConns {
		t.Fatalf("%d goroutines for %d connections (bound %d)", n, proxyMaxConns+20, 1+3*proxyMaxConns)
	}
	p.close()
	if len(p.slots) != 0 {
		t.Fatalf("%d connections still open after close", len(p.slots))
	}
	p.mu.Lock()
	open := len(p.mu.conns)
	p.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d connections registered after close", open)
	}
}

// waitUntil polls cond for up to 20 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
