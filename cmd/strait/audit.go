package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"strait/internal/cli"
	"strait/mirror/audit"
	"strait/pipelines"
)

// auditOpts are strait audit's flags.
type auditOpts struct {
	config, pipeline, topics, since string
	asJSON                          bool
	show                            int
	timeout                         time.Duration
}

func auditFlags(o *auditOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "configuration file or folder (required)")
	fs.StringVar(&o.pipeline, "pipeline", "", "pipeline name (required)")
	fs.StringVar(&o.topics, "topics", "", "audit only the source topics this anchored regular expression matches")
	fs.StringVar(&o.since, "since", "", "start at records from this time on: an RFC 3339 time, or a duration ago (1h)")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.IntVar(&o.show, "show", audit.DefaultShow, "differences of each kind listed per partition (counts are always complete)")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after this long (0: no limit)")
	return fs
}

// runAudit is `strait audit`: it reads the pipeline's mirrored range on
// both clusters once and exits 1 on any difference.
func runAudit(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return auditCmd(ctx, args, os.Stdout, os.Stderr, time.Now())
}

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now time.Time) error {
	var o auditOpts
	if _, err := cli.Parse(auditFlags(&o), args, 0); err != nil {
		return err
	}
	var missing []string
	if o.config == "" {
		missing = append(missing, "--config")
	}
	if o.pipeline == "" {
		missing = append(missing, "--pipeline")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", errUsage, strings.Join(missing, ", "))
	}
	var ao audit.Options
	ao.Show = o.show
	if o.show < 0 {
		return fmt.Errorf("%w: --show must not be negative", errUsage)
	}
	if o.topics != "" {
		re, err := regexp.Compile(o.topics)
		if err != nil {
			return fmt.Errorf("%w: --topics: %v", errUsage, err)
		}
		ao.Topics = re
	}
	if o.since != "" {
		t, err := parseSince(o.since, now)
		if err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
		ao.Since = t
	}
	cfg, err := pipelines.Load(o.config)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	p := cfg.Pipeline(o.pipeline)
	if p == nil {
		var names []string
		for _, q := range cfg.Pipelines {
			names = append(names, q.Name)
		}
		sort.Strings(names)
		return fmt.Errorf("no pipeline %q in %s (pipelines: %s)", o.pipeline, o.config, strings.Join(names, ", "))
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	rep, err := audit.Audit(ctx, cfg, p, ao)
	if err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := writeAudit(stdout, rep); err != nil {
		return err
	}
	if !rep.Clean() {
		return cmdExit(exitError)
	}
	return nil
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("expected an RFC 3339 time or a positive duration, got %q", s)
	}
	return now.Add(-d), nil
}

// writeAudit prints a report for people: one line per partition, then
// the first differences of each, then the verdict.
func writeAudit(w io.Writer, r *audit.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPART\tSOURCE\tDEST\tCOMPARED\tCONFIRMED\tMISSING\tEXTRA\tALTERED\tPENDING\tNOTE")
	for _, p := range r.Partitions {
		note := p.Note
		if p.Skipped > 0 {
			note = strings.TrimSpace(fmt.Sprintf("%s %d left out by loop protection", note, p.Skipped))
		}
		if p.SourceGone > 0 {
			note = strings.TrimSpace(fmt.Sprintf("%s %d gone from the source since mirrored", note, p.SourceGone))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%s:%d-%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition,
			p.SourceFrom, p.SourceTo, p.DestTopic, p.DestFrom, p.DestTo, p.Compared, p.Confirmed,
			p.Missing, p.Extra, p.Altered, p.Pending, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Partitions {
		if len(p.Diffs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s/%d:\n", p.Topic, p.Partition)
		for _, d := range p.Diffs {
			fmt.Fprintf(w, "  %-8s source %s  dest %s\n", d.Kind, offsetOrDash(d.SourceOffset), offsetOrDash(d.DestOffset))
		}
		if n := p.Differences() - int64(len(p.Diffs)); n > 0 {
			fmt.Fprintf(w, "  ... and %d more\n", n)
		}
	}
	t := r.Total
	fmt.Fprintf(w, "\npipeline %s: %d records compared, %.4f%% complete, %d missing, %d extra, %d altered, %d pending; read %d bytes in %s\n",
		r.Pipeline, t.Compared, 100*r.Completeness, t.Missing, t.Extra, t.Altered, t.Pending, r.BytesRead, r.Elapsed.Round(time.Millisecond))
	if r.Clean() {
		fmt.Fprintln(w, "no differences")
	} else {
		fmt.Fprintln(w, "DIFFERENCES FOUND")
	}
	return nil
}

func offsetOrDash(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}
