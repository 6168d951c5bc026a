package brokerd

import "sync"

// bufPool reuses the large buffers of requests whose bytes die with the
// request: produce frames (conn.go) and the copy path's fetched spans
// (sendfile.go). Reusing them saves allocating and zeroing megabytes per
// request, and the garbage collection that follows.
type bufPool struct{ p sync.Pool } // of *[]byte

// maxPooledBuf bounds the buffers a bufPool keeps.
const maxPooledBuf = 16 << 20

// get returns a buffer of length n, a pooled one when it is large enough.
func (bp *bufPool) get(n int) *[]byte {
	if v, _ := bp.p.Get().(*[]byte); v != nil && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n)
	return &b
}

// tryGet returns a pooled buffer of length n, or nil when the pool has
// none that large: unlike get it never allocates, so a caller can grow its
// own buffer as bytes arrive instead.
func (bp *bufPool) tryGet(n int) *[]byte {
	v, _ := bp.p.Get().(*[]byte)
	if v == nil {
		return nil
	}
	if cap(*v) < n {
		bp.p.Put(v)
		return nil
	}
	*v = (*v)[:n]
	return v
}

// put returns buffers nothing refers to any more.
func (bp *bufPool) put(bufs ...*[]byte) {
	for _, b := range bufs {
		if cap(*b) <= maxPooledBuf {
			bp.p.Put(b)
		}
	}
}
