package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for strait where a test starts
// strait as a child process of itself: bench broker runs its producer as
// `strait bench producer` through os.Executable, which in a test is this
// binary.
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}
