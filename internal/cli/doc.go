// Package cli is the command-line plumbing strait's binaries share: one
// table of commands, one flag parser, usage text generated from each
// command's flag set, and one mapping from errors to exit codes.
//
// Contract:
//
//   - A Command names itself (one word, or two for a command with a
//     sub-target such as "offsets translate"), gives a one-line synopsis of
//     its arguments and a one-line brief, and a Flags function: the same
//     function its Run calls to build the flag set it parses, so the usage
//     text, the docs test and the parser see the same flags.
//   - Run parses with Parse, which never prints: -h or --help comes back as
//     ErrHelp, a bad flag or argument count as an error wrapping ErrUsage.
//   - Main prints every usage text. -h/--help anywhere in a command's
//     arguments prints that command's usage on stdout and exits 0; a usage
//     error prints the error and the usage on stderr and exits 2; an error
//     with an ExitCode() method exits with its code and prints nothing more
//     (the command has printed what went wrong); any other error is printed
//     and exits 1. No arguments print the command list on stderr (exit 2);
//     "help", -h or --help print it on stdout (exit 0), "help CMD" prints
//     CMD's usage.
package cli
