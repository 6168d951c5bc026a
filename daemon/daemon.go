package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"strait/mirror"
	"strait/pipelines"
)

// Sentinel errors.
var (
	// ErrConfig wraps a configuration that does not load or validate.
	ErrConfig = errors.New("daemon: invalid configuration")
	// ErrShutdownTimeout: the engine did not stop within the deadline.
	ErrShutdownTimeout = errors.New("daemon: shutdown deadline exceeded")
	// ErrTrace: an unknown trace exporter, or a bad setting for one.
	ErrTrace = errors.New("daemon: trace export")
	// ErrOptions: the options are unusable (missing config path, bad log level).
	ErrOptions = errors.New("daemon: bad options")
)

// Names under which the daemon's telemetry is registered.
const (
	MeterName  = "strait/mirror"
	TracerName = "strait/daemon"
)

// Options configure a Daemon.
type Options struct {
	// ConfigPath is a YAML file or a folder of them.
	ConfigPath string
	// HTTPAddr is where the admin API listens ("" = no admin API). Port 0
	// picks a free port; Addr reports it.
	HTTPAddr string
	// Token, when set, is the bearer token the admin API requires.
	Token string
	// ShutdownTimeout bounds a graceful stop (default 30s).
	ShutdownTimeout time.Duration
	// WatchInterval is how often the configuration's modification times are
	// polled (default 2s; negative disables the watch).
	WatchInterval time.Duration
	// StallAfter is how long a partition that is behind may go without
	// progress before /readyz reports it (default 1m).
	StallAfter time.Duration
	// ID names this daemon in its workers group (default: host name and
	// process id); only used with a workers: section.
	ID string
	// AdminIdleTimeout closes an admin API keep-alive connection left idle
	// this long (default 1m).
	AdminIdleTimeout time.Duration
	// AdminReadTimeout bounds reading one request, headers and body
	// (default 30s; headers alone get at most 10s).
	AdminReadTimeout time.Duration
	// AdminWriteTimeout bounds writing one answer (default 1m).
	AdminWriteTimeout time.Duration
	// AdminMaxConnections caps the admin API's open connections; more
	// wait in the listen backlog (default 64).
	AdminMaxConnections int
	// Logger receives the daemon's and the engine's logs (default: discard).
	Logger *slog.Logger
	// Trace selects the span exporter: "" or "none" (off), "stdout" or
	// "otlp" (OTLP over HTTP).
	Trace string
	// TraceOutput is where "stdout" traces go (default os.Stdout).
	TraceOutput io.Writer
	// TraceEndpoint is the OTLP/HTTP URL spans are sent to, e.g.
	// http://collector:4318 (the path defaults to /v1/traces). Empty
	// follows the OTEL_EXPORTER_OTLP_* environment variables.
	TraceEndpoint string
}

// Daemon is one running mirror service.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	tel     *telemetry
	engine  *mirror.Engine
	ln      net.Listener
	srv     *http.Server
	reloads metric.Int64Counter

	reloadReq chan struct{} // Run's loop reads reload requests from here

	reloadMu sync.Mutex // serialises Reload; held across Load and Engine.Reload

	mu struct {
		sync.Mutex
		startedAt   time.Time // last start or successful reload: progress is judged from here
		running     bool      // Engine.Run is active
		fingerprint string    // configuration fingerprint last loaded (valid or not)
	}
}

