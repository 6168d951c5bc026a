// Package daemon runs the mirroring engine as a long-lived service: the
// process behind `strait mirror`.
//
// Contract:
//
//   - New loads the configuration (pipelines.Load), builds the telemetry
//     (an OpenTelemetry MeterProvider whose reader is the Prometheus
//     exporter, and a TracerProvider that is off unless asked for), creates
//     the engine and binds the admin HTTP listener. An invalid configuration
//     fails New with ErrConfig wrapping the pipelines error, whose lines are
//     file:line:col: message.
//   - Run mirrors until its context ends, then stops the engine and waits at
//     most Options.ShutdownTimeout for it to acknowledge in-flight batches
//     and checkpoint; past the deadline it returns ErrShutdownTimeout.
//   - Reload (SIGHUP, POST /v1/reload, or a change of the configuration
//     file or folder seen by polling modification times) loads the
//     configuration again. An invalid one is rejected: every error is logged
//     with its file:line:col and the running configuration stays untouched.
//     A valid one goes to Engine.Reload, which starts added pipelines, stops
//     removed ones, restarts changed ones and leaves the rest alone.
//   - Serve wires the process signals to Run and Reload: SIGTERM and SIGINT
//     stop, SIGHUP reloads.
//
// Admin HTTP API: JSON answers, errors as {"error": "..."} with a fitting
// status. The routes (health, readiness, metrics, pipeline status, pause and
// resume of a pipeline or one partition, reload) are listed, with what each
// answers, in docs/operations.md, the one place they are documented.
//
// With a token configured every route except /healthz requires the header
// "Authorization: Bearer <token>" (or the status page's session cookie, see
// pageauth.go); the comparison is constant-time. The
// listener binds loopback unless told otherwise. Nothing the API or the logs
// print contains a secret: the status types carry none, and configuration
// errors come from pipelines, which masks secrets.
//
// Without a token, a state-changing request must carry a loopback Host with
// the admin port and no foreign Origin (403 otherwise: DNS rebinding and
// cross-site forms); reads are open so that a scraper on another host works.
// Every connection has read, write and idle deadlines, the listener holds at
// most Options.AdminMaxConnections, and request bodies are bounded.
//
// Readiness: every pipeline is connected (its source and its destination
// each answered their last call; both start unanswered) and not failed,
// starting or stopped (an operator's pause is fine), and
// every partition that is behind (lag > 0) and not paused by an operator
// made progress within Options.StallAfter. A partition in state failed, gap
// or auto-paused makes the daemon unready, with the reason.
//
// Telemetry: the engine gets the meter named MeterName; the daemon's own
// meter counts reloads by result (ok, invalid, failed). The exported metric
// names are listed in docs/operations.md. Traces go through
// the global TracerProvider, which the daemon sets up only when
// Options.Trace is "stdout" (the stdouttrace exporter) or "otlp" (OTLP over
// HTTP to Options.TraceEndpoint, or where the OTEL_EXPORTER_OTLP_*
// variables say); its own spans (daemon.reload) use the tracer named
// TracerName. Failed exports are logged and their spans dropped; they never
// stop the mirror.
package daemon
