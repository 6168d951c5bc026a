package drill

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Binary is the strait executable that the scenarios run as child
// processes (`strait mirror` for mirror-crash, `strait broker` for
// broker-crash), so a kill -9 takes a whole process as it would in
// production. Empty: this process's own executable, which is right when
// it is strait itself; tests build the binary and set it.
var Binary string

// errNoBinary: a scenario that runs processes found no strait to run.
var errNoBinary = errors.New("drill: no strait binary to run")

func straitBinary() (string, error) {
	if Binary != "" {
		return Binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: %w: %w", ErrScenario, errNoBinary, err)
	}
	if strings.HasSuffix(exe, ".test") {
		return "", fmt.Errorf("%w: %w: %s is a test binary; set drill.Binary", ErrScenario, errNoBinary, exe)
	}
	return exe, nil
}

// child is one strait process a scenario started. Its output goes to a log
// file beside its data, for the error message when it misbehaves.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited and been reaped
}

// startChild runs bin with args; stdout, when not nil, receives the
// process's standard output (else it goes to the log with stderr).
func startChild(bin, name, logPath string, stdout io.Writer, args ...string) (*child, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %s log: %w", ErrScenario, name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = lf
	cmd.Stdout = lf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: starting %s: %w", ErrScenario, name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	return c, nil
}

// kill9 sends SIGKILL and waits until the process is gone.
func (c *child) kill9() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop asks the process to shut down cleanly (SIGTERM) and kills it when
// it has not exited within d.
func (c *child) stop(d time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		c.kill9()
		return fmt.Errorf("%w: %s did not stop within %v", ErrScenario, c.name, d)
	}
}

// exited reports whether the process has ended on its own.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's log, for an error message.
func (c *child) tail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// startMirrorProc runs `strait mirror` on a configuration file, without
// its admin API and without watching the file.
func startMirrorProc(bin, config, dir string) (*child, error) {
	return startChild(bin, "strait mirror", filepath.Join(dir, "mirror.log"), nil,
		"mirror", "--config", config, "--http", "", "--watch-interval", "0s", "--shutdown-timeout", "20s")
}

// brokerProc is one `strait broker` process serving a whole cluster.
type brokerProc struct {
	*child
	addrs []string
}

// startBrokerProc runs `strait broker` on dir with brokers brokers, the
// first listening on listen (port 0: free ports), and waits for its ready
// line.
func startBrokerProc(ctx context.Context, bin, name, dir, listen string, brokers int) (*brokerProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	pr, pw := io.Pipe()
	c, err := startChild(bin, name, dir+".log", pw, "broker", "--dir", dir, "--listen", listen,
		"--brokers", strconv.Itoa(brokers), "--partitions", "4")
	if err != nil {
		return nil, err
	}
	// The ready line, then the rest of stdout drained until the process
	// ends (the pipe's writer is closed when it has been reaped).
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() { <-c.done; pw.Close() }()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case l, ok := <-line:
		addrs, isReady := strings.CutPrefix(l, "ready ")
		if !ok || !isReady {
			c.kill9()
			return nil, fmt.Errorf("%w: %s did not get ready: %s", ErrScenario, name, c.tail())
		}
		return &brokerProc{child: c, addrs: strings.Split(addrs, ",")}, nil
	case <-t.C:
		c.kill9()
		return nil, fmt.Errorf("%w: %s not ready within a minute: %s", ErrScenario, name, c.tail())
	case <-ctx.Done():
		c.kill9()
		return nil, fmt.Errorf("%w: %w", ErrScenario, ctx.Err())
	}
}
