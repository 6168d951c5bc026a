package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

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

func plan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	timeout := fs.Duration("timeout", pipelines.DefaultPlanTimeout, "how long to wait for each cluster")
	path, err := parseWithPath(fs, args)
	if err != nil {
		return err
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	r := pipelines.Plan(ctx, cfg, *timeout)
	if *asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return exitStatus(exitError)
	}
	return nil
}
