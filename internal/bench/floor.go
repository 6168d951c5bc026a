package bench

// The physical floor of a mirror: the same bytes over the same two
// loopback hops with the kernel alone. A sender process sendfile(2)s the
// source broker's segment files to a relay process, which splice(2)s them
// from its socket through a pipe into its socket to a sink process, which
// read(2)s and discards them. The floor's CPU is the three processes' own
// user+system time (their rusage at exit), its throughput the sink's bytes
// over the time from its first byte to EOF. No Kafka protocol, no
// checksums, no user-space copy but the sink's read.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// floorResult is one floor transfer.
type floorResult struct {
	bytes int64
	wall  time.Duration
	cpu   time.Duration // sender + relay + sink
}

// floorRun moves the files passes times through sender, relay and sink.
func floorRun(files []string, passes int) (floorResult, error) {
	ctx := context.Background()
	sink, err := startChild(ctx, "floor-sink", nil)
	if err != nil {
		return floorResult{}, err
	}
	defer sink.kill()
	relay, err := startChild(ctx, "floor-relay", []string{"--to", sink.info})
	if err != nil {
		return floorResult{}, err
	}
	defer relay.kill()
	send, err := startChild(ctx, "floor-send", append([]string{"--to", relay.info, "--passes", strconv.Itoa(passes)}, files...))
	if err != nil {
		return floorResult{}, err
	}
	defer send.kill()
	line, err := sink.line()
	if err != nil {
		return floorResult{}, fmt.Errorf("%w: floor sink: %v: %s", errBench, err, sink.stderr.String())
	}
	var r floorResult
	var nanos int64
	if _, err := fmt.Sscanf(line, "done %d %d", &r.bytes, &nanos); err != nil {
		return floorResult{}, fmt.Errorf("%w: floor sink said %q", errBench, line)
	}
	r.wall = time.Duration(nanos)
	for _, c := range []*child{send, relay, sink} {
		if err := c.stop(); err != nil {
			return floorResult{}, err
		}
		st := c.cmd.ProcessState
		r.cpu += st.UserTime() + st.SystemTime()
	}
	return r, nil
}

// floorSink accepts one connection, reads and discards until EOF, and
// prints "done <bytes> <nanoseconds from first byte to EOF>".
func floorSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	ln.Close()
	defer c.Close()
	buf := make([]byte, 1<<20)
	var total int64
	var start time.Time
	for {
		n, err := c.Read(buf)
		if n > 0 && total == 0 {
			start = time.Now()
		}
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	fmt.Printf("done %d %d\n", total, time.Since(start).Nanoseconds())
	return nil
}

// floorRelay accepts one connection and splices everything it receives on
// to --to, through a pipe, until EOF.
func floorRelay(args []string) error {
	fs := flag.NewFlagSet("floor-relay", flag.ContinueOnError)
	to := fs.String("to", "", "sink address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	in, err := ln.Accept()
	if err != nil {
		return err
	}
	ln.Close()
	defer in.Close()
	out, err := net.Dial("tcp", *to)
	if err != nil {
		return err
	}
	defer out.Close()
	return splice(in.(*net.TCPConn), out.(*net.TCPConn))
}

// splice moves in's bytes to out through a pipe, never into user space.
// Both sockets stay non-blocking under Go's poller: a splice that would
// block returns EAGAIN and the raw-conn callback waits for readiness.
func splice(in, out *net.TCPConn) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	const pipeSize = 1 << 20
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, pipeSize); err != nil {
		return err
	}
	rin, err := in.SyscallConn()
	if err != nil {
		return err
	}
	rout, err := out.SyscallConn()
	if err != nil {
		return err
	}
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	for {
		var n int64
		var serr error
		err := rin.Read(func(fd uintptr) bool {
			n, serr = unix.Splice(int(fd), nil, p[1], nil, pipeSize, flags)
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return out.CloseWrite()
		}
		for n > 0 {
			var m int64
			err := rout.Write(func(fd uintptr) bool {
				m, serr = unix.Splice(p[0], nil, int(fd), nil, int(n), flags)
				return serr != unix.EAGAIN
			})
			if err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			n -= m
		}
	}
}

// floorSend connects to --to and sendfiles the files, --passes times over.
func floorSend(args []string) error {
	fs := flag.NewFlagSet("floor-send", flag.ContinueOnError)
	to := fs.String("to", "", "relay address")
	passes := fs.Int("passes", 1, "times to send the files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Println("ready")
	c, err := net.Dial("tcp", *to)
	if err != nil {
		return err
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	for range *passes {
		for _, path := range fs.Args() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			// TCPConn.ReadFrom of an *os.File is sendfile(2) on Linux.
			_, err = tc.ReadFrom(f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tc.CloseWrite()
}

// filesSize is the total size of files.
func filesSize(files []string) (int64, error) {
	var n int64
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errBench, err)
		}
		n += st.Size()
	}
	return n, nil
}
