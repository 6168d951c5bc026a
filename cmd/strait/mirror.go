package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"strait/daemon"
)

// runMirror is `strait mirror`: flag parsing and wiring; the service itself
// lives in package daemon.
func runMirror(args []string) error {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config := fs.String("config", "", "configuration: a YAML file or a folder of them (required)")
	httpAddr := fs.String("http", "127.0.0.1:7070", `admin API address ("" disables it)`)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	tokenFile := fs.String("token-file", "", "file holding the admin API bearer token (else $STRAIT_TOKEN)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long a graceful stop may take")
	watch := fs.Duration("watch-interval", 2*time.Second, "how often to poll the configuration for changes (0 disables)")
	trace := fs.String("trace", "", "span exporter: stdout or otlp (off by default)")
	traceEndpoint := fs.String("trace-endpoint", "", "OTLP/HTTP collector URL for --trace otlp, e.g. http://127.0.0.1:4318 (default: the OTEL_EXPORTER_OTLP_* variables)")
	stall := fs.Duration("stall-after", time.Minute, "how long a lagging partition may go without progress before /readyz fails")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("usage: strait mirror --config PATH [flags]")
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return nil
		}
		return mirrorUsage(fs, err)
	}
	if fs.NArg() > 0 {
		return mirrorUsage(fs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *config == "" {
		return mirrorUsage(fs, errors.New("--config is required"))
	}
	logger, err := daemon.NewLogger(os.Stderr, *logFormat, *logLevel)
	if err != nil {
		return mirrorUsage(fs, err)
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if *watch == 0 {
		*watch = -1 // daemon: negative disables
	}
	err = daemon.Serve(daemon.Options{
		ConfigPath:      *config,
		HTTPAddr:        *httpAddr,
		Token:           token,
		ShutdownTimeout: *shutdown,
		WatchInterval:   *watch,
		Logger:          logger,
		Trace:           *trace,
		TraceEndpoint:   *traceEndpoint,
		StallAfter:      *stall,
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

func mirrorUsage(fs *flag.FlagSet, err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%v\nusage: strait mirror --config PATH [flags]\n", err)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return fmt.Errorf("%w: %s", errUsage, strings.TrimRight(b.String(), "\n"))
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

// cmdExit is an error that only carries an exit code: the command has
// already printed what went wrong.
type cmdExit int

func (c cmdExit) Error() string { return fmt.Sprintf("exit status %d", int(c)) }
func (c cmdExit) ExitCode() int { return int(c) }
