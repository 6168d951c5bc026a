package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		npos  int
		pos   []string
		print bool
		err   error
	}{
		{args: nil, npos: 0},
		{args: []string{"--print"}, npos: 0, print: true},
		{args: []string{"a.yaml", "--print"}, npos: 1, pos: []string{"a.yaml"}, print: true},
		{args: []string{"--print", "a.yaml"}, npos: 1, pos: []string{"a.yaml"}, print: true},
		{args: []string{"a", "--print", "b"}, npos: 2, pos: []string{"a", "b"}, print: true},
		{args: []string{"--", "--print"}, npos: 1, pos: []string{"--print"}},
		{args: []string{"a", "--", "-x"}, npos: 2, pos: []string{"a", "-x"}},
		{args: []string{"stray"}, npos: 0, err: ErrUsage},
		{args: []string{"a", "b"}, npos: 1, err: ErrUsage},
		{args: nil, npos: 1, err: ErrUsage},
		{args: []string{"--bogus"}, npos: 0, err: ErrUsage},
		{args: []string{"-h"}, npos: 1, err: ErrHelp},
		{args: []string{"a.yaml", "--help"}, npos: 1, err: ErrHelp},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		p := fs.Bool("print", false, "")
		pos, err := Parse(fs, tc.args, tc.npos)
		if !errors.Is(err, tc.err) || (err == nil && (!slices.Equal(pos, tc.pos) || *p != tc.print)) {
			t.Errorf("Parse(%q, %d) = %q, print %v, %v; want %q, print %v, %v", tc.args, tc.npos, pos, *p, err, tc.pos, tc.print, tc.err)
		}
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{ErrHelp, ExitOK},
		{fmt.Errorf("%w: x", ErrUsage), ExitUsage},
		{fmt.Errorf("wrapped: %w", ExitStatus(3)), 3},
		{errors.New("boom"), ExitError},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestProgramMain checks where each answer goes: help on stdout with exit 0, a bad
// command line on stderr with exit 2 and the usage, a failure on stderr
// with exit 1, an ExitStatus silently.
func TestProgramMain(t *testing.T) {
	cmds := []Command{
		{Name: "one", Synopsis: "PATH [flags]", Brief: "the first",
			Flags: func() *flag.FlagSet {
				fs := flag.NewFlagSet("one", flag.ContinueOnError)
				fs.Bool("print", false, "print it")
				return fs
			},
			Run: func(args []string) error {
				fs := flag.NewFlagSet("one", flag.ContinueOnError)
				fs.Bool("print", false, "print it")
				pos, err := Parse(fs, args, 1)
				if err != nil {
					return err
				}
				switch pos[0] {
				case "fail":
					return errors.New("it broke")
				case "quiet":
					return ExitStatus(1)
				}
				return nil
			}},
		{Name: "two sub", Synopsis: "[flags]", Brief: "a sub-target", Run: func(args []string) error {
			_, err := Parse(flag.NewFlagSet("two sub", flag.ContinueOnError), args, 0)
			return err
		}},
	}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr []string // substrings; nil: empty
	}{
		{nil, 2, nil, []string{"usage: p <command> [flags]", "one      the first", "two sub  a sub-target"}},
		{[]string{"help"}, 0, []string{"usage: p <command>", "two sub"}, nil},
		{[]string{"--help"}, 0, []string{"usage: p <command>"}, nil},
		{[]string{"help", "one"}, 0, []string{"usage: p one PATH [flags]", "the first", "-print", "print it"}, nil},
		{[]string{"one", "x", "-h"}, 0, []string{"usage: p one PATH [flags]", "-print"}, nil},
		{[]string{"one", "x"}, 0, nil, nil},
		{[]string{"one", "--bogus", "x"}, 2, nil, []string{"p one: bad command line: flag provided but not defined: -bogus", "usage: p one PATH [flags]", "-print"}},
		{[]string{"one"}, 2, nil, []string{"p one: bad command line: expected 1 argument(s), got 0", "usage: p one"}},
		{[]string{"one", "fail"}, 1, nil, []string{"p one: it broke"}},
		{[]string{"one", "quiet"}, 1, nil, nil},
		{[]string{"nope"}, 2, nil, []string{`p: unknown command "nope"`, "usage: p <command>"}},
		{[]string{"two"}, 2, nil, []string{`p: unknown command "two"`}},
		{[]string{"two", "nope"}, 2, nil, []string{`p: unknown command "two nope"`}},
		{[]string{"two", "sub"}, 0, nil, nil},
		{[]string{"help", "two", "sub"}, 0, []string{"usage: p two sub [flags]", "a sub-target"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		code := Program{Name: "p", Noun: "command", Commands: cmds, Stdout: &stdout, Stderr: &stderr}.Main(tc.args)
		check := func(what string, got string, want []string) {
			if want == nil && got != "" {
				t.Errorf("%q: %s %q, want nothing", tc.args, what, got)
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%q: %s lacks %q:\n%s", tc.args, what, w, got)
				}
			}
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.args, code, tc.code)
		}
		check("stdout", stdout.String(), tc.stdout)
		check("stderr", stderr.String(), tc.stderr)
	}
}