// New loads the configuration and prepares the engine, telemetry and admin
// listener. Nothing mirrors until Run.
func New(opts Options) (*Daemon, error) {
	if opts.ConfigPath == "" {
		return nil, fmt.Errorf("%w: a configuration path is required", ErrOptions)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 2 * time.Second
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = time.Minute
	}
	if opts.AdminIdleTimeout <= 0 {
		opts.AdminIdleTimeout = time.Minute
	}
	if opts.AdminReadTimeout <= 0 {
		opts.AdminReadTimeout = 30 * time.Second
	}
	if opts.AdminWriteTimeout <= 0 {
		opts.AdminWriteTimeout = time.Minute
	}
	if opts.AdminMaxConnections <= 0 {
		opts.AdminMaxConnections = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TraceOutput == nil {
		opts.TraceOutput = os.Stdout
	}
	d := &Daemon{opts: opts, log: opts.Logger, reloadReq: make(chan struct{}, 1)}

	fp := fingerprint(opts.ConfigPath)
	cfg, err := pipelines.Load(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	d.mu.fingerprint = fp

	d.tel, err = newTelemetry(opts.Trace, opts.TraceOutput, opts.TraceEndpoint, opts.Logger)
	if err != nil {
		return nil, err
	}
	d.reloads, err = d.tel.daemonMeter.Int64Counter("strait.daemon.reloads",
		metric.WithDescription("Configuration reloads by result: ok, invalid (rejected, running configuration kept) or failed (the engine refused it)."))
	if err != nil {
		d.tel.shutdown(context.Background())
		return nil, fmt.Errorf("daemon: metric: %w", err)
	}

	d.engine, err = mirror.New(cfg, mirror.Options{Logger: opts.Logger, Meter: d.tel.meter, DaemonID: opts.ID})
	if err != nil {
		d.tel.shutdown(context.Background())
		return nil, fmt.Errorf("daemon: engine: %w", err)
	}
	// Readiness as a metric, judged at scrape time by the same rule as
	// /readyz, so "not ready" can be an alert and not only a probe.
	if _, err := d.tel.daemonMeter.Int64ObservableGauge("strait.daemon.ready",
		metric.WithDescription("1 when the daemon is ready (GET /readyz answers 200), 0 otherwise."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			var v int64
			if d.Readiness(time.Now()).Ready {
				v = 1
			}
			o.Observe(v)
			return nil
		})); err != nil {
		d.tel.shutdown(context.Background())
		return nil, fmt.Errorf("daemon: metric: %w", err)
	}

	if opts.HTTPAddr != "" {
		ln, err := net.Listen("tcp", opts.HTTPAddr)
		if err != nil {
			d.tel.shutdown(context.Background())
			return nil, fmt.Errorf("daemon: admin listener: %w", err)
		}
		if opts.Token == "" && !isLoopback(ln.Addr()) {
			opts.Logger.Warn("admin API reachable beyond this host without a token; set --token-file or STRAIT_TOKEN", "addr", ln.Addr().String())
		}
		d.ln = newLimitListener(ln, opts.AdminMaxConnections)
		d.srv = &http.Server{
			Handler: d.Handler(),
			// Every phase of a connection has a deadline: a client
			// that trickles headers, stalls a body, stops reading the
			// answer or idles between keep-alive requests is closed.
			ReadHeaderTimeout: min(10*time.Second, opts.AdminReadTimeout),
			ReadTimeout:       opts.AdminReadTimeout,
			WriteTimeout:      opts.AdminWriteTimeout,
			IdleTimeout:       opts.AdminIdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		}
	}
	return d, nil
}

// Engine is the engine the daemon runs.
func (d *Daemon) Engine() *mirror.Engine { return d.engine }

// Addr is the admin API's listening address ("" without one).
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// RequestReload asks Run's loop to reload soon; it never blocks, and
// requests made while one is pending merge into it.
func (d *Daemon) RequestReload() {
	select {
	case d.reloadReq <- struct{}{}:
	default:
	}
}

// traceFlushTimeout bounds the flush of queued spans when Run returns.
var traceFlushTimeout = 5 * time.Second

// Run serves the admin API and runs the engine until ctx ends, then stops
// both within Options.ShutdownTimeout. A clean stop returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	defer func() {
		// Spans still queued get a bounded chance to leave: a collector
		// that accepts connections but never answers would otherwise
		// hold the stop for the exporter's own timeouts.
		fctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		d.tel.shutdown(fctx)
	}()

	engCtx, stopEngine := context.WithCancel(context.Background())
	defer stopEngine()
	engDone := make(chan error, 1)
	d.mu.Lock()
	d.mu.running = true
	d.mu.startedAt = time.Now()
	d.mu.Unlock()
	go func() { engDone <- d.engine.Run(engCtx) }()

	srvDone := make(chan error, 1)
	if d.srv != nil {
		go func() { srvDone <- d.srv.Serve(d.ln) }()
		d.log.Info("admin API listening", "addr", d.Addr())
	}

	var watch <-chan time.Time
	if d.opts.WatchInterval > 0 {
		t := time.NewTicker(d.opts.WatchInterval)
		defer t.Stop()
		watch = t.C
	}
	d.log.Info("mirror started", "config", d.opts.ConfigPath)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-engDone:
			// The engine stopped on its own: that is a failure of the
			// service, not a stop request.
			d.markStopped()
			if err == nil {
				err = errors.New("daemon: engine stopped unexpectedly")
			}
			d.log.Error("engine stopped", "err", err)
			d.shutdownHTTP()
			return err
		case err := <-srvDone:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				runErr = fmt.Errorf("daemon: admin API: %w", err)
				d.log.Error("admin API failed", "err", err)
				break loop
			}
		case <-d.reloadReq:
			_ = d.Reload()
		case <-watch:
			fp := fingerprint(d.opts.ConfigPath)
			d.mu.Lock()
			changed := fp != d.mu.fingerprint
			d.mu.Unlock()
			if changed {
				d.log.Info("configuration changed on disk", "config", d.opts.ConfigPath)
				_ = d.Reload()
			}
		}
	}

	d.log.Info("stopping", "deadline", d.opts.ShutdownTimeout)
	stopEngine()
	deadline := time.NewTimer(d.opts.ShutdownTimeout)
	defer deadline.Stop()
	select {
	case err := <-engDone:
		d.markStopped()
		if err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = fmt.Errorf("daemon: engine: %w", err)
		}
	case <-deadline.C:
		d.markStopped()
		d.shutdownHTTP()
		d.log.Error("engine did not stop in time", "deadline", d.opts.ShutdownTimeout)
		return ErrShutdownTimeout
	}
	d.shutdownHTTP()
	if runErr == nil {
		d.log.Info("stopped cleanly")
	}
	return runErr
}

