package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"text/tabwriter"
	"time"

	"strait/checkpoint"
	"strait/daemon"
	"strait/drill/failover"
	"strait/internal/cli"
	"strait/pipelines"
)

// failoverOpts are strait failover's flags.
type failoverOpts struct {
	config, pipeline, groups, httpAddr        *string
	planned, unplanned, dryRun, asJSON, force *bool
	lagTimeout, groupTimeout                  *time.Duration
}

func failoverFlags(o *failoverOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	o.config = fs.String("config", "", "configuration: a YAML file or a folder of them (required)")
	o.pipeline = fs.String("pipeline", "", "the pipeline whose groups move to its destination (required)")
	o.groups = fs.String("groups", "", "anchored expression naming the groups to move (default: every group with commits on the pipeline's topics)")
	o.planned = fs.Bool("planned", false, "planned failover: drain, stop the pipeline, wait for each group to be empty (the default)")
	o.unplanned = fs.Bool("unplanned", false, "unplanned failover: the source is gone, move from the checkpoints")
	o.dryRun = fs.Bool("dry-run", false, "print the plan, change nothing")
	o.asJSON = fs.Bool("json", false, "print the report as JSON")
	o.force = fs.Bool("force", false, "act although a cluster id differs from the checkpoints' or records were not mirrored")
	o.httpAddr = fs.String("http", "", "admin API of the daemon running the pipeline: drain and pause it there (default: the daemon is stopped, the command runs the pipeline itself)")
	o.lagTimeout = fs.Duration("lag-timeout", 5*time.Minute, "planned: how long to wait for the lag to reach 0")
	o.groupTimeout = fs.Duration("group-timeout", 5*time.Minute, "planned: how long to wait for each group to be empty on the source")
	return fs
}

// runFailover is `strait failover`: flags in, failover.Failover, the report
// out. Without --http the command runs the pipeline itself to drain it (the
// daemon must be stopped); with --http it drains and pauses the pipeline in
// the running daemon.
func runFailover(args []string) error {
	var o failoverOpts
	if _, err := cli.Parse(failoverFlags(&o), args, 0); err != nil {
		return err
	}
	config, pipeline, groups, planned, unplanned, dryRun, asJSON, force, httpAddr, lagTimeout, groupTimeout :=
		o.config, o.pipeline, o.groups, o.planned, o.unplanned, o.dryRun, o.asJSON, o.force, o.httpAddr, o.lagTimeout, o.groupTimeout
	if *config == "" || *pipeline == "" {
		return fmt.Errorf("%w: --config and --pipeline are required", errUsage)
	}
	if *planned && *unplanned {
		return fmt.Errorf("%w: --planned and --unplanned exclude each other", errUsage)
	}
	var re *regexp.Regexp
	if *groups != "" {
		var err error
		if re, err = regexp.Compile(*groups); err != nil {
			return fmt.Errorf("%w: --groups: %v", errUsage, err)
		}
	}
	cfg, err := pipelines.Load(*config)
	if err != nil {
		return reportLoadError(err, os.Stderr)
	}
	if cfg.Pipeline(*pipeline) == nil {
		return fmt.Errorf("no pipeline %q in %s", *pipeline, *config)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }
	opts := failover.Options{
		Config: cfg, Pipeline: *pipeline, Groups: re, Planned: !*unplanned, DryRun: *dryRun, Force: *force,
		LagTimeout: *lagTimeout, GroupTimeout: *groupTimeout, Progress: progress,
	}
	if opts.Planned {
		switch {
		case *httpAddr != "":
			token, err := readToken("")
			if err != nil {
				return err
			}
			opts.Writer = &daemonWriter{cl: daemon.NewClient(*httpAddr, token), pipeline: *pipeline}
		case !*dryRun:
			w, err := failover.StartEngine(ctx, cfg, *pipeline, nil)
			if err != nil {
				return err
			}
			defer w.Stop(context.Background())
			opts.Writer = w
		}
	}
	rep, err := failover.Failover(ctx, opts)
	if rep != nil {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			printFailoverReport(os.Stdout, rep)
		}
	}
	return err
}

// daemonWriter drains and pauses a pipeline through a daemon's admin API.
type daemonWriter struct {
	cl       *daemon.Client
	pipeline string
}

func (d *daemonWriter) Positions(ctx context.Context) (map[checkpoint.TP]int64, error) {
	var ps struct {
		State      string `json:"state"`
		Partitions []struct {
			Topic        string `json:"topic"`
			Partition    int32  `json:"partition"`
			State        string `json:"state"`
			SourceOffset int64  `json:"source_offset"`
		} `json:"partitions"`
	}
	if err := d.cl.Do(ctx, http.MethodGet, "/v1/pipelines/"+url.PathEscape(d.pipeline), &ps); err != nil {
		return nil, err
	}
	out := make(map[checkpoint.TP]int64)
	for _, p := range ps.Partitions {
		out[checkpoint.TP{Topic: p.Topic, Partition: p.Partition}] = p.SourceOffset
	}
	return out, nil
}

func (d *daemonWriter) Stop(ctx context.Context) error {
	return d.cl.Do(ctx, http.MethodPost, "/v1/pipelines/"+url.PathEscape(d.pipeline)+"/pause", nil)
}

func printFailoverReport(w io.Writer, rep *failover.Report) {
	what := "failover"
	if rep.DryRun {
		what = "failover plan (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "%s %s of pipeline %s: %s → %s\n", rep.Mode, what, rep.Pipeline, rep.Source, rep.Destination)
	id := rep.Identity
	if id.Recorded {
		fmt.Fprintf(w, "clusters: source %s (recorded %s), destination %s (recorded %s)\n", orDash(id.Source), id.RecordedSource, id.Dest, id.RecordedDest)
	} else {
		fmt.Fprintf(w, "clusters: source %s, destination %s (none recorded)\n", orDash(id.Source), id.Dest)
	}
	if d := rep.Drain; d != nil {
		fmt.Fprintf(w, "drain: %d records behind at start, waited %dms, pipeline stopped: %v\n", d.LagBefore, d.WaitedMS, d.Stopped)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPART\tDEST TOPIC\tMIRRORED\tSOURCE END\tDEST END\tRPO RECORDS\tRPO MS")
	for _, p := range rep.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%s\t%s\n", p.Topic, p.Partition, p.DestTopic, p.Mirrored, num(p.SourceEnd), p.DestEnd, num(p.RPORecords), num(p.RPOMS))
	}
	_ = tw.Flush()
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "group %s (source: %s, offsets from %s, waited %dms)", g.Group, g.SourceState, g.From, g.WaitedMS)
		if len(g.Removed) > 0 {
			fmt.Fprintf(w, " removed static members %v", g.Removed)
		}
		fmt.Fprintln(w)
		if g.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", g.Error)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOPIC\tPART\tSOURCE\t→ DEST TOPIC\tDEST\tBEFORE\tACTION\tREDELIVERED\tTO READ")
		for _, o := range g.Offsets {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t→ %s\t%s\t%s\t%s\t%s\t%d\n", o.Topic, o.Partition, num(o.SourceOffset), o.DestTopic, num(o.DestOffset), num(o.Before), o.Action, num(o.Redeliveries), o.ToRead)
		}
		_ = tw.Flush()
	}
	if len(rep.Groups) == 0 {
		fmt.Fprintln(w, "no consumer group to move")
	}
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
}

func num(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
