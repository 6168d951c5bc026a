// Command strait mirrors Kafka topics between clusters and runs the embedded
// brokerd clusters its demo, tests and drills use.
//
// A command is flags in, wiring, output: each lives in a file of its own,
// builds its flag set with one function (which the usage text and the docs
// test call too) and parses it with cli.Parse. The services, scenarios and
// the benchmark harness live in their own packages.
package main

import (
	"flag"
	"os"

	"strait/internal/cli"
)

// Exit codes, documented in README.md.
const (
	exitOK    = cli.ExitOK
	exitError = cli.ExitError // a runtime failure, or invalid configuration
	exitUsage = cli.ExitUsage // bad command line
)

// errUsage marks command-line mistakes (exit 2, usage on stderr).
var errUsage = cli.ErrUsage

// cmdExit is an error that only carries an exit code: the command has
// already printed what went wrong.
type cmdExit = cli.ExitStatus

// commands is the one table of subcommands.
func commands() []cli.Command {
	return []cli.Command{
		{Name: "broker", Synopsis: "--dir DIR [flags]",
			Brief: "run N embedded brokerd brokers until SIGTERM or SIGINT; prints \"ready ADDR,...\" once they accept connections",
			Flags: func() *flag.FlagSet { return brokerFlags(new(brokerOpts)) }, Run: runBroker},
		{Name: "mirror", Synopsis: "--config PATH [flags]",
			Brief: "run the mirroring daemon, with its admin API, until SIGTERM or SIGINT (SIGHUP reloads)",
			Flags: func() *flag.FlagSet { return mirrorFlags(new(mirrorOpts)) }, Run: runMirror},
		{Name: "validate", Synopsis: "PATH [flags]",
			Brief: "check a configuration file or folder: a summary, or every error as file:line:col",
			Flags: func() *flag.FlagSet { return validateFlags(new(bool)) }, Run: runValidate},
		{Name: "plan", Synopsis: "PATH [flags]",
			Brief: "show what a configuration would mirror now, read-only against its clusters",
			Flags: func() *flag.FlagSet { return planFlags(new(planOpts)) }, Run: runPlan},
		{Name: "status", Synopsis: "[flags]",
			Brief: "show a running daemon's pipelines and per-partition lag",
			Flags: func() *flag.FlagSet { return statusFlags(new(statusOpts)) }, Run: runStatus},
		{Name: "demo", Synopsis: "[flags]",
			Brief: "two embedded clusters, a pipeline, live progress, then a failover and what it cost",
			Flags: func() *flag.FlagSet { return demoFlags(new(demoOpts)) }, Run: runDemo},
		{Name: "drill", Synopsis: "[--config PATH [--pipeline NAME]] [flags]",
			Brief: "a disaster-recovery drill with measured RPO/RTO, on embedded clusters or a configured pipeline's",
			Flags: func() *flag.FlagSet { return drillFlags(new(drillOpts)) }, Run: runDrill},
		{Name: "failover", Synopsis: "--config PATH --pipeline NAME [--planned|--unplanned] [flags]",
			Brief: "move a pipeline's consumer groups to its destination, exactly (planned: drain first; unplanned: from the checkpoints)",
			Flags: func() *flag.FlagSet { return failoverFlags(new(failoverOpts)) }, Run: runFailover},
		{Name: "failback", Synopsis: "--config PATH --pipeline NAME [flags]",
			Brief: "the old source is back: copy its divergent records to the new primary, then seed the reverse pipeline",
			Flags: func() *flag.FlagSet { return failbackFlags(new(failbackOpts)) }, Run: runFailback},
		{Name: "offsets translate", Synopsis: "--config PATH --pipeline NAME --group G [flags]",
			Brief: "where a source consumer group resumes on the destination, per partition",
			Flags: func() *flag.FlagSet { return offsetsFlags(new(offsetsOpts)) }, Run: runOffsets},
		{Name: "audit", Synopsis: "--config PATH --pipeline NAME [flags]",
			Brief: "compare a pipeline's source and destination record by record; exit 1 on any difference",
			Flags: func() *flag.FlagSet { return auditFlags(new(auditOpts)) }, Run: runAudit},
		{Name: "bench", Synopsis: "<target> [flags]",
			Brief: "benchmarks (broker, mirror, cost, isolation, producer, consumer), run by the strait-bench binary; strait bench -h lists them",
			Run:   runBench},
	}
}

func main() {
	os.Exit(cli.Program{Name: "strait", Noun: "command", Commands: commands(), Stdout: os.Stdout, Stderr: os.Stderr}.Main(os.Args[1:]))
}
