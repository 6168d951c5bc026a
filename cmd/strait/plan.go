package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"strait/internal/cli"
	"strait/pipelines"
)

// runPlan shows what a configuration would mirror now: it connects
// read-only to each cluster and prints, per pipeline, the matching topics,
// partition counts, destination names and what exists or would be created.
// Exit 1 when a cluster is unreachable or a problem is found.
func runPlan(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return plan(ctx, args, os.Stdout, os.Stderr)
}

// planOpts are strait plan's flags.
type planOpts struct {
	asJSON  bool
	timeout time.Duration
}

func planFlags(o *planOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.BoolVar(&o.asJSON, "json", false, "print the plan as JSON")
	fs.DurationVar(&o.timeout, "timeout", pipelines.DefaultPlanTimeout, "how long to wait for each cluster")
	return fs
}

func plan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o planOpts
	pos, err := cli.Parse(planFlags(&o), args, 1)
	if err != nil {
		return err
	}
	cfg, err := pipelines.Load(pos[0])
	if err != nil {
		return reportLoadError(err, stderr)
	}
	r := pipelines.Plan(ctx, cfg, o.timeout)
	if o.asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return cmdExit(exitError)
	}
	return nil
}
