package bench

// Child processes of bench cost. Every process whose CPU time is measured
// (brokers, the mirror, the floor's sender, relay and sink) is this binary
// re-executed with RoleEnv naming its role, so its CPU counters hold its
// own work and nothing of the harness: the producer that fills the source,
// the client that polls the destination, the other processes.
//
// A server child (brokerd, null, mirror) speaks a line protocol:
//
//	child  → parent (stdout): "ready <info>" once it serves, then "ok" per command
//	parent → child  (stdin):  "profile <path>"  start a CPU profile into path
//	                          "unprofile"       stop it (the file is complete at "ok")
//	                          "run"             start the mirror's engine (mirror only)
//	                          EOF               shut down cleanly and exit 0
//
// so a child whose parent dies stops too. The floor's children run one
// transfer and exit on their own.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"strait/brokerd"
	"strait/mirror"
	"strait/pipelines"
)

// RoleEnv names the role of a child process of the bench: with it set,
// Main runs that role with its arguments instead of a target.
const RoleEnv = "STRAIT_BENCH_ROLE"

// verboseEnv, set for a child, sends its logs to its stderr, which the
// bench passes on to its own (bench cost -v).
const verboseEnv = "STRAIT_BENCH_VERBOSE"

// child is a running child process of the bench.
type child struct {
	role   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *bytes.Buffer
	info   string // after "ready "
}

// startChild runs this binary as role with args and waits for its ready
// line (for roles that print one: every role does).
func startChild(ctx context.Context, role string, args []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: find the strait-bench binary: %v", errBench, err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), RoleEnv+"="+role, ChildEnv+"=1")
	c := &child{role: role, cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = c.stderr
	if os.Getenv(verboseEnv) != "" {
		cmd.Stderr = io.MultiWriter(c.stderr, os.Stderr)
	}
	if c.in, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	c.out = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %v", errBench, role, err)
	}
	line, err := c.line()
	if err != nil || !strings.HasPrefix(line, "ready") {
		c.kill()
		return nil, fmt.Errorf("%w: %s did not start: %q %v: %s", errBench, role, line, err, strings.TrimSpace(c.stderr.String()))
	}
	c.info = strings.TrimSpace(strings.TrimPrefix(line, "ready"))
	return c, nil
}

func (c *child) line() (string, error) {
	s, err := c.out.ReadString('\n')
	return strings.TrimSpace(s), err
}

// command sends one protocol line and waits for "ok".
func (c *child) command(cmd string) error {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return fmt.Errorf("%w: %s: %v", errBench, c.role, err)
	}
	if got, err := c.line(); err != nil || got != "ok" {
		return fmt.Errorf("%w: %s answered %q to %q: %v: %s", errBench, c.role, got, cmd, err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// cpu is the child's CPU time so far (user + system, every thread).
func (c *child) cpu() (time.Duration, error) { return procCPU(c.cmd.Process.Pid) }

// stop closes the child's stdin and waits for it to exit.
func (c *child) stop() error {
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %s: %v: %s", errBench, c.role, err, strings.TrimSpace(c.stderr.String()))
		}
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w: %s did not stop", errBench, c.role)
	}
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// userHZ is the unit of /proc/<pid>/stat's CPU times: the kernel reports
// them in USER_HZ ticks, 100 a second on every Linux architecture Go runs
// on.
const userHZ = 100

// procCPU reads utime+stime of process pid, summed over all of its threads,
// the dead ones included, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	// The command name (field 2) is parenthesised and may hold spaces;
	// fields are counted after its closing parenthesis: state is field 3,
	// utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: unreadable /proc/%d/stat", errBench, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: short /proc/%d/stat", errBench, pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: /proc/%d/stat: %v", errBench, pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// runRole is Main for a child process.
func runRole(role string, args []string) int {
	var err error
	switch role {
	case "brokerd", "null", "mirror":
		err = serveRole(role, args)
	case "floor-sink":
		err = floorSink()
	case "floor-relay":
		err = floorRelay(args)
	case "floor-send":
		err = floorSend(args)
	default:
		err = fmt.Errorf("%w: unknown role %q", errBench, role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "strait-bench %s: %v\n", role, err)
		return 1
	}
	return 0
}

// serveRole runs a server child: it starts the server, prints its ready
// line and then follows the commands on stdin until EOF.
func serveRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	dir := fs.String("dir", "", "data folder")
	partitions := fs.Int("partitions", 1, "default partitions")
	src := fs.String("src", "", "source bootstrap")
	dst := fs.String("dst", "", "destination bootstrap")
	topic := fs.String("topic", "", "source topic")
	suffix := fs.String("suffix", "", "destination suffix")
	mode := fs.String("mode", "", "mirror mode")
	compression := fs.String("compression", "none", "record mode's codec")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ready string
	var shutdown func() error
	var run func() // the mirror's engine starts on "run", so process start-up is not timed
	switch role {
	case "brokerd":
		c, err := brokerd.Start(ctx, brokerd.Config{Dir: *dir, Brokers: 1, Partitions: int32(*partitions)})
		if err != nil {
			return err
		}
		ready = strings.Join(c.Addrs(), ",")
		shutdown = func() error {
			if err := c.Close(); err != nil && !errors.Is(err, brokerd.ErrClosed) {
				return err
			}
			return nil
		}
	case "null":
		nb, err := startNullBroker(int32(*partitions))
		if err != nil {
			return err
		}
		ready = nb.Addr()
		shutdown = func() error { nb.Close(); return nil }
	case "mirror":
		cfg := benchPipelineConfig(strings.Split(*src, ","), strings.Split(*dst, ","), *topic, *suffix, pipelines.Mode(*mode), *dir, *compression)
		logger := slog.New(slog.DiscardHandler)
		if os.Getenv(verboseEnv) != "" {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		e, err := mirror.New(cfg, mirror.Options{Logger: logger})
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		run = func() { go func() { done <- e.Run(ctx) }() }
		ready = "mirror"
		shutdown = func() error {
			cancel()
			if run != nil {
				return nil // never ran
			}
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		}
	}
	fmt.Printf("ready %s\n", ready)
	var profile *os.File
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "profile":
			f, err := os.Create(arg)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			profile = f
		case "run":
			if run == nil {
				return fmt.Errorf("%w: %s has nothing to run", errBench, role)
			}
			run()
			run = nil
		case "unprofile":
			if profile != nil {
				pprof.StopCPUProfile()
				if err := profile.Close(); err != nil {
					return err
				}
				profile = nil
			}
		default:
			return fmt.Errorf("%w: unknown command %q", errBench, sc.Text())
		}
		fmt.Println("ok")
	}
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	return shutdown()
}
