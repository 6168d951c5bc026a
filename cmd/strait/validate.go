package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"strait/pipelines"
)

// runValidate checks a configuration file or folder: a one-line summary
// and exit 0, or every error as file:line:col: message on stderr and exit 1.
// --print writes the fully defaulted configuration (secrets masked).
func runValidate(args []string) error {
	return validate(args, os.Stdout, os.Stderr)
}

func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printCfg := fs.Bool("print", false, "print the fully defaulted configuration as YAML (secrets masked)")
	path, err := parseWithPath(fs, args)
	if err != nil {
		return err
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	// Warnings do not fail validation; they go to stderr either way.
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if *printCfg {
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
		return exitStatus(exitError)
	}
	return err
}

// parseWithPath parses flags that may come before or after the one PATH
// argument (strait validate PATH --print and strait validate --print PATH).
func parseWithPath(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", exitStatus(exitOK)
			}
			return "", fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: expected one PATH (a YAML file or a folder of them), got %d arguments: %s", errUsage, len(pos), strings.Join(pos, " "))
	}
	return pos[0], nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// exitStatus is an error that only carries an exit code: the command has
// already printed what went wrong.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitCode() int { return int(e) }
