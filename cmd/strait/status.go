package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"strait/daemon"
	"strait/internal/cli"
	"strait/mirror"
)

// statusOpts are strait status's flags.
type statusOpts struct {
	addr, tokenFile string
	asJSON, watch   bool
	interval        time.Duration
}

func statusFlags(o *statusOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.StringVar(&o.addr, "http", "127.0.0.1:7070", "the daemon's admin API address (host:port or URL)")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	fs.BoolVar(&o.watch, "watch", false, "refresh until interrupted")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "refresh interval with --watch")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the admin API bearer token (else $STRAIT_TOKEN)")
	return fs
}

// runStatus is `strait status`: it reads a running daemon's admin API.
func runStatus(args []string) error {
	var o statusOpts
	if _, err := cli.Parse(statusFlags(&o), args, 0); err != nil {
		return err
	}
	if o.interval <= 0 {
		return fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	c := daemon.NewClient(o.addr, token)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	show := func() error {
		st, err := c.Pipelines(ctx)
		if err != nil {
			return err
		}
		rd, err := c.Readiness(ctx)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Ready     daemon.Readiness        `json:"readiness"`
				Pipelines []mirror.PipelineStatus `json:"pipelines"`
			}{rd, st})
		}
		audits := map[string]mirror.AuditStatus{}
		for _, p := range st {
			if a, err := c.Audit(ctx, p.Name); err == nil {
				audits[p.Name] = a
			}
		}
		if err := writeTable(os.Stdout, st, audits); err != nil {
			return err
		}
		if rd.Ready {
			fmt.Println("\nready")
		} else {
			fmt.Printf("\nNOT READY:\n  %s\n", strings.Join(rd.Reasons, "\n  "))
		}
		return nil
	}
	if !o.watch {
		err := show()
		if err != nil && !errors.Is(err, daemon.ErrAPI) {
			return fmt.Errorf("cannot reach the admin API at %s (is `strait mirror --http %s` running?): %w", o.addr, o.addr, err)
		}
		return err
	}
	tty := statusIsTTY(os.Stdout)
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		if tty && !o.asJSON {
			fmt.Print("\033[H\033[2J") // home and clear: redraw in place
		}
		fmt.Printf("%s  %s\n", time.Now().Format(time.TimeOnly), o.addr)
		if err := show(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Keep watching through a daemon restart; say what happened.
			fmt.Printf("error: %s\n", strings.TrimSpace(err.Error()))
		}
		if !tty {
			fmt.Println()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// statusIsTTY reports whether f is a terminal.
func statusIsTTY(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
