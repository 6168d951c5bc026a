package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"strait/daemon"
	"strait/internal/cli"
)

// mirrorOpts are strait mirror's flags.
type mirrorOpts struct {
	config, httpAddr, logFormat, logLevel, tokenFile string
	shutdown, watch, stall                           time.Duration
	trace, traceEndpoint                             string
	id                                               string
}

func mirrorFlags(o *mirrorOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "configuration: a YAML file or a folder of them (required)")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:7070", `admin API address ("" disables it)`)
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the admin API bearer token (else $STRAIT_TOKEN)")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful stop may take")
	fs.DurationVar(&o.watch, "watch-interval", 2*time.Second, "how often to poll the configuration for changes (0 disables)")
	fs.StringVar(&o.trace, "trace", "", "span exporter: stdout or otlp (off by default)")
	fs.StringVar(&o.traceEndpoint, "trace-endpoint", "", "OTLP/HTTP collector URL for --trace otlp, e.g. http://127.0.0.1:4318 (default: the OTEL_EXPORTER_OTLP_* variables)")
	fs.StringVar(&o.id, "id", "", "this daemon's id in its workers group (default: host name and process id)")
	fs.DurationVar(&o.stall, "stall-after", time.Minute, "how long a lagging partition may go without progress before /readyz fails")
	return fs
}

// runMirror is `strait mirror`: flag parsing and wiring; the service itself
// lives in package daemon.
func runMirror(args []string) error {
	var o mirrorOpts
	if _, err := cli.Parse(mirrorFlags(&o), args, 0); err != nil {
		return err
	}
	if o.config == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	logger, err := daemon.NewLogger(os.Stderr, o.logFormat, o.logLevel)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	if o.watch == 0 {
		o.watch = -1 // daemon: negative disables
	}
	err = daemon.Serve(daemon.Options{
		ConfigPath:      o.config,
		HTTPAddr:        o.httpAddr,
		Token:           token,
		ShutdownTimeout: o.shutdown,
		WatchInterval:   o.watch,
		Logger:          logger,
		Trace:           o.trace,
		TraceEndpoint:   o.traceEndpoint,
		StallAfter:      o.stall,
		ID:              o.id,
	})
	if errors.Is(err, daemon.ErrConfig) {
		// Every problem on its own line, file:line:col: message, then exit 1.
		for _, l := range daemon.ErrorLines(err) {
			fmt.Fprintln(os.Stderr, l)
		}
		return cmdExit(exitError)
	}
	if errors.Is(err, daemon.ErrTrace) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// readToken reads the admin API token from a file (trimmed) or, without
// one, from $STRAIT_TOKEN. An empty token means no authentication.
func readToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("STRAIT_TOKEN")), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}
