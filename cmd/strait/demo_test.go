package main

import (
	"bytes"
	"os"
	"testing"
)

// The demo's built-in configuration is a copy of the example file.
func TestDemoYAMLMatchesExample(t *testing.T) {
	want, err := os.ReadFile("../../" + demoConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, demoYAML) {
		t.Fatalf("cmd/strait/demo.yaml differs from %s: copy it over", demoConfigPath)
	}
}
