package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchBrokerSmall runs the whole broker benchmark at a tiny size: every
// target (brokerd, the null broker, kfake, the plain copy, brokerd's copy
// path) must serve real clients and the table must have every row.
func TestBenchBrokerSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokerd, kfake and a null broker")
	}
	var out bytes.Buffer
	err := benchBroker([]string{"--records", "2000", "--value-bytes", "100", "--fetch-mb", "2", "--rounds", "1", "--dir", t.TempDir()}, &out)
	if err != nil {
		t.Fatalf("bench broker: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"null broker", "kfake", "file-to-socket", "16 KiB", "64 KiB", "1 MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"broker", "--records", "0"}, {"broker", "--bogus"}} {
		if err := runBench(args); err == nil {
			t.Errorf("runBench(%q) succeeded", args)
		}
	}
}
