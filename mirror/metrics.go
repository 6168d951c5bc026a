package mirror

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the engine's OpenTelemetry instruments; see doc.go and
// docs/operations.md for the list. Every instrument is observable: one
// callback walks the running pipelines and their tasks at collection time
// and reports what each holds (counters are the tasks' own totals). A
// partition the engine no longer runs (its task stopped, its topic went,
// its pipeline was removed) is therefore no longer reported, so the number
// of series follows the owned partitions, and tasks carry no attribute
// sets or instrument handles of their own.
type metrics struct {
	reg metric.Registration
}

// instruments are the observable instruments the callback reports into.
type instruments struct {
	lag, paused, records, bytes, errs, gaps metric.Int64Observable
	timeLag                                 metric.Float64Observable

	topicLag, topicRecords, topicBytes metric.Int64Observable
	pipeLag, pipeRecords, pipeBytes    metric.Int64Observable
	pipeParts                          metric.Int64Observable
}

func newMetrics(m metric.Meter, e *Engine) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("strait/mirror")
	}
	var in instruments
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64Observable {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64Observable {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	const recDesc = "records written to the destination and acknowledged"
	const byteDesc = "bytes written to the destination and acknowledged (batch mode: batch bytes; record mode: key+value bytes)"
	const lagDesc = "source high watermark minus the next source offset to mirror"
	in.records = counter("strait.mirror.records", "{record}", recDesc)
	in.bytes = counter("strait.mirror.bytes", "By", byteDesc)
	in.errs = counter("strait.mirror.errors", "{error}", "failed cluster calls, refused writes, gaps and strangers")
	in.gaps = counter("strait.mirror.gap_records", "{record}", "source records lost to retention before they were mirrored")
	in.lag = gauge("strait.mirror.lag", "{record}", lagDesc)
	in.paused = gauge("strait.mirror.paused", "", "1 when the partition is paused, auto-paused, in gap or failed")
	tl, err := m.Float64ObservableGauge("strait.mirror.time_lag", metric.WithUnit("s"),
		metric.WithDescription("age of the newest mirrored record while the partition lags (0 when caught up)"))
	errs = append(errs, err)
	in.timeLag = tl
	in.topicLag = gauge("strait.mirror.topic.lag", "{record}", "sum of the topic's partition lags")
	in.topicRecords = counter("strait.mirror.topic.records", "{record}", recDesc+", summed over the topic's partitions")
	in.topicBytes = counter("strait.mirror.topic.bytes", "By", "bytes written and acknowledged, summed over the topic's partitions")
	in.pipeLag = gauge("strait.mirror.pipeline.lag", "{record}", "sum of the pipeline's partition lags")
	in.pipeRecords = counter("strait.mirror.pipeline.records", "{record}", recDesc+" by the pipeline")
	in.pipeBytes = counter("strait.mirror.pipeline.bytes", "By", "bytes written and acknowledged by the pipeline")
	in.pipeParts = gauge("strait.mirror.pipeline.partitions", "{partition}", "partition tasks of the pipeline, by state")
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.observe(o, &in, time.Now())
		return nil
	}, in.lag, in.paused, in.records, in.bytes, in.errs, in.gaps, in.timeLag,
		in.topicLag, in.topicRecords, in.topicBytes, in.pipeLag, in.pipeRecords, in.pipeBytes, in.pipeParts)
	return &metrics{reg: reg}, err
}

// taskFigures is what the metrics read from one task.
type taskFigures struct {
	lag, records, bytes, errs, gaps int64
	timeLag                         time.Duration
	state                           State
}

func (t *task) figures(now time.Time) taskFigures {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := taskFigures{lag: max(t.mu.hw-t.mu.pos.Source, 0), records: t.mu.records, bytes: t.mu.bytes,
		errs: t.errs.Load(), gaps: t.mu.gapRecords, state: t.mu.lc.shown()}
	if f.lag > 0 && !t.mu.lastTs.IsZero() {
		f.timeLag = max(now.Sub(t.mu.lastTs), 0)
	}
	return f
}

// topicSum is a per-topic aggregate.
type topicSum struct{ lag, records, bytes int64 }

// observe reports every running pipeline's partitions and aggregates.
func (e *Engine) observe(o metric.Observer, in *instruments, now time.Time) {
	e.mu.Lock()
	ps := make([]*pipeline, 0, len(e.mu.runs))
	for _, r := range e.mu.runs {
		ps = append(ps, r.p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		ts := make([]*task, 0, len(p.mu.tasks))
		for _, t := range p.mu.tasks {
			ts = append(ts, t)
		}
		retiredRecs, retiredBytes := p.mu.retiredRecords, p.mu.retiredBytes
		p.mu.Unlock()
		name := attribute.String("pipeline", p.cfg.Name)
		pipeOnly := metric.WithAttributes(name)
		if n := p.errs.Load(); n > 0 {
			o.ObserveInt64(in.errs, n, pipeOnly)
		}
		topics := map[string]*topicSum{}
		states := map[State]int64{}
		var lag, recs, bytes int64
		for _, t := range ts {
			f := t.figures(now)
			a := partitionAttrs(p.cfg.Name, t.tp.Topic, t.tp.Partition)
			o.ObserveInt64(in.lag, f.lag, a)
			o.ObserveFloat64(in.timeLag, f.timeLag.Seconds(), a)
			var paused int64
			if f.state != StateRunning && f.state != StateStarting {
				paused = 1
			}
			o.ObserveInt64(in.paused, paused, a)
			// A counter appears once it has counted something.
			for _, c := range [...]struct {
				in metric.Int64Observable
				v  int64
			}{{in.records, f.records}, {in.bytes, f.bytes}, {in.errs, f.errs}, {in.gaps, f.gaps}} {
				if c.v > 0 {
					o.ObserveInt64(c.in, c.v, a)
				}
			}
			s := topics[t.tp.Topic]
			if s == nil {
				s = &topicSum{}
				topics[t.tp.Topic] = s
			}
			s.lag, s.records, s.bytes = s.lag+f.lag, s.records+f.records, s.bytes+f.bytes
			lag, recs, bytes = lag+f.lag, recs+f.records, bytes+f.bytes
			states[f.state]++
		}
		for topic, s := range topics {
			a := metric.WithAttributes(name, attribute.String("topic", topic))
			o.ObserveInt64(in.topicLag, s.lag, a)
			o.ObserveInt64(in.topicRecords, s.records, a)
			o.ObserveInt64(in.topicBytes, s.bytes, a)
		}
		o.ObserveInt64(in.pipeLag, lag, pipeOnly)
		o.ObserveInt64(in.pipeRecords, recs+retiredRecs, pipeOnly)
		o.ObserveInt64(in.pipeBytes, bytes+retiredBytes, pipeOnly)
		for st, n := range states {
			o.ObserveInt64(in.pipeParts, n, metric.WithAttributes(name, attribute.String("state", st.String())))
		}
	}
}

// partitionAttrs are the labels of a per-partition series.
func partitionAttrs(pipeline, topic string, partition int32) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("pipeline", pipeline), attribute.String("topic", topic),
		attribute.String("partition", strconv.Itoa(int(partition))))
}
