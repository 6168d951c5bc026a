package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes, documented in README.md.
const (
	ExitOK    = 0
	ExitError = 1 // a runtime failure, or invalid configuration
	ExitUsage = 2 // bad command line
)

var (
	// ErrUsage marks a bad command line (exit 2, usage on stderr).
	ErrUsage = errors.New("bad command line")
	// ErrHelp is Parse's answer to -h or --help (exit 0, usage on stdout).
	ErrHelp = errors.New("help requested")
)

// ExitStatus is an error that only carries an exit code: the command has
// already printed what went wrong.
type ExitStatus int

func (e ExitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the code the process exits with.
func (e ExitStatus) ExitCode() int { return int(e) }

// Command is one subcommand of a Program.
type Command struct {
	// Name is one word, or two for a command with a sub-target
	// ("offsets translate").
	Name string
	// Synopsis is the arguments after the name, on one line:
	// "--dir DIR [flags]". Flags it names must be flags of the command.
	Synopsis string
	// Brief says what the command does, on one line.
	Brief string
	// Flags builds the command's flag set with throwaway destinations; Run
	// builds its own with the same function. Nil: no flags of its own.
	Flags func() *flag.FlagSet
	// Run runs the command with the arguments after its name.
	Run func(args []string) error
}

// Program is a binary made of subcommands.
type Program struct {
	Name     string // "strait", or "strait bench"
	Noun     string // what a command is called in the list: "command", "target"
	Commands []Command
	Stdout   io.Writer
	Stderr   io.Writer
}

// Parse parses args into fs, the one flag parser of every command. Flags
// may come before, between or after the positional arguments (strait
// validate PATH --print), of which there must be exactly npos; after "--"
// every argument is positional. It prints nothing: -h/--help returns
// ErrHelp, anything wrong an error wrapping ErrUsage.
func Parse(fs *flag.FlagSet, args []string, npos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ErrHelp
			}
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) == npos:
		return pos, nil
	case npos == 0:
		return nil, fmt.Errorf("%w: unexpected argument %q", ErrUsage, pos[0])
	}
	return nil, fmt.Errorf("%w: expected %d argument(s), got %d: %s", ErrUsage, npos, len(pos), strings.Join(pos, " "))
}

// Code is the exit code for a command's error.
func Code(err error) int {
	var ex interface{ ExitCode() int }
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.As(err, &ex):
		return ex.ExitCode()
	}
	return ExitError
}

// Main runs the command args name and returns the exit code, printing
// usage and errors as the package comment says.
func (p Program) Main(args []string) int {
	if len(args) == 0 {
		p.WriteCommands(p.Stderr)
		return ExitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if args[0] == "help" && len(args) > 1 {
			// "help CMD" is "CMD -h": a command that hands its
			// arguments on (strait bench) gets the -h too.
			return p.Main(append(args[1:len(args):len(args)], "-h"))
		}
		p.WriteCommands(p.Stdout)
		return ExitOK
	}
	c, rest := p.find(args)
	if c == nil {
		return p.unknown(args)
	}
	err := c.Run(rest)
	code := Code(err)
	switch {
	case errors.Is(err, ErrHelp):
		p.WriteUsage(p.Stdout, *c)
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(p.Stderr, "%s %s: %v\n\n", p.Name, c.Name, err)
		p.WriteUsage(p.Stderr, *c)
	case err != nil:
		var ex interface{ ExitCode() int }
		if !errors.As(err, &ex) {
			fmt.Fprintf(p.Stderr, "%s %s: %v\n", p.Name, c.Name, err)
		}
	}
	return code
}

// find returns the command args start with and the arguments after its
// name.
func (p Program) find(args []string) (*Command, []string) {
	for i := range p.Commands {
		words := strings.Fields(p.Commands[i].Name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == p.Commands[i].Name {
			return &p.Commands[i], args[len(words):]
		}
	}
	return nil, nil
}

func (p Program) unknown(args []string) int {
	name := args[0]
	for _, c := range p.Commands {
		if w := strings.Fields(c.Name); len(w) > 1 && w[0] == name && len(args) > 1 {
			name += " " + args[1] // a sub-target that does not exist
			break
		}
	}
	fmt.Fprintf(p.Stderr, "%s: unknown %s %q\n\n", p.Name, p.Noun, name)
	p.WriteCommands(p.Stderr)
	return ExitUsage
}

// WriteCommands prints the list of commands.
func (p Program) WriteCommands(w io.Writer) {
	width := 0
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	fmt.Fprintf(w, "usage: %s <%s> [flags]\n\n%ss:\n", p.Name, p.Noun, p.Noun)
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Brief)
	}
	fmt.Fprintf(w, "\n\"%s help <%s>\" or \"%s <%s> -h\" shows its flags.\n", p.Name, p.Noun, p.Name, p.Noun)
}

// WriteUsage prints a command's synopsis, brief and flags, the flags
// generated from its flag set.
func (p Program) WriteUsage(w io.Writer, c Command) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace(p.Name+" "+c.Name+" "+c.Synopsis), c.Brief)
	if c.Flags == nil {
		return
	}
	fs := c.Flags()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}
