// Command strait mirrors Kafka topics between clusters and runs the embedded
// brokerd clusters its demo, tests and drills use.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// Exit codes, documented in README.md.
const (
	exitOK    = 0
	exitError = 1 // a runtime failure, or invalid configuration
	exitUsage = 2 // bad command line
)

// errUsage marks command-line mistakes (exit 2).
var errUsage = errors.New("usage")

type command struct {
	name  string
	brief string
	run   func(args []string) error
}

// commands is the one table of subcommands; each lives in its own file.
var commands = []command{
	{"broker", "run N embedded brokerd brokers: --dir DIR [--listen ADDR] [--brokers N] [--partitions P] [--fsync]", runBroker},
	{"mirror", "run the mirroring daemon: --config PATH [--http ADDR]", runMirror},
	{"validate", "check a configuration: validate PATH [--print]", runValidate},
	{"plan", "show what would be mirrored now: plan PATH [--json] [--timeout D]", runPlan},
	{"status", "show pipelines and per-partition lag: status [--http ADDR] [--json] [--watch]", runStatus},
	{"demo", "two embedded clusters, a pipeline, live progress, a short failover", runDemo},
	{"drill", "a disaster-recovery drill with measured RPO/RTO: drill [--config PATH] [--json FILE]", runDrill},
	{"offsets", "offsets translate --config PATH --pipeline NAME --group G [--json]", runOffsets},
	{"failover", "move a pipeline's consumer groups to its destination: failover --config PATH --pipeline NAME [--planned|--unplanned] [--dry-run]", runFailover},
	{"bench", "benchmarks: bench broker | bench mirror | bench producer", runBench},
}

// parseFlags parses a subcommand's flags, which take no positional
// arguments. -h prints usageLine and the flags on stdout and reports help;
// a bad flag or a stray argument is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string, usageLine string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println(usageLine)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return true, nil
		}
		return false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return false, nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: strait <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.brief)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(exitUsage)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		os.Exit(exitOK)
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(os.Args[2:])
		switch {
		case err == nil:
			os.Exit(exitOK)
		case errors.Is(err, errUsage):
			fmt.Fprintf(os.Stderr, "strait %s: %v\n", name, err)
			os.Exit(exitUsage)
		default:
			var ex exitCoder
			if errors.As(err, &ex) {
				os.Exit(ex.ExitCode())
			}
			fmt.Fprintf(os.Stderr, "strait %s: %v\n", name, err)
			os.Exit(exitError)
		}
	}
	fmt.Fprintf(os.Stderr, "strait: unknown command %q\n", name)
	usage()
	os.Exit(exitUsage)
}

// exitCoder lets a command choose its exit code after printing its own
// errors (validate prints every error, then exits 1).
type exitCoder interface{ ExitCode() int }