func (d *Daemon) markStopped() {
	d.mu.Lock()
	d.mu.running = false
	d.mu.Unlock()
}

func (d *Daemon) shutdownHTTP() {
	if d.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		_ = d.srv.Close()
	}
}

// Reload loads the configuration again and hands it to the engine. An
// invalid configuration is logged error by error (file:line:col: message)
// and returned wrapped in ErrConfig; the running configuration stays.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	ctx, span := d.tel.tracer.Start(context.Background(), "daemon.reload")
	defer span.End()

	fp := fingerprint(d.opts.ConfigPath)
	d.mu.Lock()
	d.mu.fingerprint = fp
	d.mu.Unlock()

	cfg, err := pipelines.Load(d.opts.ConfigPath)
	if err != nil {
		lines := ErrorLines(err)
		for _, l := range lines {
			d.log.Error("configuration rejected", "error", l)
		}
		d.log.Error("reload rejected: keeping the running configuration", "config", d.opts.ConfigPath, "errors", len(lines))
		d.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "invalid")))
		span.SetAttributes(attribute.String("result", "invalid"))
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := d.engine.Reload(cfg); err != nil {
		d.log.Error("reload failed: engine refused the configuration", "err", err)
		d.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "failed")))
		span.SetAttributes(attribute.String("result", "failed"))
		return fmt.Errorf("daemon: reload: %w", err)
	}
	d.mu.Lock()
	d.mu.startedAt = time.Now()
	d.mu.Unlock()
	names := make([]string, 0, len(cfg.Pipelines))
	for _, p := range cfg.Pipelines {
		names = append(names, p.Name)
	}
	d.log.Info("configuration reloaded", "config", d.opts.ConfigPath, "pipelines", strings.Join(names, ","))
	d.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "ok")))
	span.SetAttributes(attribute.String("result", "ok"))
	return nil
}

// ErrorLines splits a configuration error into one line per problem
// (file:line:col: message), whatever shape of joined error carries them.
func ErrorLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == ErrConfig {
			return // our own wrapper, not a problem in the files
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range m.Unwrap() {
				walk(x)
			}
			return
		}
		for _, l := range strings.Split(e.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	walk(err)
	return out
}

// Serve runs a daemon as the process's service: SIGTERM and SIGINT stop it
// gracefully, SIGHUP reloads. It returns when the daemon has stopped.
func Serve(opts Options) error {
	// Signals first: a SIGHUP while the configuration loads must not kill
	// the process (its default action), and a SIGTERM must still stop it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d, err := New(opts)
	if err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-hup:
				d.log.Info("SIGHUP: reloading configuration")
				d.RequestReload()
			case <-ctx.Done():
				return
			}
		}
	}()
	return d.Run(ctx)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
