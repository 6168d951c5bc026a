package mirror

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the engine's OpenTelemetry instruments; see doc.go for the
// list. Gauges are observed from task status at collection time.
type metrics struct {
	records    metric.Int64Counter
	bytes      metric.Int64Counter
	errors     metric.Int64Counter
	gapRecords metric.Int64Counter
	reg        metric.Registration
}

func newMetrics(m metric.Meter, e *Engine) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("strait/mirror")
	}
	var err error
	mt := &metrics{}
	if mt.records, err = m.Int64Counter("strait.mirror.records", metric.WithUnit("{record}"),
		metric.WithDescription("records written to the destination and acknowledged")); err != nil {
		return nil, err
	}
	if mt.bytes, err = m.Int64Counter("strait.mirror.bytes", metric.WithUnit("By"),
		metric.WithDescription("bytes written to the destination and acknowledged (batch mode: batch bytes; record mode: key+value bytes)")); err != nil {
		return nil, err
	}
	if mt.errors, err = m.Int64Counter("strait.mirror.errors", metric.WithUnit("{error}"),
		metric.WithDescription("failed cluster calls, refused writes, gaps and strangers")); err != nil {
		return nil, err
	}
	if mt.gapRecords, err = m.Int64Counter("strait.mirror.gap_records", metric.WithUnit("{record}"),
		metric.WithDescription("source records lost to retention before they were mirrored")); err != nil {
		return nil, err
	}
	lag, err := m.Int64ObservableGauge("strait.mirror.lag", metric.WithUnit("{record}"),
		metric.WithDescription("source high watermark minus the next source offset to mirror"))
	if err != nil {
		return nil, err
	}
	tlag, err := m.Float64ObservableGauge("strait.mirror.time_lag", metric.WithUnit("s"),
		metric.WithDescription("age of the newest mirrored record while the partition lags (0 when caught up)"))
	if err != nil {
		return nil, err
	}
	paused, err := m.Int64ObservableGauge("strait.mirror.paused",
		metric.WithDescription("1 when the partition is paused, auto-paused, in gap or failed"))
	if err != nil {
		return nil, err
	}
	mt.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		for _, ps := range e.Status() {
			for _, s := range ps.Partitions {
				a := e.attrs(ps.Name, s.Topic, s.Partition)
				o.ObserveInt64(lag, s.Lag, a)
				o.ObserveFloat64(tlag, s.TimeLag.Seconds(), a)
				var v int64
				if s.State != StateRunning && s.State != StateStarting {
					v = 1
				}
				o.ObserveInt64(paused, v, a)
			}
		}
		_ = now
		return nil
	}, lag, tlag, paused)
	return mt, err
}

// attrs are the labels every per-partition metric carries.
func (e *Engine) attrs(pipeline, topic string, partition int32) metric.MeasurementOption {
	kv := []attribute.KeyValue{attribute.String("pipeline", pipeline)}
	if topic != "" {
		kv = append(kv, attribute.String("topic", topic), attribute.String("partition", strconv.Itoa(int(partition))))
	}
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}
