package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommandFilesStaySmall keeps the command package a command: flags in,
// wiring, output. Logic that grows past a screenful or two belongs in a
// package of its own (drill, internal/bench, daemon...).
func TestCommandFilesStaySmall(t *testing.T) {
	const maxLines = 300
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > maxLines {
			t.Errorf("%s has %d lines, more than %d: move its logic into a package", f, n, maxLines)
		}
	}
}
