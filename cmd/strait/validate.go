package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"strait/internal/cli"
	"strait/pipelines"
)

// runValidate checks a configuration file or folder: a one-line summary
// and exit 0, or every error as file:line:col: message on stderr and exit 1.
// --print writes the fully defaulted configuration (secrets masked).
func runValidate(args []string) error {
	return validate(args, os.Stdout, os.Stderr)
}

func validateFlags(printCfg *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.BoolVar(printCfg, "print", false, "print the fully defaulted configuration as YAML (secrets masked)")
	return fs
}

func validate(args []string, stdout, stderr io.Writer) error {
	var printCfg bool
	pos, err := cli.Parse(validateFlags(&printCfg), args, 1)
	if err != nil {
		return err
	}
	path := pos[0]
	cfg, err := pipelines.Load(path)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	// Warnings do not fail validation; they go to stderr either way.
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if printCfg {
		return cfg.WriteYAML(stdout)
	}
	fmt.Fprintf(stdout, "ok: %s, %s in %s\n",
		plural(len(cfg.Pipelines), "pipeline"), plural(len(cfg.Clusters), "cluster"), plural(len(cfg.Files), "file"))
	return nil
}

// reportLoadError prints every configuration error, one per line, and
// returns an error that makes main exit 1 without printing it again.
func reportLoadError(err error, stderr io.Writer) error {
	var errs pipelines.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		return cmdExit(exitError)
	}
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
