package brokerd

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"strait/brokerd/plog"
)

// residentPages counts the pages of f[off:off+n] in the page cache.
func residentPages(t *testing.T, f *os.File, off, n int64) (resident, total int) {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pg := int64(os.Getpagesize())
	vec := make([]byte, (n+pg-1)/pg)
	// x/sys/unix has no mincore wrapper; the raw call is simple.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	for _, v := range vec {
		if v&1 != 0 {
			resident++
		}
	}
	return resident, len(vec)
}

// warm brings a cold span into the page cache before the writer needs it.
func TestWarmLoadsPageCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 4<<20)
	rand.Read(data)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// After fsync the pages are clean, so DONTNEED really drops them.
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	const off, n = 1 << 20, 2 << 20
	if res, _ := residentPages(t, f, off, n); res > 0 {
		skipUnlessRequired(t, "STRAIT_REQUIRE_COLD_CACHE", "cannot make the file cold here (%d pages stay resident)", res)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	w, err := warm(devnull, plog.Span{File: f, Pos: off, Len: n})
	if err != nil || w != n {
		t.Fatalf("warm: %d bytes, %v", w, err)
	}
	if res, total := residentPages(t, f, off, n); res != total {
		t.Fatalf("%d of %d pages resident after warm", res, total)
	}
}

// sendfile sends exactly the span, at its offset, without moving the
// file position.
func TestSendfileSpan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const off, n = 12345, 2<<20 + 77
	sent, err := sendfile(c.(*net.TCPConn), f, off, n)
	c.Close()
	if err != nil || sent != n {
		t.Fatalf("sendfile: %d, %v", sent, err)
	}
	b := <-got
	if len(b) != n || string(b) != string(data[off:off+n]) {
		t.Fatalf("received %d bytes, want the %d-byte span", len(b), n)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
		t.Fatalf("file position moved to %d", pos)
	}
	// A span past the end of the file is an error, not a hang.
	c2, _ := net.Dial("tcp", ln.Addr().String())
	defer c2.Close()
	if _, err := sendfile(c2.(*net.TCPConn), f, int64(len(data))-10, 100); err == nil {
		t.Fatal("short file not reported")
	}
}

// cached tells resident spans from cold ones with cachestat(2).
func TestCachedSpan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 1<<20)
	rand.Read(data)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	ok, err := cached(int(f.Fd()), 4097, 64<<10)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		skipUnlessRequired(t, "STRAIT_REQUIRE_COLD_CACHE", "no cachestat(2) here (Linux 6.5 or later): %v", err)
	}
	if err != nil || !ok {
		t.Fatalf("just-written span: cached = %v, %v", ok, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if res, _ := residentPages(t, f, 0, 1<<20); res > 0 {
		skipUnlessRequired(t, "STRAIT_REQUIRE_COLD_CACHE", "cannot make the file cold here (%d pages stay resident)", res)
	}
	if ok, err := cached(int(f.Fd()), 4097, 64<<10); err != nil || ok {
		t.Fatalf("cold span: cached = %v, %v", ok, err)
	}
}
