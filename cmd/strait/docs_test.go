package main

// The documentation's command lines are checked against the commands'
// flag sets, built by the same functions the commands parse with: a doc
// that names a command or a flag strait does not have fails here, and so
// does a docs/cli.md that leaves a flag out.

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strait/internal/bench"
)

// repoRoot is the repository, relative to this package.
const repoRoot = "../.."

// cliCommands maps every command line strait takes ("broker", "offsets
// translate", "bench broker") to its flags, each under its -name and
// --name spellings.
func cliCommands() map[string]map[string]bool {
	out := map[string]map[string]bool{"help": {}}
	add := func(name string, fs *flag.FlagSet) {
		flags := map[string]bool{"-h": true, "--help": true}
		if fs != nil {
			fs.VisitAll(func(f *flag.Flag) { flags["-"+f.Name], flags["--"+f.Name] = true, true })
		}
		out[name] = flags
	}
	for _, c := range commands() {
		var fs *flag.FlagSet
		if c.Flags != nil {
			fs = c.Flags()
		}
		add(c.Name, fs)
	}
	for _, c := range bench.Commands(io.Discard) {
		add("bench "+c.Name, c.Flags())
	}
	return out
}

// docFiles are README.md and docs/*.md, whichever exist.
func docFiles(t *testing.T) []string {
	files := []string{filepath.Join(repoRoot, "README.md")}
	more, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// TestDocsCommandLines: every strait command line in README.md and
// docs/*.md names a command and flags that exist, and docs/cli.md, if
// there is one, mentions every flag of every command.
func TestDocsCommandLines(t *testing.T) {
	cmds := cliCommands()
	total := 0
	for _, path := range docFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		ms := mentions(rel, string(b))
		total += len(ms)
		for _, m := range ms {
			for _, p := range m.check(cmds) {
				t.Error(p)
			}
		}
	}
	if total == 0 {
		t.Fatal("no strait command line found in the documentation; is the scanner broken?")
	}
	ref := filepath.Join(repoRoot, "docs", "cli.md")
	b, err := os.ReadFile(ref)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkReference("docs/cli.md", string(b), cmds) {
		t.Error(p)
	}
}

// TestDocsScanner: the scanner finds command lines where the docs write
// them and reports what does not exist.
func TestDocsScanner(t *testing.T) {
	doc := "# Title\n\n" +
		"Run `strait broker --dir D --no-such` or `strait\nvalidate PATH [--print]` or `strait plan\n--jsn PATH` (wrapped); strait itself in prose is not a command.\n\n" +
		"```sh\n" +
		"$ strait plan PATH --json --timeout 5s   # comment --not-a-flag\n" +
		"./strait mirror --config c.yaml --http \"\" \\\n    [--trace stdout|otlp [--trace-endpoint URL]] [--bogus-two] &\n" +
		"go run ./cmd/strait bench broker --rounds 1 -v > out.txt\n" +
		"go run ./cmd/strait bench turbo --rounds 1\n" +
		"strait offsets translate --config c --pipeline p --group g --json\n" +
		"strait offsets --config c\n" +
		"strait frobnicate --x\n" +
		"strait <command> -h\n" +
		"client_id: strait   # default\n" +
		"strait.yaml:8:18: pipeline \"p\": destination\n" +
		"strait drill --mode batch|record --config=PATH\n" +
		"```\n"
	var got []string
	for _, m := range mentions("doc.md", doc) {
		got = append(got, m.check(cliCommands())...)
	}
	want := []string{
		"doc.md:3: strait broker: no flag --no-such",
		"doc.md:4: strait plan: no flag --jsn",
		"doc.md:9: strait mirror: no flag --bogus-two",
		"doc.md:12: strait bench turbo: no such command",
		"doc.md:14: strait offsets --config: strait offsets needs a sub-command before its flags",
		"doc.md:15: strait frobnicate: no such command",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(mentions("doc.md", doc)); n != 12 {
		t.Errorf("found %d command lines, want 12", n)
	}

	ref := "# strait CLI\n\n## strait validate\n\n`--print` prints.\n\n## strait bench broker\n\n--records, --rounds\n\n### more\n\n-v and --dir\n\n## strait status\n\n--json\n"
	cmds := map[string]map[string]bool{
		"validate":     {"-print": true, "--print": true},
		"bench broker": {"--records": true, "--rounds": true, "--dir": true, "--v": true, "--split-cpus": true},
		"status":       {"--json": true, "--watch": true},
		"broker":       {"--dir": true},
	}
	want = []string{
		"cli.md: no section for strait broker (a heading naming it)",
		"cli.md: the section for strait bench broker does not mention --split-cpus",
		"cli.md: the section for strait status does not mention --watch",
	}
	if got := checkReference("cli.md", ref, cmds); !slices.Equal(got, want) {
		t.Errorf("reference problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
