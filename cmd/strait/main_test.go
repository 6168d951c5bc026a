package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"strait/internal/cli"
)

func program(stdout, stderr *bytes.Buffer) cli.Program {
	return cli.Program{Name: "strait", Noun: "command", Commands: commands(), Stdout: stdout, Stderr: stderr}
}

// TestCommandList: strait help (or -h) lists every command on stdout; no
// command at all is a usage error with the list on stderr.
func TestCommandList(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, nil} {
		var stdout, stderr bytes.Buffer
		code := program(&stdout, &stderr).Main(args)
		out, other, want := stdout.String(), stderr.String(), 0
		if args == nil {
			out, other, want = stderr.String(), stdout.String(), 2
		}
		if code != want || other != "" {
			t.Errorf("%q: exit %d (want %d), other stream %q", args, code, want, other)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "\n  "+c.Name+" ") {
				t.Errorf("%q: list lacks %s:\n%s", args, c.Name, out)
			}
		}
	}
}

// TestCommandUsage: for every command -h prints, on stdout, the usage
// generated from the flag set the command parses, and an unknown flag
// prints the error and the same usage on stderr with exit 2. (bench hands
// its arguments to strait-bench; TestBenchBinary covers it.)
func TestCommandUsage(t *testing.T) {
	for _, c := range commands() {
		if c.Flags == nil {
			continue
		}
		var flags []string
		c.Flags().VisitAll(func(f *flag.Flag) { flags = append(flags, "  -"+f.Name) })
		if len(flags) == 0 {
			t.Errorf("%s has no flags", c.Name)
		}
		args := append(strings.Fields(c.Name), "-h")
		var stdout, stderr bytes.Buffer
		if code := program(&stdout, &stderr).Main(args); code != 0 || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
		for _, want := range append(flags, "usage: strait "+c.Name+" "+c.Synopsis+"\n", c.Brief) {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%q lacks %q:\n%s", args, want, stdout.String())
			}
		}
		help := stdout.String()

		args = append(strings.Fields(c.Name), "--no-such-flag")
		stdout.Reset()
		stderr.Reset()
		if code := program(&stdout, &stderr).Main(args); code != 2 || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q", args, code, stdout.String())
		}
		if want := "strait " + c.Name + ": bad command line: flag provided but not defined: -no-such-flag\n\n" + help; stderr.String() != want {
			t.Errorf("%q: stderr\n%s\nwant\n%s", args, stderr.String(), want)
		}
	}
	// broker's usage once left these out.
	var stdout, stderr bytes.Buffer
	program(&stdout, &stderr).Main([]string{"help", "broker"})
	for _, want := range []string{"-auto-create-topics", "-v\t", "-sasl-user", "-offsets-retention"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("strait help broker lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestOffsetsNeedsTranslate: offsets is only a prefix; without its
// sub-target, or with another, the command line is wrong.
func TestOffsetsNeedsTranslate(t *testing.T) {
	for _, args := range [][]string{{"offsets"}, {"offsets", "nonsense"}, {"offsets", "--config", "x"}} {
		var stdout, stderr bytes.Buffer
		if code := program(&stdout, &stderr).Main(args); code != 2 || !strings.Contains(stderr.String(), "offsets translate") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
