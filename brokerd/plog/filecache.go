package plog

import (
	"os"
	"sync"
)

// FileCache bounds the number of segment files open at once across logs.
//
// Every segment owns one cachedFile. A file is opened on first use and
// stays open while it is referenced (an append in progress, a ReadResult
// not yet released); unreferenced files sit in an LRU list and are closed
// when more than max are open. When every open file is referenced the cache
// lets the count exceed max rather than break a read: the surplus closes as
// soon as its last reference goes.
type FileCache struct {
	mu struct {
		sync.Mutex
		max  int
		open int
		// idle is a sentinel of the circular LRU list of open,
		// unreferenced files; idle.next is the most recently used.
		idle cachedFile
	}
}

// NewFileCache returns a cache holding at most max open files.
func NewFileCache(max int) *FileCache {
	if max < 1 {
		max = 1
	}
	c := &FileCache{}
	c.mu.max = max
	c.mu.idle.next = &c.mu.idle
	c.mu.idle.prev = &c.mu.idle
	return c
}

// Open reports how many files the cache holds open right now.
func (c *FileCache) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.open
}

// cachedFile is one segment file as the cache sees it. Its fields are
// guarded by the owning cache's mutex.
type cachedFile struct {
	path       string
	writable   bool
	f          *os.File
	refs       int
	dead       bool // the segment is gone: close at the last release
	prev, next *cachedFile
}

func (cf *cachedFile) unlinkLocked() {
	if cf.prev != nil {
		cf.prev.next = cf.next
		cf.next.prev = cf.prev
		cf.prev, cf.next = nil, nil
	}
}

// acquire returns the open file, opening it if needed, and pins it until
// the matching release.
func (c *FileCache) acquire(cf *cachedFile) (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cf.f == nil {
		flag := os.O_RDONLY
		if cf.writable {
			flag = os.O_RDWR | os.O_CREATE
		}
		// Opening under the cache lock keeps the open count exact; an
		// open(2) of an existing file is a short syscall.
		f, err := os.OpenFile(cf.path, flag, 0o644)
		if err != nil {
			return nil, err
		}
		cf.f = f
		c.mu.open++
	}
	cf.unlinkLocked()
	cf.refs++
	c.evictLocked()
	return cf.f, nil
}

// release drops one reference taken by acquire.
func (c *FileCache) release(cf *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.refs--
	if cf.refs > 0 {
		return
	}
	if cf.dead {
		c.closeLocked(cf)
		return
	}
	// Push to the front (most recently used).
	idle := &c.mu.idle
	cf.next = idle.next
	cf.prev = idle
	idle.next.prev = cf
	idle.next = cf
	c.evictLocked()
}

// kill marks the file as belonging to a deleted or replaced segment: it is
// closed now if unused, else at its last release. Readers holding it keep
// reading the old inode, which Linux keeps alive while it is open.
func (c *FileCache) kill(cf *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.dead = true
	if cf.refs == 0 {
		c.closeLocked(cf)
	}
}

func (c *FileCache) closeLocked(cf *cachedFile) {
	cf.unlinkLocked()
	if cf.f != nil {
		cf.f.Close()
		cf.f = nil
		c.mu.open--
	}
}

func (c *FileCache) evictLocked() {
	idle := &c.mu.idle
	for c.mu.open > c.mu.max && idle.prev != idle {
		c.closeLocked(idle.prev)
	}
}
