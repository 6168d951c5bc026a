package mirror

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName names the engine's tracer. Spans: mirror.task.start (a task
// reconciles its checkpoint or resolves its start), mirror.checkpoint (a
// pipeline saves its positions), mirror.reload (a new configuration is
// applied). They go to the global TracerProvider, which the daemon sets
// when tracing is on; otherwise they cost a no-op.
const TracerName = "strait/mirror"

// startSpan starts an engine span. The tracer is looked up each time so a
// provider installed after the engine was built is used.
func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer(TracerName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan records err, if any, and ends the span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
