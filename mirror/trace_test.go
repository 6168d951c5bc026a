package mirror

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"strait/pipelines"
)

// TestTraces: with a tracer provider installed, the engine emits a span per
// batch of task starts, per checkpoint save and per reload.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)

	src := startCluster(t, t.TempDir(), "", 1)
	defer src.Close()
	dst := startCluster(t, t.TempDir(), "", 1)
	defer dst.Close()
	createTopic(t, client(t, src.Addrs()), "tr", 2, nil)
	produceData(t, producer(t, src.Addrs(), kgo.NoCompression()), "tr", 2, 20, kgo.NoCompression())
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "tr")
	e, stop := runEngine(t, cfg, Options{})
	waitFor(t, 30*time.Second, "catch up", func() bool { return caughtUp(e, 2) })
	if err := e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	stop()

	count := map[string]int{}
	for _, s := range rec.Ended() {
		count[s.Name()]++
		if s.InstrumentationScope().Name != TracerName {
			t.Fatalf("span %s from tracer %q", s.Name(), s.InstrumentationScope().Name)
		}
	}
	if count["mirror.tasks.start"] < 1 || count["mirror.checkpoint"] < 1 || count["mirror.reload"] != 1 {
		t.Fatalf("spans: %v", count)
	}
}
