package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// telemetry is the daemon's metrics and traces plumbing. Each daemon has its
// own Prometheus registry so two daemons in one process (tests) never share
// series.
type telemetry struct {
	registry    *prometheus.Registry
	provider    *sdkmetric.MeterProvider
	meter       metric.Meter // handed to the engine
	daemonMeter metric.Meter
	traces      *sdktrace.TracerProvider // nil when tracing is off
	tracer      trace.Tracer
}

func newTelemetry(traceKind string, traceOut io.Writer, traceEndpoint string, log *slog.Logger) (*telemetry, error) {
	t := &telemetry{registry: prometheus.NewRegistry()}
	if traceEndpoint != "" && traceKind != "otlp" {
		return nil, fmt.Errorf("%w: a trace endpoint needs the otlp exporter", ErrTrace)
	}
	var spans sdktrace.SpanExporter
	switch traceKind {
	case "", "none", "off":
		t.tracer = noop.NewTracerProvider().Tracer(TracerName)
	case "stdout":
		e, err := stdouttrace.New(stdouttrace.WithWriter(traceOut))
		if err != nil {
			return nil, fmt.Errorf("%w: stdout: %w", ErrTrace, err)
		}
		spans = e
	case "otlp":
		// OTLP over HTTP with protobuf bodies. Without an endpoint the
		// exporter follows the standard OTEL_EXPORTER_OTLP_* variables
		// (endpoint, headers, TLS, timeout), defaulting to
		// localhost:4318, so a collector's usual settings work unchanged.
		var opts []otlptracehttp.Option
		if traceEndpoint != "" {
			u, err := url.Parse(traceEndpoint)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("%w: otlp endpoint %q: want http(s)://host:port[/path]", ErrTrace, traceEndpoint)
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces" // as for OTEL_EXPORTER_OTLP_ENDPOINT
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		e, err := otlptracehttp.New(context.Background(), opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: otlp: %w", ErrTrace, err)
		}
		spans = e
	default:
		return nil, fmt.Errorf("%w: %q (want stdout, otlp or none)", ErrTrace, traceKind)
	}
	if spans != nil {
		t.traces = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(spans),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "strait"))),
		)
		// The engine asks the global provider for its tracer, so the
		// exporter choice reaches it without another option.
		otel.SetTracerProvider(t.traces)
		// An export that fails (a collector down) is logged, not
		// printed by the SDK's default handler, and never stops the
		// mirror: spans are dropped.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("trace export", "err", err)
		}))
		t.tracer = t.traces.Tracer(TracerName)
	}

	t.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	exp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("daemon: prometheus exporter: %w", err)
	}
	t.provider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp),
		// No SDK cap on series per instrument: the SDK's default (2,000)
		// would fold every partition past the 2,000th into one
		// otel_metric_overflow series. The engine bounds the series
		// itself: its instruments are observable and report only the
		// partitions it runs now, so a scrape holds one series per owned
		// partition (plus one per topic and per pipeline), however many
		// that is.
		sdkmetric.WithCardinalityLimit(0),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "strait"))),
	)
	t.meter = t.provider.Meter(MeterName)
	t.daemonMeter = t.provider.Meter("strait/daemon")
	return t, nil
}

func (t *telemetry) metricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

func (t *telemetry) shutdown(ctx context.Context) {
	if t == nil {
		return
	}
	if t.traces != nil {
		_ = t.traces.Shutdown(ctx) // flushes the batcher
	}
	if t.provider != nil {
		_ = t.provider.Shutdown(ctx)
	}
}
