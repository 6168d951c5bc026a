package mirror

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// registerAuditMetrics adds the audit's and the live RPO's instruments,
// observed per partition from the pipelines' audits at collection time.
// Their Prometheus names are listed in docs/operations.md.
func registerAuditMetrics(m metric.Meter, e *Engine) error {
	if m == nil {
		m = noop.NewMeterProvider().Meter("strait/mirror")
	}
	compl, err := m.Float64ObservableGauge("strait.mirror.audit.completeness", metric.WithUnit("1"),
		metric.WithDescription("share of the recently audited source records confirmed unchanged on the destination (1 when none audited yet)"))
	if err != nil {
		return err
	}
	counter := func(name, desc string) (metric.Int64ObservableCounter, error) {
		return m.Int64ObservableCounter(name, metric.WithUnit("{record}"), metric.WithDescription(desc))
	}
	compared, err := counter("strait.mirror.audit.compared", "source records the audit compared with the destination")
	if err != nil {
		return err
	}
	missing, err := counter("strait.mirror.audit.missing", "audited source records not found on the destination")
	if err != nil {
		return err
	}
	extra, err := counter("strait.mirror.audit.extra", "destination records no audited source record accounts for")
	if err != nil {
		return err
	}
	altered, err := counter("strait.mirror.audit.altered", "audited records whose destination copy differs")
	if err != nil {
		return err
	}
	confirmedTo, err := m.Int64ObservableGauge("strait.mirror.audit.confirmed_offset",
		metric.WithDescription("source offset up to which the latest run of audited spans matched"))
	if err != nil {
		return err
	}
	rpoRecs, err := m.Int64ObservableGauge("strait.mirror.rpo.records", metric.WithUnit("{record}"),
		metric.WithDescription("records acknowledged by the source and not yet on the destination"))
	if err != nil {
		return err
	}
	rpoBytes, err := m.Int64ObservableGauge("strait.mirror.rpo.bytes", metric.WithUnit("By"),
		metric.WithDescription("bytes of those records (estimated from the partition's mean record size)"))
	if err != nil {
		return err
	}
	rpoAge, err := m.Float64ObservableGauge("strait.mirror.rpo.age", metric.WithUnit("s"),
		metric.WithDescription("age of the oldest record not yet on the destination"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.mu.Lock()
		runs := make([]*pipelineRun, 0, len(e.mu.runs))
		for _, r := range e.mu.runs {
			runs = append(runs, r)
		}
		e.mu.Unlock()
		for _, r := range runs {
			st := r.p.auditStatus(time.Now())
			for _, pa := range st.Partitions {
				a := partitionAttrs(st.Pipeline, pa.Topic, pa.Partition)
				o.ObserveInt64(rpoRecs, pa.RPO.Records, a)
				o.ObserveInt64(rpoBytes, pa.RPO.Bytes, a)
				o.ObserveFloat64(rpoAge, pa.RPO.Age.Seconds(), a)
				if !st.Enabled {
					continue
				}
				o.ObserveFloat64(compl, pa.Completeness, a)
				o.ObserveInt64(compared, pa.Totals.Compared, a)
				o.ObserveInt64(missing, pa.Totals.Missing, a)
				o.ObserveInt64(extra, pa.Totals.Extra, a)
				o.ObserveInt64(altered, pa.Totals.Altered, a)
				o.ObserveInt64(confirmedTo, pa.ConfirmedTo, a)
			}
		}
		return nil
	}, compl, compared, missing, extra, altered, confirmedTo, rpoRecs, rpoBytes, rpoAge)
	return err
}
