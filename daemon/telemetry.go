package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
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

func newTelemetry(traceKind string, traceOut io.Writer) (*telemetry, error) {
	t := &telemetry{registry: prometheus.NewRegistry()}
	switch traceKind {
	case "", "none", "off":
		t.tracer = noop.NewTracerProvider().Tracer(TracerName)
	case "stdout":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(traceOut))
		if err != nil {
			return nil, fmt.Errorf("%w: stdout: %w", ErrTrace, err)
		}
		t.traces = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "strait"))),
		)
		// The engine asks the global provider for its tracer, so the
		// exporter choice reaches it without another option.
		otel.SetTracerProvider(t.traces)
		t.tracer = t.traces.Tracer(TracerName)
	case "otlp":
		return nil, fmt.Errorf("%w: otlp export is not included in this build (use stdout)", ErrTrace)
	default:
		return nil, fmt.Errorf("%w: %q (want stdout or none)", ErrTrace, traceKind)
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
