package brokerd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"strait/brokerd/plog"
)

// maxSendfileChunk bounds one sendfile(2) call; the kernel caps a call near
// 2 GiB anyway, and smaller chunks let the poller interleave.
const maxSendfileChunk = 1 << 20

// errShortFile reports a span past the end of its file (the segment was
// truncated or removed under the read).
var errShortFile = errors.New("brokerd: span past end of file")

// sendfile sends n bytes of f from off to the socket with sendfile(2). The
// offset is passed explicitly, so the file's own position is never used
// and concurrent sends of one segment cannot interfere. On EAGAIN the
// callback returns false and the runtime poller waits for the socket to
// drain, so no thread blocks. It returns the bytes sent.
func sendfile(tc *net.TCPConn, f *os.File, off, n int64) (int64, error) {
	sc, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	return sendfileRaw(sc, f, off, n)
}

// sendfileRaw is sendfile on a socket's raw connection, which a connection
// looks up once rather than per span.
func sendfileRaw(sc syscall.RawConn, f *os.File, off, n int64) (int64, error) {
	fc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int64
	var serr error
	cerr := fc.Control(func(ffd uintptr) {
		werr := sc.Write(func(sfd uintptr) bool {
			for sent < n {
				o := off + sent
				w, e := unix.Sendfile(int(sfd), int(ffd), &o, int(min(n-sent, maxSendfileChunk)))
				if w > 0 {
					sent += int64(w)
				}
				switch {
				case e == unix.EAGAIN:
					return false
				case e == unix.EINTR:
					continue
				case e != nil:
					serr = e
					return true
				case w == 0:
					serr = errShortFile
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	if serr != nil {
		return sent, fmt.Errorf("brokerd: sendfile: %w", serr)
	}
	return sent, nil
}

// writevMore writes bufs with sendmsg(2) and MSG_MORE: the kernel holds
// the bytes until the next send without the flag (the sendfile of the span
// that follows them), so a response's framing and its records leave as one
// unit. Sent alone, the small header would wake the client, which would
// then find the records missing and go back to wait: one more wake-up and
// read per fetch, which at 16 KiB costs more than the copy sendfile saves.
// bufs is consumed.
func writevMore(sc syscall.RawConn, bufs [][]byte) error {
	var werr error
	err := sc.Write(func(fd uintptr) bool {
		for {
			// Drop what is sent (and empty buffers).
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
			if len(bufs) == 0 {
				return true
			}
			n, e := unix.SendmsgBuffers(int(fd), bufs, nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			switch {
			case e == unix.EAGAIN:
				return false
			case e == unix.EINTR:
				continue
			case e != nil:
				werr = e
				return true
			}
			for n > 0 {
				k := min(n, len(bufs[0]))
				bufs[0] = bufs[0][k:]
				n -= k
				if len(bufs[0]) == 0 {
					bufs = bufs[1:]
				}
			}
		}
	})
	if werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("brokerd: write: %w", werr)
	}
	return nil
}

// setCork sets TCP_CORK. While it is set the kernel sends only full
// segments, so a response whose records are followed by more bytes (the
// tags closing a flexible Fetch response) leaves whole when it is cleared.
func setCork(sc syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	err := sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
	if serr == nil {
		serr = err
	}
	if serr != nil {
		return fmt.Errorf("brokerd: TCP_CORK: %w", serr)
	}
	return nil
}

// copyChunk is the copy path's unit: a span is read and written this
// much at a time, through one pooled buffer.
const copyChunk = 256 << 10

// copySpan is the copy path: positioned reads into a pooled chunk, then
// writes, so memory per connection stays one chunk however large the span.
func copySpan(w io.Writer, s plog.Span) (int64, error) {
	bp := copyPool.get(copyChunk)
	defer copyPool.put(bp)
	buf := *bp
	var done int64
	for done < s.Len {
		n := min(int64(len(buf)), s.Len-done)
		if _, err := s.File.ReadAt(buf[:n], s.Pos+done); err != nil {
			return done, fmt.Errorf("brokerd: read span: %w", err)
		}
		m, err := w.Write(buf[:n])
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// copyPool holds the copy path's chunks and the group journal's span
// buffers (readSpan).
var copyPool bufPool

// readSpan reads a whole span into a buffer from copyPool (copy path);
// copyPool.put returns it.
func readSpan(s plog.Span) (*[]byte, error) {
	b := copyPool.get(int(s.Len))
	if _, err := s.File.ReadAt(*b, s.Pos); err != nil {
		copyPool.put(b)
		return nil, fmt.Errorf("brokerd: read span: %w", err)
	}
	return b, nil
}

// warmChunk is the unit warm checks and loads.
const warmChunk = 8 << 20

// smallWarm is the span size up to which warm skips the residency check.
const smallWarm = 128 << 10

// warm makes sure a span's pages are in the page cache, loading those that
// are not by sendfile-ing them to /dev/null: the kernel reads the pages
// (waiting for the disk if they are cold) but copies nothing. Doing this in
// the handler, before the response is queued, means the writer's later
// sendfile never waits on the disk, so one cold read cannot stall every
// response queued behind it (KAFKA-7504). Most fetches read recently
// written data that is already cached, so each chunk is first checked with
// cachestat(2) (Linux 6.5+): one call that counts the range's cached pages
// without touching them, cheaper than even a 16 KiB /dev/null pass. On
// older kernels chunks above smallWarm are checked with mincore(2) instead,
// and smaller ones are simply loaded. It returns the bytes it had to load.
func warm(devnull *os.File, s plog.Span) (int64, error) {
	fc, err := s.File.SyscallConn()
	if err != nil {
		return 0, err
	}
	var loaded int64
	var serr error
	cerr := fc.Control(func(ffd uintptr) {
		for done := int64(0); done < s.Len && serr == nil; {
			n := min(s.Len-done, warmChunk)
			pos := s.Pos + done
			done += n
			if ok, err := cached(int(ffd), pos, n); err == nil {
				if ok {
					continue
				}
			} else if n > smallWarm {
				// Below smallWarm one /dev/null pass costs less than the
				// three calls of the mincore check.
				if ok, err := plog.Resident(s.File, pos, n); err == nil && ok {
					continue
				}
			}
			var w int64
			w, serr = devnullSendfile(devnull, int(ffd), pos, n)
			loaded += w
		}
	})
	if serr == nil {
		serr = cerr
	}
	return loaded, serr
}

func devnullSendfile(devnull *os.File, ffd int, pos, n int64) (int64, error) {
	var done int64
	for done < n {
		o := pos + done
		w, e := unix.Sendfile(int(devnull.Fd()), ffd, &o, int(n-done))
		if w > 0 {
			done += int64(w)
		}
		if e == unix.EINTR {
			continue
		}
		if e != nil {
			return done, e
		}
		if w == 0 {
			return done, errShortFile
		}
	}
	return done, nil
}

var pageSize = int64(os.Getpagesize())

// noCachestat is set once cachestat(2) turns out to be missing.
var noCachestat atomic.Bool

// errNoCachestat reports a kernel without cachestat(2).
var errNoCachestat = errors.New("brokerd: cachestat unavailable")

// cached reports whether every page of fd[pos:pos+n] is in the page cache,
// with one cachestat(2) call.
func cached(fd int, pos, n int64) (bool, error) {
	if noCachestat.Load() {
		return false, errNoCachestat
	}
	start := pos &^ (pageSize - 1)
	end := (pos + n + pageSize - 1) &^ (pageSize - 1)
	r := unix.CachestatRange{Off: uint64(start), Len: uint64(end - start)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(fd), &r, &st, 0); err != nil {
		if err == unix.ENOSYS || err == unix.EPERM {
			// EPERM: a seccomp filter that predates the call.
			noCachestat.Store(true)
		}
		return false, err
	}
	return int64(st.Cache) >= (end-start)/pageSize, nil
}
