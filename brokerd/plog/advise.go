package plog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Advise prepares a read of about n bytes from offset without blocking on
// the disk: it finds where the read would start (through the offset
// index, reading no record data), reports whether those bytes are all in
// the page cache and, when they are not, asks the kernel to read them in
// the background (posix_fadvise WILLNEED). A caller that must not hold a
// thread while the disk works (brokerd's fetch handler: a thread blocked
// in pread holds a Go scheduler slot, see brokerd/doc.go) calls Advise,
// waits on a timer while it reports false, then calls Read, which finds
// the pages cached. The range is a hint: Read may read a few pages more
// (the batch headers past it), never a whole cold segment.
func (l *Log) Advise(offset, n int64) (ready bool, err error) {
	return l.advise(offset, n, true)
}

// Ready reports whether the bytes an earlier Advise asked for have been
// read. It trusts only mincore(2): cachestat(2) counts the pages Advise
// put in flight as cached at once.
func (l *Log) Ready(offset, n int64) (bool, error) {
	return l.advise(offset, n, false)
}

func (l *Log) advise(offset, n int64, first bool) (ready bool, err error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return false, ErrClosed
	}
	if offset < l.mu.logStart || offset >= l.mu.next || n <= 0 {
		l.mu.RUnlock()
		return true, nil // nothing to read, or Read answers the error
	}
	segs := l.mu.segs
	i := max(sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })-1, 0)
	seg := segs[i]
	if err := l.ensureLoaded(seg); err != nil {
		l.mu.RUnlock()
		return false, err
	}
	f, err := l.files.acquire(&seg.cf)
	size, idx := seg.size, seg.idx
	l.mu.RUnlock()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer l.files.release(&seg.cf)
	pos := int64(0)
	if rel := offset - seg.base; rel > 0 {
		pos = idx.lookup(uint32(min(rel, math.MaxUint32)))
	}
	n = min(n, size-pos)
	if n <= 0 {
		return true, nil
	}
	// cachestat(2) is one cheap call, right for the common case of hot
	// data; it counts pages still being read, so a "no" is confirmed by
	// mincore before more is asked of the disk.
	if first {
		if ok, err := cachestatFull(f, pos, n); err == nil && ok {
			return true, nil
		}
	}
	ok, err := Resident(f, pos, n)
	if err != nil || ok || !first {
		return ok, err
	}
	if err := unix.Fadvise(int(f.Fd()), pos, n, unix.FADV_WILLNEED); err != nil {
		return false, fmt.Errorf("%w: fadvise: %w", ErrIO, err)
	}
	return false, nil
}

var pageSize = int64(os.Getpagesize())

// noCachestat is set once cachestat(2) turns out to be missing (or
// refused by a seccomp filter that predates it).
var noCachestat atomic.Bool

var errNoCachestat = errors.New("plog: cachestat unavailable")

// cachestatFull reports whether cachestat(2) counts every page of
// f[pos:pos+n] in the page cache.
func cachestatFull(f *os.File, pos, n int64) (bool, error) {
	if noCachestat.Load() {
		return false, errNoCachestat
	}
	start := pos &^ (pageSize - 1)
	end := (pos + n + pageSize - 1) &^ (pageSize - 1)
	r := unix.CachestatRange{Off: uint64(start), Len: uint64(end - start)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		if err == unix.ENOSYS || err == unix.EPERM {
			noCachestat.Store(true)
		}
		return false, err
	}
	return int64(st.Cache) >= (end-start)/pageSize, nil
}

// Resident reports whether every page of f[pos:pos+n] is in the page cache
// and read: the range is mapped (nothing is faulted in) and asked with
// mincore(2), which, unlike cachestat(2), does not count pages whose read
// is still in flight.
func Resident(f *os.File, pos, n int64) (bool, error) {
	start := pos &^ (pageSize - 1)
	length := pos + n - start
	if length <= 0 {
		return true, nil
	}
	m, err := unix.Mmap(int(f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false, err
	}
	defer unix.Munmap(m)
	var stack [256]byte
	vec := stack[:]
	if pages := int((length + pageSize - 1) / pageSize); pages > len(vec) {
		vec = make([]byte, pages)
	} else {
		vec = vec[:pages]
	}
	// x/sys/unix has no mincore wrapper.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return false, e
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false, nil
		}
	}
	return true, nil
}
