package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"strait/drill/failover"
	"strait/internal/cli"
	"strait/pipelines"
)

// failbackOpts are strait failback's flags.
type failbackOpts struct {
	config, pipeline, reverse, divergent *string
	dryRun, asJSON, force                *bool
}

func failbackFlags(o *failbackOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("failback", flag.ContinueOnError)
	o.config = fs.String("config", "", "configuration: a YAML file or a folder of them (required)")
	o.pipeline = fs.String("pipeline", "", "the pipeline that ran before the failover, from the old source to the new primary (required)")
	o.reverse = fs.String("reverse", "", "the pipeline from the new primary back to the old source (default: the one the configuration has)")
	o.divergent = fs.String("divergent", "append", "where the old source's divergent records go: append (to the mirrored topic) or topic:NAME (a recovery topic)")
	o.dryRun = fs.Bool("dry-run", false, "print the plan, change nothing")
	o.asJSON = fs.Bool("json", false, "print the report as JSON")
	o.force = fs.Bool("force", false, "act although a cluster id differs from the checkpoints'")
	return fs
}

// runFailback is `strait failback`: flags in, failover.Failback, the report
// and the way to start the reverse pipeline out.
func runFailback(args []string) error {
	var o failbackOpts
	if _, err := cli.Parse(failbackFlags(&o), args, 0); err != nil {
		return err
	}
	if *o.config == "" || *o.pipeline == "" {
		return fmt.Errorf("%w: --config and --pipeline are required", errUsage)
	}
	var recovery string
	switch d := *o.divergent; {
	case d == "append":
	case strings.HasPrefix(d, "topic:") && len(d) > len("topic:"):
		recovery = strings.TrimPrefix(d, "topic:")
	default:
		return fmt.Errorf("%w: --divergent is append or topic:NAME", errUsage)
	}
	cfg, err := pipelines.Load(*o.config)
	if err != nil {
		return reportLoadError(err, os.Stderr)
	}
	if cfg.Pipeline(*o.pipeline) == nil {
		return fmt.Errorf("no pipeline %q in %s", *o.pipeline, *o.config)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := failover.Failback(ctx, failover.FailbackOptions{
		Config: cfg, Pipeline: *o.pipeline, Reverse: *o.reverse, RecoveryTopic: recovery,
		DryRun: *o.dryRun, Force: *o.force, Progress: func(s string) { fmt.Fprintln(os.Stderr, s) },
	})
	if rep != nil {
		if *o.asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			printFailbackReport(os.Stdout, rep, *o.config)
		}
	}
	return err
}

func printFailbackReport(w io.Writer, rep *failover.FailbackReport, config string) {
	what := "failback"
	if rep.DryRun {
		what = "failback plan (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "%s of pipeline %s: old source %s, new primary %s, divergent records: %s\n", what, rep.Pipeline, rep.Source, rep.Destination, rep.Divergent)
	id := rep.Identity
	if id.Recorded {
		fmt.Fprintf(w, "clusters: source %s (recorded %s), destination %s (recorded %s)\n", orDash(id.Source), id.RecordedSource, id.Dest, id.RecordedDest)
	} else {
		fmt.Fprintf(w, "clusters: source %s, destination %s (none recorded)\n", orDash(id.Source), id.Dest)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPART\tMIRRORED\tSOURCE END\tDIVERGENT\tALREADY COPIED\tCOPIED\tTO\tREVERSE FROM\tREVERSE")
	for _, p := range rep.Partition {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, p.Mirrored, p.SourceEnd, p.Divergent, p.AlreadyCopied, p.Copied, p.CopiedTo, num(p.ReverseFrom), p.ReverseAction)
	}
	_ = tw.Flush()
	verb := "copied"
	if rep.DryRun {
		verb = "would copy"
	}
	fmt.Fprintf(w, "%s %d records\n", verb, rep.Copied)
	if rep.Reverse == "" {
		fmt.Fprintf(w, "no reverse pipeline from %s to %s: add it to %s, then run strait failback again to seed its start offsets:\n%s", rep.Destination, rep.Source, config, rep.ReverseYAML)
	} else {
		fmt.Fprintf(w, "next: keep pipeline %s paused (paused: true in %s) and start the reverse pipeline %s: strait mirror --config %s\n", rep.Pipeline, config, rep.Reverse, config)
	}
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
}
