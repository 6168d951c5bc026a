package main

// Output formatting for people: strait status's table and the rates and
// lags the demo and drill print.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"strait/daemon"
	"strait/mirror"
)

// writeTable prints pipelines and their partitions as aligned columns.
// audits, when given, adds each pipeline's audit completeness.
func writeTable(w io.Writer, st []mirror.PipelineStatus, audits ...map[string]mirror.AuditStatus) error {
	var au map[string]mirror.AuditStatus
	if len(audits) > 0 {
		au = audits[0]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tSTATE\tROUTE\tMODE\tPARTITIONS\tLAG\tTIME LAG\tRECORDS/S\tMIRRORED\tAUDIT\tERROR")
	for _, p := range st {
		s := daemon.Summarize(p)
		parts := fmt.Sprint(s.Partitions)
		if s.PausedPartitions > 0 {
			parts += fmt.Sprintf(" (%d paused)", s.PausedPartitions)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s→%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n",
			p.Name, p.State, p.Source, p.Destination, p.Mode, parts, s.Lag,
			formatLag(s.TimeLag), formatRate(s.RecordsPerSec), s.RecordsTotal, formatAudit(au, p.Name), oneLine(p.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st {
		if p.Fleet != nil && p.Fleet.Mismatch != "" {
			fmt.Fprintf(w, "\n%s: no work from workers group %s: %s\n", p.Name, p.Fleet.Group, p.Fleet.Mismatch)
		}
		if len(p.Partitions) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", p.Name)
		if f := p.Fleet; f != nil {
			fmt.Fprintf(w, "  workers group %s, generation %d, daemon %s (leader: %v), owns %d partitions\n", f.Group, f.Generation, f.Daemon, f.Leader, f.Owned)
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOPIC\tPART\tDEST TOPIC\tSTATE\tSOURCE\tDEST\tHIGH WM\tLAG\tTIME LAG\tRECORDS/S\tOWNER\tNOTE")
		for _, t := range p.Partitions {
			note := t.PausedReason
			if t.LastError != "" {
				note = strings.TrimSpace(note + " " + t.LastError)
			}
			if t.GapRecords > 0 {
				note = strings.TrimSpace(fmt.Sprintf("%s gap of %d records", note, t.GapRecords))
			}
			owner := t.Owner
			if owner == "" {
				owner = "-"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n",
				t.Topic, t.Partition, t.DestTopic, t.State, t.SourceOffset, t.DestOffset,
				t.HighWatermark, t.Lag, formatLag(t.TimeLag), formatRate(t.RecordsPerSec), owner, oneLine(note))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// formatLag prints a time lag compactly ("-" when caught up).
func formatLag(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// formatRate prints a per-second rate with a k/M suffix.
func formatRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\t", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// formatAudit shows a pipeline's audit completeness: "100%", "99.93% (2
// missing)", "off", or "-" when unknown.
func formatAudit(au map[string]mirror.AuditStatus, name string) string {
	a, ok := au[name]
	switch {
	case !ok:
		return "-"
	case !a.Enabled:
		return "off"
	}
	s := fmt.Sprintf("%.2f%%", 100*a.Completeness)
	if a.Completeness == 1 {
		s = "100%"
	}
	var d []string
	for _, k := range []struct {
		n    int64
		word string
	}{{a.Totals.Missing, "missing"}, {a.Totals.Extra, "extra"}, {a.Totals.Altered, "altered"}} {
		if k.n > 0 {
			d = append(d, fmt.Sprintf("%d %s", k.n, k.word))
		}
	}
	if len(d) > 0 {
		s += " (" + strings.Join(d, ", ") + ")"
	}
	return s
}
